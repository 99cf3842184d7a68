"""Limits on what reaches the studio, each fault reproduced: a zip of decompression bombs, a zip
entry too big to read whole, the CLI's loaders, a page that names /etc/passwd, --host 0.0.0.0
without a login, an anonymous upload to a shared read-only studio, an upload over the size
limit, and the sample pictures a session leaves behind. Limits live in pipelines/core/limits.py."""

import http.client
import importlib.util
import io
import json
import os
import re
import struct
import time
import tracemalloc
import urllib.error
import urllib.request
import uuid
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.core import limits
from pipelines.data import load_data
from pipelines.data.tabular import load_table
from pipelines.core.errors import StudioError
from pipelines.services.imaging import read_images
from studio.app import build_app, launch_options, launch_studio
from studio.guards import confine_data_spec, is_loopback
from studio.jobs import JobManager
from studio.outputs import OutputCache
from studio.uploads import store_upload

from helpers import free_port, tiny_run, wait_for

REPO = Path(__file__).resolve().parents[1]
BOMB_SIDE = 13000


# --- files that cost more than they weigh ----------------------------------------------------

def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A valid 1-bit black PNG of side x side pixels: ~20 KB on disk, 169 million pixels and
    ~14 s of CPU to decode."""
    row = b"\x00" * (1 + (side + 7) // 8)         # filter byte, then 1 bit per pixel
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def small_png(value: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def write_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


@pytest.fixture(scope="module")
def bomb():
    return bomb_png()


def test_a_zip_of_decompression_bombs_is_refused_at_once_naming_the_picture(tmp_path, bomb):
    archive = write_zip(tmp_path / "pets.zip", {"pets/cats/a.png": small_png(),
                                                 "pets/cats/bomb.png": bomb,
                                                 "pets/dogs/bomb2.png": bomb})
    assert archive.stat().st_size < 100_000           # KBs on disk...
    started = time.monotonic()
    with pytest.raises(StudioError) as refused:       # ...refused from the header, not decoded
        load_data(f"folder:{archive}")
    assert time.monotonic() - started < 3
    message = str(refused.value)
    assert "pets.zip: pets/cats/bomb.png is 13000x13000 pixels (169 million)" in message
    assert "at most 64 million" in message and "shrink it" in message
    assert "\n" not in message
    # The upload check refuses it before it is stored.
    with pytest.raises(StudioError, match="bomb.png is 13000x13000"):
        store_upload(archive, tmp_path / "runs")
    assert not (tmp_path / "runs" / ".data").exists()


def test_pils_bomb_guard_stays_on_even_if_a_library_switched_it_off(tmp_path, bomb,
                                                                     monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    monkeypatch.setattr(limits, "MAX_IMAGE_PIXELS", 10**12)   # only PIL's own guard left
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "a.png").write_bytes(small_png())
    (folder / "b.png").write_bytes(small_png(255))
    (folder / "bomb.png").write_bytes(bomb)
    started = time.monotonic()
    with pytest.raises(StudioError,
                       match="scans/bomb.png is 13000x13000 pixels .* at most 89 million"):
        load_data(f"folder:{folder}")
    assert time.monotonic() - started < 3


def test_an_oversized_zip_entry_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_IMAGE_FILE_BYTES", 2**20)
    archive = write_zip(tmp_path / "set.zip", {"set/a.png": small_png(),
                                                "set/b.png": small_png(255),
                                                "set/huge.png": bytes(40 * 2**20),
                                                "set/notes.bin": bytes(40 * 2**20)})
    assert archive.stat().st_size < 1_000_000
    monkeypatch.setattr(zipfile.ZipFile, "read", lambda *a, **k: pytest.fail("read whole"))
    tracemalloc.start()
    try:
        with pytest.raises(StudioError) as refused:
            load_data(f"folder:{archive}")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(refused.value) == ("set.zip: set/huge.png is 40 MB; an image file may be at "
                                  "most 1 MB: shrink it or leave it out")
    assert peak < 8 * 2**20                       # never the 40 MB entry in memory
    with pytest.raises(StudioError, match="huge.png is 40 MB"):
        store_upload(archive, tmp_path / "runs")
    # A big file not named like a picture is skipped unread; the set loads.
    fine = write_zip(tmp_path / "fine.zip", {"set/a.png": small_png(), "set/b.png": small_png(9),
                                             "set/notes.bin": bytes(40 * 2**20)})
    data = load_data(f"folder:{fine}")
    assert data.skipped_files == 1 and len(data.train_images) + len(data.val_images) == 2


def test_a_zip_that_expands_past_the_total_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_UNZIPPED_BYTES", 3 * 2**20)
    archive = write_zip(tmp_path / "many.zip", {f"many/{i}.png": bytes(2**20) for i in range(5)})
    with pytest.raises(StudioError, match="many.zip expands to 5 MB; a zip of images may "
                                          "expand to at most 3 MB: split it"):
        load_data(f"folder:{archive}")


def test_the_cli_loaders_have_the_same_limits(tmp_path, bomb, monkeypatch, capsys):
    from pipelines.cli import main
    folder = tmp_path / "pics"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "one.png").write_bytes(small_png())
    (folder / "a" / "bomb.png").write_bytes(bomb)
    runs = tmp_path / "runs"
    assert main(["--runs-dir", str(runs), "train", "dcgan", "--data", f"folder:{folder}"]) == 2
    err = capsys.readouterr().err
    assert "pics/a/bomb.png is 13000x13000 pixels" in err
    # Text and tables: refused from their size, before a byte is read.
    monkeypatch.setattr(limits, "MAX_TEXT_BYTES", 1000)
    monkeypatch.setattr(limits, "MAX_TABLE_BYTES", 1000)
    corpus = tmp_path / "big.txt"
    corpus.write_text("to be or not to be " * 200, encoding="utf-8")
    assert main(["--runs-dir", str(runs), "train", "rnn", "--data", f"text:{corpus}"]) == 2
    assert "big.txt is 4 KB; a text data set may be at most 1000 bytes: train on a part" in (
        capsys.readouterr().err)
    table = tmp_path / "big.csv"
    table.write_text("x,y\n" + "1,2\n" * 500)
    with pytest.raises(StudioError, match="big.csv is 2 KB; a table may be at most 1000 "):
        load_table(f"csv:{table}", task="classification", target="y")
    # A tool's input pictures (studio tool --input) too.
    (tmp_path / "in.png").write_bytes(bomb)
    with pytest.raises(StudioError, match="in.png is 13000x13000"):
        read_images([tmp_path / "in.png"], channels=1, size=8)


# --- what the page may read --------------------------------------------------------------

def test_the_page_reads_data_only_from_the_runs_folder_and_allowed_folders(tmp_path):
    runs = tmp_path / "runs"
    jobs = JobManager(runs, cwd=tmp_path)
    for spec in ("text:/etc/passwd", "folder:/etc", "csv:~/x.csv", f"text:{runs}/../x.txt",
                 "folder:../../etc", "/etc/passwd"):
        with pytest.raises(StudioError, match="may only read data under the runs folder") as e:
            jobs.dry_run("rnn", spec)
        assert "--data-dir" in str(e.value) and "\n" not in str(e.value)
        with pytest.raises(StudioError, match="may only read data under"):
            jobs.start("rnn", spec)
    assert jobs.jobs() == []                        # no job was even started
    # Bundled sets, the runs folder and its uploads are fine.
    for spec in ("digits", "shakespeare", "iris", f"folder:{runs}/.data/x.zip", "text:runs/a.txt"):
        confine_data_spec(spec, runs, (), tmp_path)
    # --data-dir allows a folder (the way /etc would be): the path reaches the loader.
    allowed = tmp_path / "etc"
    allowed.mkdir()
    (allowed / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    app = build_app(runs, viewer=False, data_dirs=[str(allowed)])
    try:
        with pytest.raises(StudioError, match="holds only 32 characters"):
            app.studio_jobs.dry_run("rnn", f"text:{allowed / 'passwd'}")
        with pytest.raises(StudioError, match=re.escape(f"or {allowed};")):
            app.studio_jobs.dry_run("rnn", "text:/etc/passwd")
    finally:
        app.studio.worker.close()


def load_launch():
    spec = importlib.util.spec_from_file_location("launch_for_tests", REPO / "launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_host_other_than_loopback_needs_a_login_like_share(capsys, tmp_path):
    launch = load_launch()
    for host in ("0.0.0.0", "192.168.1.5", "::", "studio.example.org"):
        assert launch.main(["--host", host, "--no-browser"]) == 2
        err = capsys.readouterr().err
        assert f"--host {host} serves the studio to other machines" in err and "--auth" in err
    assert launch.main(["--share", "--no-browser"]) == 2
    assert "--share makes a public link" in capsys.readouterr().err
    assert all(map(is_loopback, ("127.0.0.1", "localhost", "::1", "127.0.0.2")))
    with pytest.raises(SystemExit):
        launch.parse_args(["--data-dir", str(tmp_path / "missing")])
    assert "is not a folder" in capsys.readouterr().err
    args = launch.parse_args(["--data-dir", str(tmp_path), "--data-dir", str(tmp_path)])
    assert args.data_dir == [str(tmp_path)] * 2


# --- the page's sample pictures ------------------------------------------------------------

def batch(root: Path, size: int = 1000) -> Path:
    folder = root / time.strftime("%Y%m%d") / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    (folder / "grid.png").write_bytes(bytes(size))
    return folder


def test_the_output_cache_is_bounded_per_session_in_bytes_and_in_age(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "OUTPUT_BATCHES_PER_SESSION", 2)
    monkeypatch.setattr(limits, "OUTPUT_MIN_AGE_SECONDS", 0)
    root = tmp_path / "runs" / ".ui"
    cache = OutputCache(root)
    a = [batch(root) for _ in range(3)]
    for folder in a:
        cache.keep(folder, session="a")
    assert [f.exists() for f in a] == [False, True, True]
    b = batch(root)
    cache.keep(b, session="b")
    assert cache.drop_session("a") == 2 and not any(f.exists() for f in a) and b.exists()
    # All sessions together: the oldest go first.
    monkeypatch.setattr(limits, "OUTPUT_MAX_BYTES", 2500)
    c = [batch(root) for _ in range(3)]
    for i, folder in enumerate(c):
        cache.keep(folder, session=f"c{i}")
    assert not b.exists() and not c[0].exists() and c[1].exists() and c[2].exists()
    # Old folders, tracked or left by a stopped studio, go after OUTPUT_MAX_AGE_SECONDS.
    stale = batch(root)
    os.utime(stale, (time.time() - limits.OUTPUT_MAX_AGE_SECONDS - 10,) * 2)
    cache.sweep()
    assert not stale.exists() and c[2].exists()
    # Nothing outside .ui/ is ever deleted.
    outside = tmp_path / "runs" / "keep-me"
    outside.mkdir()
    cache.keep(outside, session="c2")
    cache.drop_session("c2")
    assert outside.exists()


# --- a shared, read-only studio over HTTP ------------------------------------------------------

def post_upload(base: str, data: bytes, name: str = "big.bin") -> tuple[int, str]:
    """What `curl -F files=@big.bin BASE/gradio_api/upload` sends."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        base + "/gradio_api/upload", data=body, method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (ConnectionError, urllib.error.URLError) as e:   # closed before the body was read
        return 0, str(e)


