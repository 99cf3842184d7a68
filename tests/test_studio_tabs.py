"""The tabs' plain-data parts, without a browser: live-view curves and progress, uploads
(limits, escaping zips, skipped files), presets, resume refusals."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from pipelines.core.errors import StudioError
from pipelines.core.presets import preset_steps
from pipelines.core.runs import RunFolder
from studio import live
from pipelines.core.liveness import TrainerLock
from studio.jobs import JobManager
from studio.tabs.train import preset_values
from studio.uploads import store_upload


def make_run(runs_dir, **info):
    run = RunFolder.create(runs_dir, "x", {"pipeline": "dcgan", "data": "digits",
                                           "status": "running", "step": 50, "total_steps": 100,
                                           **info})
    for step, loss in ((25, 1.0), (50, 0.0)):
        run.log_metrics({"step": step, "time": step / 10, "loss_g": loss, "val/elbo": -step})
    if run.info()["status"] == "running":   # as a live trainer: it holds the run's lock
        run.trainer_lock = TrainerLock(run.path)
        run.trainer_lock.acquire()
    return run


def test_curves_are_long_tables_with_optional_smoothing(runs_dir):
    run = make_run(runs_dir)
    train, checks = live.curve_frames(run, smoothing=0.5)
    assert list(train.columns) == ["step", "value", "series"]
    assert train["value"].tolist() == [1.0, 0.5]          # EMA: 0.5 * 1 + 0.5 * 0
    assert checks["series"].unique().tolist() == ["val/elbo"]
    assert checks["value"].tolist() == [-25.0, -50.0]     # validation is never smoothed


def test_progress_line_says_step_eta_speed_and_device(runs_dir):
    run = make_run(runs_dir, eta_seconds=125, elapsed_seconds=61, steps_per_sec=8.5,
                   device="cpu", precision="bf16", processes=1, warning="mode collapse?",
                   peak_memory_mb=812.4)
    text = live.progress_text(run)
    for part in ("**running**", "step 50/100", "ETA 2m05s", "elapsed 1m01s", "8.5 steps/s",
                 "cpu, bf16 precision, 1 process(es)", "peak memory 812 MB", "mode collapse?"):
        assert part in text
    queued = make_run(runs_dir, status="queued", step=0)
    assert "waiting for a free slot: 2 ahead" in live.progress_text(queued, ahead=2)
    assert "starting" in live.progress_text(queued) and "peak" not in live.progress_text(queued)
    assert "process exited with code 1" in live.progress_text(run, exit_code=1)


def zip_bytes(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def png_bytes():
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_uploads_are_checked_and_copied_into_the_data_folder(tmp_path, runs_dir):
    empty = tmp_path / "empty.zip"
    empty.write_bytes(b"")
    with pytest.raises(StudioError, match="empty"):
        store_upload(empty, runs_dir)
    evil = tmp_path / "evil.zip"
    evil.write_bytes(zip_bytes({"a/ok.png": png_bytes(), "../x.png": png_bytes()}))
    with pytest.raises(StudioError, match="outside its folder"):
        store_upload(evil, runs_dir)
    good = tmp_path / "my pics.zip"
    good.write_bytes(zip_bytes({"cats/a.png": png_bytes(), "dogs/b.png": png_bytes(),
                                "notes.txt": b"hello"}))
    spec, note = store_upload(good, runs_dir)
    assert spec.startswith(f"folder:{runs_dir / '.data'}") and spec.endswith("my-pics.zip")
    assert "2 images" in note and "1 other files skipped" in note
    text = tmp_path / "play.txt"
    text.write_text("To be, or not to be. " * 20)
    spec, _ = store_upload(text, runs_dir)
    assert spec.startswith("text:") and (runs_dir / ".data").is_dir()
    binary = tmp_path / "b.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(StudioError, match="UTF-8"):
        store_upload(binary, runs_dir)
    assert sorted(p.suffix for p in (runs_dir / ".data").iterdir()) == [".txt", ".zip"]


def test_a_csv_and_a_tsv_upload_become_csv_and_pairs_data(tmp_path, runs_dir):
    from pipelines.data.language import load_labelled_text, load_text_pairs
    table = tmp_path / "my passages.csv"
    table.write_text("passage,play\n" + "".join(f'"line {i}\nand more {i}",{"AB"[i % 2]}\n'
                                                 for i in range(40)), encoding="utf-8")
    spec, note = store_upload(table, runs_dir)
    assert spec.startswith("csv:") and "rows" in note
    data = load_labelled_text(spec, text_column="passage", target_column="play")
    assert data.class_names == ["A", "B"]
    pairs = tmp_path / "dates.tsv"
    pairs.write_text("".join(f"{d}/3/1994\t1994-03-{d:02d}\n" for d in range(1, 29)))
    spec, note = store_upload(pairs, runs_dir)
    assert spec.startswith("pairs:") and "28 source-target pairs" in note
    loaded = load_text_pairs(spec)
    assert ("1/3/1994", "1994-03-01") in loaded.train_pairs + loaded.val_pairs
    for name, body, problem in (("header.csv", "passage,play\n", "no rows"),
                                ("plain.tsv", "no tab here\n", "no line with a tab"),
                                ("notes.pdf", "%PDF", "not a .zip of images, a .txt")):
        (tmp_path / name).write_text(body)
        with pytest.raises(StudioError, match=problem):
            store_upload(tmp_path / name, runs_dir)


def test_presets_scale_the_familys_default_steps():
    assert preset_steps(2000, "quick look") == 200
    assert preset_steps(2000, "default") == 2000
    assert preset_steps(2000, "long") == 6000
    assert preset_steps(100, "quick look") == 50


def test_a_preset_fills_the_options_it_sets_and_default_restores_them():
    from studio.common import describe
    desc = describe("transformer")     # what the page builds the form from
    assert list(desc["presets"]) == ["quick look", "default", "long", "gpu"]
    config, trainer = preset_values(desc, "gpu")
    assert (config["n_layer"], config["n_embd"], config["context"]) == (6, 384, 256)
    assert (trainer["steps"], trainer["batch_size"], trainer["mixed_precision"]) == (5000, 64,
                                                                                      "auto")
    assert "tokenizer" not in config and "seed" not in trainer   # no preset sets them
    defaults = {s["name"]: s["default"] for s in desc["options"] + desc["trainer"]}
    config, trainer = preset_values(desc, "default")
    assert {**config, **trainer} == {k: defaults[k] for k in {**config, **trainer}}  # undone
    assert preset_values(desc, "quick look")[1]["steps"] == max(50, defaults["steps"] // 10)
    assert preset_values({**desc, "presets": {}}, "gpu") == ({}, {})   # fit in one go

    bert = describe("bert")            # its `long` is a recipe: it fills options, not only steps
    config, trainer = preset_values(bert, "long")
    assert (config["vocab_size"], config["pretrain_steps"], trainer["steps"]) == (16384, 3000,
                                                                                 4000)
    bert_defaults = {s["name"]: s["default"] for s in bert["options"]}
    assert preset_values(bert, "default")[0]["vocab_size"] == bert_defaults["vocab_size"]


def test_picking_a_data_set_sets_every_trainer_field_that_family_sizes_by_data():
    """biggan trains digits in batches of 32 (a 10-minute budget), other data in its 64: the
    form's batch box follows the data picked like its steps box, and a preset still wins."""
    from studio.common import describe
    from studio.tabs.train import data_values
    desc = describe("biggan")
    names = [s["name"] for s in desc["trainer"]]
    on = {data: dict(zip(names, data_values(desc, "default", data)))
          for data in ("digits", "shapes")}
    assert (on["digits"]["steps"], on["digits"]["batch_size"]) == (8000, 32)
    assert (on["shapes"]["steps"], on["shapes"]["batch_size"]) == (3000, 64)
    gpu = dict(zip(names, data_values(desc, "gpu", "digits")))
    assert gpu["batch_size"] == 128
    assert preset_values(desc, "default", "digits")[1]["batch_size"] == 32   # gpu undone


