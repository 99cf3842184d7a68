"""Run by tests/test_scale.py under `accelerate launch --num_processes 2`: several real CLI
commands (`pipelines.cli.main`, what the `studio` script runs) in one launch, so the test pays
for starting the processes once.

    python tests/scale_launch.py RUNS_DIR "train dcgan --data digits --name gan ..." "resume @gan --steps 8"

Each command is one argument, its words split on spaces; `@NAME` stands for the folder of the
run named NAME under RUNS_DIR (its id starts with a time stamp the test cannot know)."""

import sys
from pathlib import Path

from accelerate import PartialState

from pipelines.cli import close_process_group, main


def resolve(word: str, runs_dir: Path) -> str:
    if not word.startswith("@"):
        return word
    (path,) = [p for p in runs_dir.iterdir() if p.name.endswith("-" + word[1:])]
    return str(path)


if __name__ == "__main__":
    runs_dir = Path(sys.argv[1])
    for command in sys.argv[2:]:
        words = [resolve(w, runs_dir) for w in command.split()]
        code = main(["--runs-dir", str(runs_dir), *words])
        if code:
            sys.exit(code)
        # As if each command were its own launch: the next starts when every process is done
        # (else process 1 could ask to resume a run that process 0 is still closing).
        PartialState(cpu=True).wait_for_everyone()
    close_process_group()            # as the `studio` command does when it ends
