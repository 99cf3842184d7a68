"""The bundled plays read as (speaker, spoken line) pairs, for `shakespeare-lines`
(pipelines/data/language.py cuts them into passages). How the text is laid out, and what
the regular expressions below handle, is said in language.py above its passages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..core.errors import StudioError

_BYLINE = "by William Shakespeare"
_TITLE_PREFIXES = ("The Tragedy of ", "The Life and Death of ")   # kept out of class names
_BODY_START = re.compile(r"^(?:ACT\s+(?:I|1)\b|INDUCTION|THE PROLOGUE)")
_HEADING = re.compile(r"^(?:(?:ACT|SCENE|Scene)\s+[IVX\d]+\b.*|INDUCTION\.?|(?:THE )?PROLOGUE\.?"
                      r"|EPILOGUE\.?|SONG\.?)$")
_CAPS_SPEAKER = re.compile(r"^([A-Z][A-Z'\-]+(?:(?: +| *, *| +and +)[A-Z][A-Z'\-]+)*)"
                           r"(?:\.|$)\s*(.*)$")
# (in mixed case a speech on the name's line follows two spaces: "Peter.  I saw no man")
_MIXED_SPEAKER = re.compile(r"^((?:\d+ )?[A-Z][a-z'\-]+(?: +[A-Z][a-z'\-]+)?)\.(?:  +(.*))?$")
_SMALL_WORDS = {"of", "and", "the", "for"}


@dataclass(frozen=True)
class _Play:
    title: str                                 # readable: "Romeo and Juliet"
    lines: tuple[tuple[str, str], ...]         # (speaker, one spoken line), in play order


@lru_cache(maxsize=1)
def plays() -> tuple[_Play, ...]:
    from .text import read_shakespeare
    lines = read_shakespeare().split("\n")
    starts = [i - 2 for i, line in enumerate(lines) if line.strip() == _BYLINE]
    ends = starts[1:] + [len(lines)]
    return tuple(_Play(_readable_title(lines[a]), tuple(_spoken_lines(lines[a + 3:b])))
                 for a, b in zip(starts, ends))


def _readable_title(title: str) -> str:
    """'THE TRAGEDY OF KING RICHARD THE SECOND' -> 'King Richard the Second'."""
    words = title.strip().split()
    text = " ".join(w if _is_roman(w) else (w.lower() if i and w.lower() in _SMALL_WORDS
                                             else w.capitalize()) for i, w in enumerate(words))
    for prefix in _TITLE_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix)].upper() + text[len(prefix) + 1:]
    return text


def _is_roman(word: str) -> bool:
    return len(word) > 1 and set(word) <= set("IVX")


def _speaker_name(raw: str) -> str:
    """'FIRST CITIZEN' -> 'First Citizen'; 'GHOST OF RIVERS' -> 'Ghost of Rivers'."""
    return " ".join(w.lower() if i and w.lower() in _SMALL_WORDS
                    else w.capitalize() if w.isupper() else w
                    for i, w in enumerate(raw.split()))


def _spoken_lines(lines: list[str]) -> list[tuple[str, str]]:
    """(speaker, line) for every spoken line of one play's text, without its title, persons,
    headings, speaker names and stage directions. Text before the first act, and a speech
    with no speaker named since the last heading (the Tempest's epilogue), is left out."""
    body = next((i for i, line in enumerate(lines) if _BODY_START.match(line.strip())), None)
    if body is None:
        raise StudioError("the bundled plays are damaged (a play without ACT I); reinstall "
                          "the package")
    spoken: list[tuple[str, str]] = []
    speaker, in_direction, after_break, in_heading = None, False, True, False
    since_break = 0   # lines kept since the last blank line or direction
    for raw in lines[body:]:
        # Two directions are never closed ("[Enter MENENIUS"): a blank line ends any.
        in_direction = in_direction and bool(raw.strip())
        text, in_direction, had_direction, early_close = _without_directions(raw, in_direction)
        if early_close:   # "[Enter ... they join]" / "with the Nymphs ... vanish.]": the
            del spoken[len(spoken) - since_break:]   # lines since it opened were direction
        text = text.strip()
        if not text:
            after_break = after_break or had_direction or not raw.strip()
            since_break = 0 if after_break else since_break
            in_heading = in_heading and bool(raw.strip())
            continue
        # A heading runs on to the next blank line ("SCENE III. ... Lists set out, and a" /
        # "Throne." / "Heralds, &c., attending."), as does Measure for Measure's one SONG.
        if in_heading or _HEADING.match(text):
            speaker, after_break, in_heading = None, True, True
            continue
        # A speaker's name follows a blank line or a direction, except once ("CITIZENS." in
        # Coriolanus III.1, straight after a speech line): a name in capitals alone is enough.
        found = _CAPS_SPEAKER.match(text) or (_MIXED_SPEAKER.match(text) if after_break else None)
        if found and (after_break or (text.endswith(".") and not found.group(2))):
            speaker, text = _speaker_name(found.group(1)), found.group(2) or ""
        since_break = 0 if after_break or had_direction else since_break
        after_break = False
        if speaker is not None and any(c.isalpha() for c in text):
            spoken.append((speaker, " ".join(text.split())))
            since_break += 1
    return spoken


def _without_directions(line: str, in_direction: bool) -> tuple[str, bool, bool, bool]:
    """The line with its [stage directions] cut out; whether a direction is still open at
    its end; whether it held any direction; whether a ']' closed a direction that no '['
    opened (the text before it is direction, too)."""
    kept, had, early_close = [], in_direction, False
    for char in line:
        if in_direction:
            in_direction = char != "]"
        elif char in "[{":
            in_direction = had = True
        elif char == "]":
            kept, had, early_close = [], True, True
        else:
            kept.append(char)
    return "".join(kept), in_direction, had, early_close