def test_resume_refuses_a_done_run_without_more_steps_and_a_missing_run(runs_dir):
    jobs = JobManager(runs_dir)
    run = make_run(runs_dir, status="done")
    with pytest.raises(StudioError, match="is done"):
        jobs.resume(run.id)
    with pytest.raises(StudioError, match="no run"):
        jobs.resume("nope")


def test_runs_compare_configs_and_delete_keeps_training_runs(runs_dir):
    from pipelines.core.runs import delete_run
    from studio.common import Studio
    from studio.tabs.runs import config_comparison, metric_names, overlay_frame
    a = make_run(runs_dir, status="done", config={"lr": 0.1, "width": 8})
    b = make_run(runs_dir, status="done", config={"lr": 0.2, "width": 8})
    studio = Studio(runs_dir, JobManager(runs_dir), worker=None)
    table = config_comparison(studio, [a.id, b.id])
    assert "| **lr** | **0.1** | **0.2** |" in table and "| width | 8 | 8 |" in table
    assert metric_names(studio, [a.id])[0] == "loss_g"
    frame = overlay_frame(studio, [a.id, b.id], "loss_g")
    assert sorted(frame["run"].unique()) == sorted([a.id, b.id]) and len(frame) == 4
    import os, socket
    busy = make_run(runs_dir, status="running", pid=os.getpid(), host=socket.gethostname())
    with pytest.raises(StudioError, match="is training"):
        delete_run(runs_dir, busy.id)
    assert busy.info_path.is_file()
    with pytest.raises(StudioError, match="not a run id"):
        delete_run(runs_dir, "../x")
    assert delete_run(runs_dir, a.id) == f"deleted run {a.id}" and not a.path.exists()


