"""Text data: a user's UTF-8 file, or the bundled Shakespeare corpus."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..core import limits
from ..core.errors import StudioError

MIN_CHARACTERS = 100  # below this, a 10% validation split holds almost nothing


def decode_utf8(path: Path, shown: str | None = None) -> str:
    """A user's file as UTF-8 text, Windows line endings made plain newlines; else a one-line
    StudioError naming the file (as `shown`, e.g. an upload's own name) and the first bad byte.
    utf-8-sig drops the byte-order mark some Windows editors write at the start."""
    try:
        return path.read_bytes().decode("utf-8-sig").replace("\r\n", "\n")
    except UnicodeDecodeError as error:
        raise StudioError(f"{shown or path} is not valid UTF-8 text (byte {error.start} cannot "
                          "be decoded); open it in a text editor and save it as UTF-8.") from None


def read_text_file(path_text: str) -> str:
    """The text of a user's UTF-8 file, with Windows line endings made plain newlines."""
    if not path_text.strip():
        raise StudioError("The text file path is empty; use text:<path to a .txt file>.")
    path = Path(path_text.strip()).expanduser()
    if not path.exists():
        raise StudioError(f"The text file {path} does not exist; check the path.")
    if not path.is_file():
        raise StudioError(f"{path} is not a file; text:<path> needs a single UTF-8 text file "
                          "(for a folder of images use folder:<path>).")
    size = path.stat().st_size
    if size > limits.MAX_TEXT_BYTES:   # checked before a byte of it is read
        raise StudioError(f"{path} is {limits.size_text(size)}; a text data set may be at most "
                          f"{limits.size_text(limits.MAX_TEXT_BYTES)}: train on a part of it")
    text = decode_utf8(path)
    # Valid UTF-8 can still be binary (NUL bytes, control codes): a model would learn noise.
    control = sum(1 for c in text if ord(c) < 32 and c not in "\n\t\r\f\v")
    if "\x00" in text or control > 0.01 * len(text):
        raise StudioError(f"{path} looks like a binary file, not text ({control} control "
                          "characters such as NUL bytes); give a plain UTF-8 text file.")
    if len(text) < MIN_CHARACTERS:
        raise StudioError(f"{path} holds only {len(text)} characters; a text data set needs at "
                          f"least {MIN_CHARACTERS} (ideally hundreds of thousands).")
    return text


def read_shakespeare() -> str:
    """The bundled corpus: eight plays, ~1.1 million characters (see PROVENANCE.md)."""
    corpus = resources.files(__package__).joinpath("shakespeare.txt")
    return corpus.read_text(encoding="utf-8")
