"""Open Generative Media Studio in the browser.

    python launch.py [--host 127.0.0.1] [--port 7860] [--no-browser] [--runs-dir DIR]
                     [--share] [--auth USER:PASSWORD ...] [--auth-file FILE] [--viewer]
                     [--max-jobs N] [--data-dir DIR ...]

Runs live in DIR (default $STUDIO_RUNS_DIR or ./checkpoints). Nothing here needs the network.
"""

from __future__ import annotations

import argparse
import os
import sys

# Before gradio (and anything that may import huggingface_hub) is imported.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="launch.py", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1",
                   help="Address to serve on (0.0.0.0 for other machines, which needs --auth "
                        "or --viewer; default 127.0.0.1).")
    p.add_argument("--port", type=int, default=7860, help="Port (default 7860).")
    p.add_argument("--no-browser", action="store_true", help="Do not open a browser tab.")
    p.add_argument("--share", action="store_true",
                   help="Also make a public gradio.live link (needs the internet).")
    p.add_argument("--auth", action="append", default=[], metavar="USER:PASSWORD",
                   help="Require a login; repeatable for several users.")
    p.add_argument("--auth-file", default=None,
                   help="A file of USER:PASSWORD lines (one per user) to require a login.")
    p.add_argument("--viewer", action="store_true",
                   help="Read-only: browse runs and sample, but no training, stopping, "
                        "deleting or uploading.")
    p.add_argument("--runs-dir", default=None,
                   help="Folder of run folders (default $STUDIO_RUNS_DIR or ./checkpoints).")
    p.add_argument("--max-jobs", type=int, default=1, metavar="N",
                   help="How many runs train at once (default 1); more wait in the queue. With "
                        "more than one, each trains on its share of the CPU cores.")
    p.add_argument("--data-dir", action="append", default=[], metavar="DIR",
                   help="A folder whose files the page may train on (folder:, text:, csv:), "
                        "besides the runs folder and its uploads; repeatable.")
    args = p.parse_args(argv)
    if args.max_jobs < 1:
        p.error("--max-jobs must be at least 1")
    for folder in args.data_dir:
        if not os.path.isdir(os.path.expanduser(folder)):
            p.error(f"--data-dir {folder} is not a folder")
    return args


def read_auth(pairs: list[str], auth_file: str | None) -> list[tuple[str, str]]:
    """(user, password) pairs from --auth and --auth-file; a malformed one is an error."""
    lines = list(pairs)
    if auth_file:
        try:
            with open(auth_file, encoding="utf-8") as f:
                lines += [line.strip() for line in f if line.strip() and not line.startswith("#")]
        except OSError as e:
            raise SystemExit(f"launch.py: error: cannot read --auth-file {auth_file}: {e}")
    users = []
    for line in lines:
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise SystemExit("launch.py: error: each login must be USER:PASSWORD (both "
                             "non-empty)")
        users.append((user, password))
    return users


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    auth = read_auth(args.auth, args.auth_file)
    from studio.guards import is_loopback
    exposed = ("--share makes a public link anyone can open" if args.share else
               None if is_loopback(args.host) else
               f"--host {args.host} serves the studio to other machines")
    if exposed and not auth and not args.viewer:
        print(f"launch.py: error: {exposed}; with no login they could train, delete runs and "
              "upload files on this machine. Pass --auth USER:PASSWORD (or --auth-file FILE), "
              "or --viewer for a read-only studio.", file=sys.stderr)
        return 2
    from pipelines.core.debug_log import route_library_warnings
    from pipelines.core.runs import runs_dir_from_env
    route_library_warnings(runs_dir_from_env(args.runs_dir))   # not the page's console
    from studio.app import launch_studio
    try:
        launch_studio(args.runs_dir, host=args.host, port=args.port,
                      inbrowser=not args.no_browser, share=args.share, auth=auth or None,
                      viewer=args.viewer, max_jobs=args.max_jobs, data_dirs=args.data_dir)
    except OSError as e:  # e.g. the port is taken
        print(f"launch.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