def stored_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.fixture(scope="module")
def viewer(tmp_path_factory):
    """One shared read-only studio (as `launch.py --share --viewer` serves it) over a tiny
    finished DCGAN run, with its own Gradio upload folder and a quick heartbeat."""
    patch = pytest.MonkeyPatch()
    temp = tmp_path_factory.mktemp("gradio-temp")
    patch.setenv("GRADIO_TEMP_DIR", str(temp))
    patch.setenv("GRADIO_HEARTBEAT_INTERVAL", "0.5")
    patch.setattr(limits, "OUTPUT_BATCHES_PER_SESSION", 2)
    runs = tmp_path_factory.mktemp("viewer") / "runs"
    run, status = tiny_run(runs, name="img")
    assert status == "done"
    port = free_port()
    app = launch_studio(runs, port=port, inbrowser=False, viewer=True, prevent_thread_lock=True)
    yield {"base": f"http://127.0.0.1:{port}", "runs": runs, "run": run.id, "app": app,
           "temp": temp}
    app.studio.worker.close()
    app.close()
    patch.undo()


def test_a_viewer_studio_has_no_upload_route(viewer):
    before = stored_files(viewer["temp"])
    status, body = post_upload(viewer["base"], os.urandom(64 * 1024))
    assert status == 403 and "read-only" in body
    assert stored_files(viewer["temp"]) == before
    assert viewer["app"].max_file_size == limits.MAX_UPLOAD_BYTES
    # Nor can files reach it another way (the drawing pad's route, 1,000 files a request):
    # a body over the viewer's request limit is refused before it is read.
    connection = http.client.HTTPConnection(viewer["base"].removeprefix("http://"), timeout=10)
    connection.putrequest("POST", "/gradio_api/component_server")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(limits.MAX_VIEWER_REQUEST_BYTES + 1))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and b"at most" in response.read()
    connection.close()
    # The page itself still works.
    with urllib.request.urlopen(viewer["base"] + "/config", timeout=10) as response:
        assert json.loads(response.read())["title"] == "Generative Media Studio"


