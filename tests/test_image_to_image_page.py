"""The image-to-image families from the page and the CLI's chain: a super-resolution run
upscales another run's samples (`studio sample RUN --upscale-with SR_RUN`, the Images tab's
"Upscale with", recorded in the PNG so a restore brings it back); pix2pix's input | output |
target groups and the translate / upscale tools through the sampling worker, as the page
calls them."""

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from helpers import TINY
from pipelines.core.errors import StudioError
from pipelines.core.png_settings import read_settings
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
QUICK = {**TINY, "steps": 4, "sample_every": 0, "checkpoint_every": 4}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A DCGAN drawing 8 px colour shapes, an SRResNet upscaling 8 -> 32 px shapes, and a
    pix2pix on shapes-edges: tiny, a few steps each."""
    runs_dir = tmp_path_factory.mktemp("runs")
    made = {}
    for key, pipeline, data, config in (
            ("gan", "dcgan", "shapes", {"width": 8, "z_dim": 8, "image_size": 8}),
            ("sr", "srresnet", "shapes", {"width": 4, "blocks": 1, "image_size": 32}),
            ("p2p", "pix2pix", "shapes-edges", {"width": 4, "d_width": 4})):
        run = start_run(pipeline, data, config_overrides=config, trainer_overrides=QUICK,
                        runs_dir=runs_dir, name=key)
        assert train_run(run) == "done"
        made[key] = run.id
    return runs_dir, made


def studio_cli(runs_dir, *args):
    return subprocess.run([sys.executable, "-m", "pipelines", "--runs-dir", str(runs_dir),
                           *map(str, args)], capture_output=True, text=True, env=ENV,
                          timeout=300)


def test_studio_sample_upscales_another_runs_samples(runs, tmp_path):
    runs_dir, made = runs
    out = studio_cli(runs_dir, "sample", made["gan"], "--n", "4", "--seed", "2",
                     "--upscale-with", made["sr"], "--out", tmp_path / "up.png")
    assert out.returncode == 0, out.stderr
    plain = studio_cli(runs_dir, "sample", made["gan"], "--n", "4", "--seed", "2",
                       "--out", tmp_path / "plain.png")
    assert plain.returncode == 0, plain.stderr
    arrays = studio_cli(runs_dir, "sample", made["gan"], "--n", "4", "--seed", "2",
                        "--upscale-with", made["sr"], "--out", tmp_path / "up.npz")
    assert arrays.returncode == 0, arrays.stderr
    assert np.load(tmp_path / "up.npz")["images"].shape == (4, 3, 32, 32)   # 8 px, 4x larger
    assert read_settings(tmp_path / "up.png")["upscale_with"] == made["sr"]
    assert read_settings(tmp_path / "plain.png")["upscale_with"] is None
    # a run that does not upscale: one line
    bad = studio_cli(runs_dir, "sample", made["gan"], "--upscale-with", made["p2p"],
                     "--out", tmp_path / "x.png")
    assert bad.returncode == 2 and "does not upscale" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_images_tab_upscales_restores_and_shows_groups(runs):
    from studio.tabs.images import (NO_UPSCALE, restore_updates, sample_batch,
                                    upscaler_choices)
    from studio.outputs import OutputCache
    from studio.worker import SamplingWorker
    runs_dir, made = runs
    worker = SamplingWorker(runs_dir, threads=1)
    try:
        studio = SimpleNamespace(runs_dir=runs_dir, worker=worker,
                                 outputs=OutputCache(runs_dir / ".ui"),
                                 run_ids=lambda kind=None: list(made.values()))
        assert upscaler_choices(studio) == [NO_UPSCALE, made["sr"]]
        plain, _ = sample_batch(studio, made["gan"], "latest", 5, 2, None, {})
        shown, _ = sample_batch(studio, made["gan"], "latest", 5, 2, None, {}, made["sr"])
        # (the PNGs show small pictures enlarged, so the size is checked with the CLI's npz)
        assert read_settings(shown[0][0])["upscale_with"] == made["sr"]
        assert read_settings(plain[0][0])["upscale_with"] is None
        assert not np.array_equal(np.asarray(Image.open(shown[0][0])),
                                  np.asarray(Image.open(plain[0][0])))
        restored = restore_updates(studio, shown[1][0])
        assert restored[5].value == made["sr"]            # the Upscale with choice
        # pix2pix: 2 validation inputs -> 6 pictures, captioned in their groups
        shown, _ = sample_batch(studio, made["p2p"], "latest", 0, 2, None, {})
        assert [c for _, c in shown] == [f"seed 0 · {i}" for i in range(1, 7)]
        # the tools, as the Images tab's Tools panel calls them, on validation images
        for run, tool in ((made["p2p"], "translate"), (made["sr"], "upscale")):
            result = worker.call("tool", run=run, name=tool, options={"count": "2"})
            assert Path(result["image"]).is_file()
        with pytest.raises(StudioError, match="does not upscale"):
            sample_batch(studio, made["gan"], "latest", 5, 2, None, {}, made["gan"])
    finally:
        worker.close()


def test_the_tools_through_the_pages_api(runs, tmp_path):
    from gradio_client import Client, handle_file
    from helpers import free_port
    from studio.app import launch_studio
    runs_dir, made = runs
    Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(np.full((8, 8), 120, np.uint8)).save(tmp_path / "grey.png")
    port = free_port()
    app = launch_studio(runs_dir, port=port, inbrowser=False, prevent_thread_lock=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        image, values, message = client.predict(
            made["sr"], "upscale", [handle_file(str(tmp_path / "small.png"))], None,
            "latest", api_name="/tool")
        assert Path(image).is_file() and message.startswith("upscale on")
        image, values, message = client.predict(made["p2p"], "translate", None,
                                                 {"count": 2}, "latest", api_name="/tool")
        assert Path(image).is_file() and values
        *_, message = client.predict(made["sr"], "upscale",
                                     [handle_file(str(tmp_path / "grey.png"))], None,
                                     "latest", api_name="/tool")
        assert message.startswith("error: ") and "greyscale" in message
        assert "Traceback" not in message
        import zipfile
        with zipfile.ZipFile(tmp_path / "empty.zip", "w"):
            pass
        *_, message = client.predict(made["p2p"], "translate",
                                     [handle_file(str(tmp_path / "empty.zip"))], None,
                                     "latest", api_name="/tool")
        assert message.startswith("error: ") and "empty.zip holds no pictures" in message
    finally:
        app.studio.worker.close()
        app.close()


def test_a_zip_of_pictures_goes_to_the_tools(runs, tmp_path):
    """`--input x.zip` (and the page's upload of one) runs the tool on the zip's pictures; an
    empty zip, a zip of no pictures, a broken zip and a grey picture in a zip for a colour
    model are one line each, naming the picture by its path in the zip."""
    import zipfile
    runs_dir, made = runs
    buffers = {}
    for name, array in (("a.png", np.full((32, 32), 200, np.uint8)),
                        ("b.png", np.full((32, 32), 30, np.uint8)),
                        ("tiny.png", np.full((8, 8), 90, np.uint8))):
        Image.fromarray(array).save(tmp_path / name)
        buffers[name] = (tmp_path / name).read_bytes()
    with zipfile.ZipFile(tmp_path / "drawings.zip", "w") as z:
        z.writestr("drawings/a.png", buffers["a.png"])
        z.writestr("drawings/b.png", buffers["b.png"])
        z.writestr("__MACOSX/drawings/._a.png", b"resource fork")
        z.writestr("drawings/notes.txt", "not a picture")
    out = studio_cli(runs_dir, "tool", made["p2p"], "translate", "--input",
                     tmp_path / "drawings.zip", "--out", tmp_path / "zipped.png")
    assert out.returncode == 0, out.stderr
    single = studio_cli(runs_dir, "tool", made["p2p"], "translate", "--input",
                        tmp_path / "a.png", tmp_path / "b.png", "--out", tmp_path / "files.png")
    assert single.returncode == 0, single.stderr
    # the zip's two pictures, in order, are the same two rows as the files given one by one
    assert np.array_equal(np.asarray(Image.open(tmp_path / "zipped.png")),
                          np.asarray(Image.open(tmp_path / "files.png")))

    with zipfile.ZipFile(tmp_path / "empty.zip", "w"):
        pass
    with zipfile.ZipFile(tmp_path / "texts.zip", "w") as z:
        z.writestr("readme.txt", "no pictures here")
    (tmp_path / "broken.zip").write_bytes(b"PK not really")
    with zipfile.ZipFile(tmp_path / "grey.zip", "w") as z:
        z.writestr("small/grey.png", buffers["tiny.png"])
    for run, tool, name, said in (
            (made["p2p"], "translate", "empty.zip", "empty.zip holds no pictures"),
            (made["p2p"], "translate", "texts.zip", "texts.zip holds no pictures"),
            (made["p2p"], "translate", "broken.zip", "broken.zip is not a readable .zip"),
            (made["sr"], "upscale", "grey.zip", "grey.zip/small/grey.png is greyscale")):
        bad = studio_cli(runs_dir, "tool", run, tool, "--input", tmp_path / name,
                         "--out", tmp_path / "x.png")
        assert bad.returncode == 2 and said in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
