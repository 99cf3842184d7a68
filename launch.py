"""Open Generative Media Studio in the browser.

    python launch.py [--host 127.0.0.1] [--port 7860] [--no-browser] [--share] [--runs-dir DIR]

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
                   help="Address to serve on (0.0.0.0 for other machines; default 127.0.0.1).")
    p.add_argument("--port", type=int, default=7860, help="Port (default 7860).")
    p.add_argument("--no-browser", action="store_true", help="Do not open a browser tab.")
    p.add_argument("--share", action="store_true",
                   help="Also make a public gradio.live link (needs the internet).")
    p.add_argument("--runs-dir", default=None,
                   help="Folder of run folders (default $STUDIO_RUNS_DIR or ./checkpoints).")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from studio.app import launch_studio
    try:
        launch_studio(args.runs_dir, host=args.host, port=args.port,
                      inbrowser=not args.no_browser, share=args.share)
    except OSError as e:  # e.g. the port is taken
        print(f"launch.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
