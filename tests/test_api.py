"""The studio over its API (gradio_client against a launched app): each tab's main action,
bad input on each answered with a message (never a traceback) that leaves every saved run
intact, a job training while the page samples, logins, and the read-only studio."""

import io
import json
import shutil
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from pipelines.classic.fit import fit_run
from pipelines.data.text import read_shakespeare
from pipelines.core.runs import RunFolder
from pipelines.core.run_setup import start_run
from pipelines.core.training_run import train_run
from studio.app import build_app, launch_studio

from helpers import free_port, tiny_run, wait_for

TINY_DCGAN = {"width": 8, "z_dim": 8, "batch_size": 16, "log_every": 1, "sample_every": 0,
              "final_eval": "false"}


def files_of(run_dir):
    """{relative path: (size, mtime)} of everything in a run folder."""
    return {str(p.relative_to(run_dir)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """One launched studio over three finished runs: a tiny DCGAN, a tiny character model
    and an SVM on digits."""
    runs_dir = tmp_path_factory.mktemp("api") / "runs"
    image, status = tiny_run(runs_dir, name="img")
    assert status == "done"
    corpus = tmp_path_factory.mktemp("text") / "plays.txt"
    corpus.write_text(read_shakespeare()[:12_000], encoding="utf-8")
    text = start_run("rnn", f"text:{corpus}", runs_dir=runs_dir, name="txt",
                     config_overrides={"embed_dim": 8, "hidden_size": 16, "context": 16},
                     trainer_overrides={"steps": 3, "batch_size": 8, "sample_every": 0,
                                        "checkpoint_every": 3, "final_eval": False})
    assert train_run(text) == "done"
    svm = fit_run("svm-rbf", "digits", runs_dir=runs_dir, name="svm")
    port = free_port()
    app = launch_studio(runs_dir, port=port, inbrowser=False, prevent_thread_lock=True)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    yield {"client": client, "runs_dir": runs_dir, "image": image.id, "text": text.id,
           "svm": svm.id, "app": app}
    app.studio_jobs.stop_all(timeout=30)
    app.studio.worker.close()
    app.close()


def call(studio, endpoint, *args):
    return studio["client"].predict(*args, api_name=f"/{endpoint}")


# --- each tab's main action -------------------------------------------------------------

def test_runs_table_compare_and_progress(studio):
    columns, rows, message = call(studio, "runs")
    assert columns[:4] == ["id", "pipeline", "data", "status"] and message == "3 runs"
    assert {row[0]: row[3] for row in rows} == {studio["image"]: "done", studio["text"]: "done",
                                                studio["svm"]: "done"}
    table, card, message = call(studio, "compare", [studio["image"], studio["text"]])
    assert "| **pipeline** | **dcgan** | **rnn** |" in table and card and message
    assert call(studio, "progress", studio["image"]).startswith("**done** · step 8/8")


def test_images_same_seed_same_bytes_and_a_zip_named_by_seed(studio):
    first, batch_zip, message = call(studio, "sample", studio["image"], 7, 3)
    again, _, _ = call(studio, "sample", studio["image"], 7, 3)
    assert len(first) == 3 and "seed 7" in message
    assert [open(a, "rb").read() for a in first] == [open(b, "rb").read() for b in again]
    assert sorted(zipfile.ZipFile(batch_zip).namelist()) == [f"seed{s}.png" for s in (7, 8, 9)]
    older, _, _ = call(studio, "sample", studio["image"], 7, 1, "4")   # checkpoint of step 4
    assert open(older[0], "rb").read() != open(first[0], "rb").read()


def test_text_writes_and_classify_answers(studio, tmp_path):
    text, message = call(studio, "write", studio["text"], 3, 2, "latest",
                         {"prompt": "ROMEO:", "max_new_tokens": 12})
    assert text.count("\n---\n") == 1 and text.startswith("ROMEO:") and "2 samples" in message
    picture = np.full((64, 64), 255, np.uint8)
    picture[10:54, 30:34] = 0                     # a one
    Image.fromarray(picture).save(tmp_path / "one.png")
    answers, message = call(studio, "classify", handle_file(str(tmp_path / "one.png")))
    assert [a["run"] for a in answers] == [studio["svm"]] and answers[0]["prediction"]


def test_train_queues_a_job_and_the_page_samples_while_it_trains(studio):
    run, message = call(studio, "train", "dcgan", "digits", {**TINY_DCGAN, "steps": 100000})
    assert run in message
    assert run in [row[0] for row in call(studio, "runs")[1]]
    wait_for(lambda: call(studio, "progress", run).startswith("**running**"), 90,
             "the job to train")
    # The page is not blocked by the job: sampling answers while it still trains.
    pictures, _, _ = call(studio, "sample", studio["image"], 0, 2)
    assert len(pictures) == 2 and call(studio, "progress", run).startswith("**running**")
    assert "asked run" in call(studio, "stop", run)
    wait_for(lambda: call(studio, "progress", run).startswith("**stopped**"), 60,
             "the job to stop")


def test_dry_run_reports_speed_memory_disk_and_eta_and_keeps_nothing(studio):
    before = sorted(p.name for p in studio["runs_dir"].iterdir())
    report = call(studio, "dry_run", "dcgan", "digits", TINY_DCGAN)
    for part in ("steps/s", "peak", "per checkpoint", "ETA"):
        assert part in report, report
    refused = call(studio, "dry_run", "dcgan", "digits", {**TINY_DCGAN, "width": "wide"})
    assert refused.startswith("error: ") and "width" in refused and "Traceback" not in refused
    assert sorted(p.name for p in studio["runs_dir"].iterdir()) == before


def test_timeline_keeps_a_checkpoint_and_runs_deletes_one(studio):
    runs_dir = studio["runs_dir"]
    assert call(studio, "keep_checkpoint", studio["image"], 4) == \
        f"step 4 of {studio['image']} is kept"
    assert RunFolder(runs_dir / studio["image"]).kept_steps() == [4]
    doomed = RunFolder.create(runs_dir, "doomed", {"pipeline": "dcgan", "data": "digits",
                                                   "status": "stopped", "step": 0})
    assert call(studio, "delete", doomed.id, False).startswith("error: pass confirm=True")
    assert call(studio, "delete", doomed.id, True) == f"deleted run {doomed.id}"
    assert not doomed.path.exists()


# --- bad input: a message, and every saved run intact ----------------------------------

def test_bad_input_gets_a_message_and_leaves_the_runs_intact(studio, tmp_path):
    runs_dir = studio["runs_dir"]
    kept = {r: files_of(runs_dir / studio[r]) for r in ("image", "text", "svm")}

    def refused(answer, words):
        message = answer[-1] if isinstance(answer, (tuple, list)) else answer
        assert message.startswith("error: ") and words in message, message
        assert "Traceback" not in message

    # Uploads: an empty file, a zip with an entry that climbs out, a path not uploaded.
    (tmp_path / "empty.zip").write_bytes(b"")
    refused(call(studio, "upload", handle_file(str(tmp_path / "empty.zip"))), "is empty")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("../x.png", b"not really")
    (tmp_path / "evil.zip").write_bytes(buf.getvalue())
    refused(call(studio, "upload", handle_file(str(tmp_path / "evil.zip"))), "outside its folder")
    refused(call(studio, "upload", {"path": str(runs_dir / studio["image"] / "run.json")}),
            "only a file uploaded")
    assert not (runs_dir / ".data").exists()
    # A word where a number goes.
    refused(call(studio, "sample", studio["image"], "seven", 2), "seed must be a whole number")
    refused(call(studio, "keep_checkpoint", studio["image"], "four"), "step must be a whole")
    refused(call(studio, "resume", studio["image"], "lots"), "steps must be a whole number")
    refused(call(studio, "train", "dcgan", "digits", {"steps": "many"}), "steps")
    # A run deleted while someone looks at it, and ids that are not run ids.
    gone = RunFolder.create(runs_dir, "gone", {"pipeline": "dcgan", "data": "digits",
                                               "status": "done", "step": 8})
    shutil.rmtree(gone.path)
    for endpoint in ("progress", "sample", "keep_checkpoint"):
        args = (gone.id, 4) if endpoint == "keep_checkpoint" else (gone.id,)
        refused(call(studio, endpoint, *args), "deleted?")
    refused(call(studio, "sample", "../" + studio["image"]), "not a run id")
    refused(call(studio, "compare", [studio["image"], gone.id]), "deleted?")
    # A corrupt checkpoint: a copy of the image run with its weights cut short.
    broken = runs_dir / (studio["image"] + "-broken")
    shutil.copytree(runs_dir / studio["image"], broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    refused(call(studio, "sample", broken.name, 0, 2), "model.safetensors")
    # Stopping or deleting what cannot be.
    refused(call(studio, "stop", studio["image"]), "not running")
    refused(call(studio, "dry_run", "nope", "digits"), "unknown pipeline")
    refused(call(studio, "sample", studio["text"], 0, 2), "writes text")
    assert {r: files_of(runs_dir / studio[r]) for r in kept} == kept
    shutil.rmtree(broken)


# --- logins and the read-only studio ----------------------------------------------------

def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, ""


def test_without_a_login_nothing_but_the_login_page(tmp_path):
    port = free_port()
    app = build_app(tmp_path / "runs")
    app.launch(server_port=port, prevent_thread_lock=True, auth=[("ann", "secret")],
               quiet=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for path in ("/config", "/gradio_api/info", "/gradio_api/info?all_endpoints=True"):
            status, body = get(base + path)
            assert status in (401, 403) and "runs" not in body, (path, status)
        status, body = get(base + "/")
        assert "dcgan" not in body            # the page itself is the login form
        with pytest.raises(Exception):
            Client(base + "/", verbose=False)
        with pytest.raises(Exception):
            Client(base + "/", auth=("ann", "wrong"), verbose=False)
        columns, rows, message = Client(base + "/", auth=("ann", "secret"),
                                        verbose=False).predict(api_name="/runs")
        assert rows == [] and message == "0 runs"
    finally:
        app.close()


def test_a_read_only_studio_has_no_training_deleting_or_uploading(tmp_path):
    port = free_port()
    app = build_app(tmp_path / "runs", viewer=True)
    app.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    base = f"http://127.0.0.1:{port}"
    try:
        config = json.loads(get(base + "/config")[1])
        props = [c.get("props", {}) for c in config["components"]]
        labels = {str(p.get("value")) for p in props} | {str(p.get("label")) for p in props}
        ids = {p.get("elem_id") for p in props}
        assert not ids & {"train-start", "train-dry-run", "train-pipeline", "live-stop",
                          "live-resume"}
        assert not labels & {"Delete", "Export", "Stop", "Keep this checkpoint"}
        assert not [c for c in config["components"] if c.get("type") in ("file", "uploadbutton")
                    and c["props"].get("interactive") is not False]   # downloads only
        client = Client(base + "/", verbose=False)
        endpoints = set(client.view_api(print_info=False, return_format="dict")
                        ["named_endpoints"])
        assert {"/runs", "/sample", "/write", "/progress"} <= endpoints
        assert not endpoints & {"/train", "/dry_run", "/stop", "/resume", "/upload", "/delete",
                                "/export", "/keep_checkpoint", "/classify"}
        # no drawing pad either (a drawing is an upload), but a note that says why
        assert "classify-pad" not in ids and "classify-viewer-note" in ids
        for endpoint in ("/train", "/delete", "/upload", "/stop"):
            with pytest.raises(ValueError, match="Cannot find"):
                client.predict("x", api_name=endpoint)
        status, _ = get(base + "/gradio_api/call/train")
        assert status in (404, 405)
        assert not app.studio_jobs.dispatching
    finally:
        app.close()
