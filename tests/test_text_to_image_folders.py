"""Text-to-image on the user's own captioned images: a `folder:` whose images each have a
caption (a .txt beside each, or metadata.jsonl) trains ddpm-text from the CLI, samples from its
own captions when no prompt is given, reads any prompt in its words, and is judged at the end."""

import json

import pytest

from helpers import DIFFUSION_TINY_TEXT, make_captioned_folder
from pipelines.cli import main
from pipelines.data import load_data
from pipelines.services.loading import load_for_sampling
from pipelines.core.errors import StudioError
from pipelines.core.runs import list_runs

TINY = DIFFUSION_TINY_TEXT


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("t2i")
    make_captioned_folder(root / "squares", "jsonl")
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    assert main(["--runs-dir", str(root / "runs"), "train", "ddpm-text", "--data",
                 f"folder:{root / 'squares'}", "--steps", "6", "--batch-size", "4",
                 "--log-every", "2", "--sample-every", "6", "--checkpoint-every", "6",
                 "--no-final-eval", *sets]) == 0
    (summary,) = list_runs(root / "runs")
    return root, summary


def test_a_captioned_folder_trains_text_to_image_and_is_judged(folder_run):
    root, summary = folder_run
    info = json.loads((root / "runs" / summary["id"] / "run.json").read_text())
    assert info["status"] == "done"
    data_info = info["data_info"]
    assert data_info["caption_grammar"] is None              # free captions, not shapes'
    assert len(data_info["sample_prompts"]) == 2             # the validation captions
    assert all(p.startswith("a ") and " square number " in p for p in data_info["sample_prompts"])
    # the final evaluation's judge (500 images at the end of a real run; 12 here, in turn
    # from the 2 validation captions): its numbers next to the real-vs-real floor
    pipe = load_for_sampling(root / "runs" / summary["id"], device="cpu")
    data = load_data(info["data"], image_size=8)
    results = pipe.evaluate(data, root / "judges", n=12, steps=2)
    assert {"fd", "fd_floor"} <= set(results) and results["fd"] > 0
    assert "colour_accuracy" not in results                   # no shapes grammar to check


def test_it_samples_its_own_captions_or_a_prompt_in_its_words(folder_run, tmp_path):
    root, summary = folder_run
    pipe = load_for_sampling(root / "runs" / summary["id"], device="cpu")
    drawn = pipe.sample(3, seed=0, steps=2)
    assert drawn.images.shape == (3, 3, 8, 8)
    prompts = pipe.info["sample_prompts"]
    assert pipe.seeded_prompt(5) == prompts[5 % len(prompts)]
    assert pipe.sample(1, seed=0, steps=2, prompt="a blue square number 2").images.shape == \
        (1, 3, 8, 8)
    with pytest.raises(StudioError, match=r"never saw \(green\)"):
        pipe.sample(1, seed=0, steps=2, prompt="a green square")
    out = tmp_path / "grid.png"
    assert main(["--runs-dir", str(root / "runs"), "sample", summary["id"], "--n", "2",
                 "--out", str(out), "--set", "steps=2",
                 "--set", "prompt=a red square number 1"]) == 0
    assert out.stat().st_size > 0


def test_text_conditioning_on_uncaptioned_images_says_what_to_give(tmp_path, capsys):
    make_captioned_folder(tmp_path / "squares", "sidecar")
    for caption in (tmp_path / "squares").rglob("*.txt"):
        caption.unlink()
    assert main(["--runs-dir", str(tmp_path / "runs"), "train", "ddpm-text", "--data",
                 f"folder:{tmp_path / 'squares'}", "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "conditioning=text needs captioned images; folder:" in err and "has no captions" in err
    assert "cat1.txt beside cat1.png, or a metadata.jsonl" in err
