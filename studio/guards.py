"""What a web user may reach on this machine: which data paths the page may train on, no upload
route in a read-only studio, and which addresses count as this machine only.

- `confine_data_spec`: a data spec typed into the page (or sent to /train, /dry_run) may name
  files only under the runs folder (uploads land in its .data/) or a folder the person starting
  the studio allowed with `launch.py --data-dir DIR`. The CLI keeps any path: whoever types it
  already has the machine.
- `RequestLimits`: ASGI middleware: no request body over a limit reaches Gradio, and in a
  read-only studio (--viewer) Gradio's upload route answers 403 before a byte of the body is
  read, so an anonymous visitor of a shared link cannot store anything.
- `is_loopback`: whether a --host serves this machine only (launch.py refuses other hosts
  without a login, as it refuses --share).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Iterable

from pipelines.core.errors import StudioError

UPLOADS_FOLDER = ".data"        # under the runs folder: where studio/uploads.py stores uploads


def allowed_data_roots(runs_dir: str | os.PathLike,
                       data_dirs: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """The folders the page may read data from, resolved (symlinks followed)."""
    runs = Path(runs_dir).expanduser().resolve()
    return [runs, runs / UPLOADS_FOLDER] + [Path(d).expanduser().resolve() for d in data_dirs]


def spec_path(spec: str) -> str | None:
    """The path a data spec names (`folder:P`, `text:P`, `csv:P`, any `prefix:P`, or a bare path
    such as ./x or /x), or None for a bundled name like digits or iris."""
    spec = (spec or "").strip()
    prefix, colon, argument = spec.partition(":")
    if colon and len(prefix) > 1:          # (one letter: a Windows drive, C:\...)
        return argument.strip()
    if colon or any(c in spec for c in "/\\~") or spec.startswith("."):
        return spec
    return None


def confine_data_spec(spec: str, runs_dir: str | os.PathLike,
                      data_dirs: Iterable[str | os.PathLike] = (),
                      cwd: str | os.PathLike | None = None) -> None:
    """Refuse (StudioError, one line) a data spec from the page whose path lies outside the runs
    folder and the --data-dir folders. Relative paths count from `cwd`, as the training job
    reads them; `..` and symlinks are resolved first. Says nothing about whether the path
    exists."""
    raw = spec_path(spec)
    if not raw:                 # a bundled name, or an empty path the loader explains
        return
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = Path(cwd if cwd is not None else Path.cwd()) / path
    path = path.resolve()
    roots = allowed_data_roots(runs_dir, data_dirs)
    if any(path == root or root in path.parents for root in roots):
        return
    names_a_file = spec.strip().lower().startswith(("text:", "csv:", "pairs:")) or bool(path.suffix)
    extra = [str(r) for r in roots[2:]]
    allowed = f"the runs folder {roots[0]}" + (f" or {', '.join(extra)}" if extra else "")
    raise StudioError(f"{spec.strip()}: the studio's page may only read data under {allowed}; "
                      f"upload the file instead, or start the studio with --data-dir "
                      f"{path.parent if names_a_file else path} to allow that folder")


def is_loopback(host: str) -> bool:
    """Whether `host` (a --host value) is reachable from this machine only."""
    host = (host or "").strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False          # a name: it may resolve to any address


class RequestLimits:
    """ASGI middleware in front of the whole app. Any request body over `max_body` bytes is
    refused: 413 at once when its Content-Length says so, else cut off where it passes the
    limit (so one request of Gradio's, which may carry up to 1,000 files of max_file_size
    each, cannot either). With `refuse_uploads` (a read-only studio) Gradio's upload route
    (any path ending in /upload) answers 403 without reading the body."""

    READ_ONLY = b"this studio is read-only (--viewer): it accepts no uploads"

    def __init__(self, app, max_body: int, refuse_uploads: bool = False):
        self.app, self.max_body, self.refuse_uploads = app, int(max_body), refuse_uploads

    async def __call__(self, scope, receive, send):
        if scope.get("type") != "http":
            return await self.app(scope, receive, send)
        if self.refuse_uploads and is_upload_path(scope.get("path", "")):
            return await _answer(send, 403, self.READ_ONLY)
        length = dict(scope.get("headers") or []).get(b"content-length", b"0")
        try:
            declared = int(length)
        except ValueError:
            declared = 0
        if declared > self.max_body:
            return await _answer(send, 413, f"the request is {declared:,} bytes; this studio "
                                            f"accepts at most {self.max_body:,}".encode())
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:          # (a body without a Content-Length)
                    return {"type": "http.disconnect"}
            return message

        return await self.app(scope, limited_receive, send)


async def _answer(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def is_upload_path(path: str) -> bool:
    return path.rstrip("/").rsplit("/", 1)[-1].lower() == "upload"