def test_a_kept_checkpoint_survives_pruning_and_the_timeline_says_so(runs_dir):
    from pipelines.core.checkpoints import prune_checkpoints
    from studio.tabs.timeline import grid_strip, timeline_frame
    run = make_run(runs_dir)
    for step in (100, 200, 300, 400):
        run.checkpoint_dir(step).mkdir(parents=True)
        run.sample_path(step).write_bytes(b"\x89PNG fake")
    run.keep_checkpoint(100)
    with pytest.raises(StudioError, match="no checkpoint at step 150"):
        run.keep_checkpoint(150)
    prune_checkpoints(run, keep=2)
    assert run.checkpoint_steps() == [100, 300, 400] and run.kept_steps() == [100]
    captions = [caption for _, caption in grid_strip(run)]
    assert captions == ["step 100 · kept", "step 200", "step 300 · checkpoint",
                        "step 400 · checkpoint"]
    frame = timeline_frame(run)
    assert set(frame["series"]) == {"loss_g", "val/elbo"} and frame["value"].dtype == float


def test_the_sketch_pad_picture_is_checked_and_answers_tabulated():
    from studio.tabs.classify import answers_table, picture_from
    with pytest.raises(StudioError, match="draw a digit"):
        picture_from(None)
    with pytest.raises(StudioError, match="empty"):
        picture_from({"composite": np.zeros((32, 32, 4), np.uint8)})   # transparent pad
    drawn = np.zeros((32, 32, 4), np.uint8)
    drawn[4:28, 15:17, 3] = 255                                        # black ink stroke
    assert picture_from({"composite": drawn}).shape == (32, 32, 4)
    rows, bars = answers_table([{"run": "r1", "pipeline": "svm-rbf", "prediction": "1",
                                 "probabilities": {"0": 0.25, "1": 0.75}}])
    assert rows.values.tolist() == [["r1", "svm-rbf", "1", 0.75]]
    assert bars["probability"].sum() == 1.0


def test_a_tools_column_text_keeps_its_alignment_and_other_text_is_escaped():
    from studio.tabs.tools import tool_text
    report = "class      precision  recall\ncircle          0.93    0.88"
    assert tool_text(report) == f"```\n{report}\n```"
    assert tool_text("a <folder>\nsecond line") == "a &lt;folder&gt;\nsecond line"
    assert tool_text("x   ```   y\nz    w").count("```") == 2  # only the block's own fences
    table = "| class | f1 |\n| --- | --- |\n| a  b | 0.5  |"      # Markdown stays Markdown
    assert tool_text(table) == table and tool_text("one  gap") == "one  gap"



def test_a_run_list_is_sent_again_only_when_it_changed():
    """Each tab visit lists the runs; new choices fire a dropdown's change event (its panels,
    the Runs comparison, drawn again), so an unchanged list is skipped (studio.common)."""
    import gradio as gr
    from studio.common import changed_lists
    with gr.Blocks():
        a, b = gr.Dropdown([]), gr.Dropdown([])

    def sent(update):   # what an update sets (a component's own arguments), None for a skip
        return None if update == gr.skip() else update._constructor_args[0]
    updates, shown = changed_lists([a, b], [["r2", "r1"], []], {})
    assert [sent(u) for u in updates] == [{"choices": ["r2", "r1"]}, {"choices": []}]
    updates, shown = changed_lists([a, b], [["r2", "r1"], ["t1"]], shown)
    assert [sent(u) for u in updates] == [None, {"choices": ["t1"]}]
    updates, shown = changed_lists([a, b], [["r3", "r2", "r1"], ["t1"]], shown)
    assert [sent(u) for u in updates] == [{"choices": ["r3", "r2", "r1"]}, None]
