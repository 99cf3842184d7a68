"""Chat with a text model in its corpus's own format: a multi-turn session in which the user
speaks as one character and the model answers as another.

A language model trained on plays knows one way a conversation is written down, its corpus's:

    ROMEO.                          (a speaker line: the name in capitals and a full stop,
    But soft, what light ...         the plays' format; `speaker_format` finds it)

    JULIET.
    Ay me.

so a chat is only a prompt: the turns so far in that format, then the answering speaker's
line, and the model's continuation up to the end of its speech (a blank line in the plays,
the end of the line in "NAME: text" transcripts) is its reply. Nothing is trained for it; how
well the model keeps to its part is what the chat shows. Torch-free but for the pipeline's own
`stream`.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Iterator

from ..core.errors import StudioError

PLAYS, COLON = "NAME.", "NAME:"     # "ROMEO.\nline\n\n" and "ROMEO: line\n"
_PLAY_SPEAKER = re.compile(r"(?:^|\n\n)([A-Z][A-Z' ]{1,30}[A-Z])\.\n(?=\S)")
_COLON_SPEAKER = re.compile(r"(?m)^([A-Za-z][A-Za-z' ]{0,30}):[ \t]+\S")
MAX_NAME = 40
MAX_TURN_CHARACTERS = 2000
DEFAULT_SPEAKERS = ("YOU", "MODEL")


def speaker_format(corpus: str, top: int = 20) -> dict[str, Any]:
    """How the corpus writes who speaks, and its most frequent speakers (most frequent
    first): {"style": "NAME." or "NAME:", "speakers": [...]}. A corpus with neither (fewer
    than 20 speaker lines) gets the colon style and two generic names."""
    found = {style: Counter(pattern.findall(corpus))
             for style, pattern in ((PLAYS, _PLAY_SPEAKER), (COLON, _COLON_SPEAKER))}
    style = max(found, key=lambda s: sum(found[s].values()))
    if sum(found[style].values()) < 20:
        return {"style": COLON, "speakers": list(DEFAULT_SPEAKERS)}
    return {"style": style, "speakers": [name for name, _ in found[style].most_common(top)]}


def check_turns(turns: Any, you: str, them: str, style: str) -> list[dict[str, str]]:
    """The session's turns as [{"speaker", "text"}], refused with a message if malformed."""
    if style not in (PLAYS, COLON):
        raise StudioError(f"unknown chat style {style!r}: use {PLAYS!r} or {COLON!r}")
    for who, name in (("your character", you), ("the model's character", them)):
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME \
                or any(c in name for c in ".:\n"):
            raise StudioError(f"{who} needs a name of 1-{MAX_NAME} characters without "
                              f"'.', ':' or a line break")
    if not isinstance(turns, list) or not turns:
        raise StudioError("say something first: the chat has no turns")
    checked = []
    for turn in turns:
        if not (isinstance(turn, dict) and isinstance(turn.get("speaker"), str)
                and isinstance(turn.get("text"), str)):
            raise StudioError("each chat turn needs a speaker and a text")
        text = turn["text"].strip()
        if not text:
            raise StudioError("a chat turn is empty: write what your character says")
        if len(text) > MAX_TURN_CHARACTERS:
            raise StudioError(f"a chat turn holds at most {MAX_TURN_CHARACTERS:,} characters")
        checked.append({"speaker": turn["speaker"].strip(), "text": text})
    return checked


def transcript(turns: list[dict[str, str]], style: str) -> str:
    """The turns written the corpus's way."""
    if style == PLAYS:
        return "".join(f"{t['speaker'].upper()}.\n{t['text']}\n\n" for t in turns)
    return "".join(f"{t['speaker']}: {' '.join(t['text'].split())}\n" for t in turns)


def chat_prompt(turns: list[dict[str, str]], them: str, style: str) -> str:
    """The transcript so far, then the answering character's speaker line."""
    cue = f"{them.strip().upper()}.\n" if style == PLAYS else f"{them.strip()}:"
    return transcript(turns, style) + cue


def reply_end(reply: str, style: str) -> int | None:
    """Where the model's speech ends in `reply` (the text after the cue), or None if not yet:
    at a blank line in the plays' format, at the end of the line in the colon format."""
    mark = "\n\n" if style == PLAYS else "\n"
    at = reply.find(mark, 1 if style == COLON else 0)
    return None if at < 0 else at


def stream_reply(pipe: Any, seed: int, turns: list[dict[str, str]], them: str, style: str,
                 controls: dict[str, Any]) -> Iterator[str]:
    """The answering character's reply so far, as the model writes it; it stops at the end of
    the speech (or after max_new_tokens, the reply then cut mid-speech)."""
    prompt = chat_prompt(turns, them, style)
    pieces = pipe.stream(seed, **{**controls, "prompt": prompt})
    next(pieces)                                    # stream yields the prompt first
    reply = ""
    for piece in pieces:
        reply += piece
        end = reply_end(reply, style)
        if end is not None:
            pieces.close()                          # the speech is over: stop generating
            yield reply[:end].strip()
            return
        yield reply.strip()