def test_a_viewer_sessions_samples_are_bounded_and_deleted_when_it_leaves(viewer, tmp_path):
    from gradio_client import Client
    ui = viewer["runs"] / ".ui"
    client = Client(viewer["base"] + "/", verbose=False, download_files=str(tmp_path))
    files = []
    for seed in (1, 2, 3):
        pictures, batch_zip, message = client.predict(viewer["run"], seed, 4, api_name="/sample")
        assert len(pictures) == 4, message
        files.append(pictures)
    batches = viewer["app"].studio.outputs.session_batches(client.session_hash)
    assert len(batches) == 2                        # OUTPUT_BATCHES_PER_SESSION
    on_disk = [p for p in ui.glob("*/*") if p.is_dir()]
    assert sorted(on_disk) == sorted(batches)
    assert sum(len(list(b.iterdir())) for b in on_disk) == 2 * (4 + 2)   # PNGs, grid, zip
    # Served from .ui/ itself, not copied into Gradio's cache as well.
    assert not [p for p in stored_files(viewer["temp"]) if p.suffix == ".png"]
    client.close()                                  # the session is left
    wait_for(lambda: not [p for p in ui.glob("*/*") if p.is_dir()], 30,
             "the session's pictures to be deleted")


def test_an_upload_over_the_limit_is_refused_by_gradio_before_it_is_stored(tmp_path,
                                                                         monkeypatch):
    temp = tmp_path / "gradio-temp"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(temp))
    monkeypatch.setattr(limits, "MAX_UPLOAD_BYTES", 256 * 1024)
    runs = tmp_path / "runs"
    app = build_app(runs)
    port = free_port()
    app.launch(server_port=port, prevent_thread_lock=True, quiet=True,
               **launch_options(runs))
    base = f"http://127.0.0.1:{port}"
    try:
        status, body = post_upload(base, os.urandom(1024 * 1024))
        assert status == 413 and "maximum allowed size" in body
        assert stored_files(temp) == []             # not even a partial file
        status, body = post_upload(base, os.urandom(1024), name="small.bin")
        assert status == 200 and "small.bin" in body
        assert [p.name for p in stored_files(temp)] == ["small.bin"]
    finally:
        app.studio.worker.close()
        app.close()
