"""Unpaired data for CycleGAN (pipelines/data/unpaired.py): trainA/ and trainB/ folders, a zip,
testA/ and testB/ as validation (else the fixed 10% of each), `?size=`, clear one-line
refusals, and the bundled shapes-seasons (two domains, no scene in both)."""

import zipfile

import numpy as np
import pytest
from PIL import Image

from pipelines.cli import main
from pipelines.core.base import data_info
from pipelines.core.errors import StudioError
from pipelines.data import BUNDLED_DATASETS, ImageData, load_data
from pipelines.data.unpaired import UnpairedImageData, winter_look


def make_domains(root, a=10, b=20, test=0):
    """Grey pictures of value 10k in trainA/ (24 px), red ones in trainB/ (20 px); `test` of
    each in testA/ and testB/."""
    for folder, count in (("trainA", a), ("trainB", b), ("testA", test), ("testB", test)):
        if not count:
            continue
        (root / folder).mkdir(parents=True)
        for k in range(count):
            if folder.endswith("A"):
                picture = Image.fromarray(np.full((24, 24), 10 * k, np.uint8))
            else:
                rgb = np.zeros((20, 20, 3), np.uint8)
                rgb[..., 0] = 10 * k
                picture = Image.fromarray(rgb)
            picture.save(root / folder / f"{k}.png")
    return root


def test_train_a_and_train_b_load_as_two_domains(tmp_path):
    root = make_domains(tmp_path / "set")
    (root / "notes.txt").write_text("a loose file")
    (root / "trainB" / "broken.png").write_bytes(b"not a picture")
    data = load_data(f"unpaired:{root}")
    assert isinstance(data, UnpairedImageData) and isinstance(data, ImageData)
    assert data.kind == "unpaired" and data.skipped_files == 2
    assert data.train_a.shape == (9, 1, 32, 32) and data.val_a.shape == (1, 1, 32, 32)
    assert data.train_b.shape == (18, 3, 32, 32) and data.val_b.shape == (2, 3, 32, 32)
    assert data.train_images is data.train_b and data.train_a.dtype == np.float32
    assert not data.train_a_labels.any() and data.train_a_labels.dtype == np.int64
    values = np.sort(np.concatenate([data.train_a, data.val_a])[:, 0, 5, 5])
    np.testing.assert_allclose(values, np.arange(10) * 10 / 255, atol=1 / 255)
    assert data_info(data) == {"name": data.name, "kind": "unpaired", "channels": 1,
                               "target_channels": 3, "image_size": 32, "num_classes": 1,
                               "class_names": ["set"]}


def test_test_folders_are_the_validation_pictures_and_size_is_read(tmp_path):
    root = make_domains(tmp_path / "set", a=6, b=7, test=3)
    data = load_data(f"unpaired:{root}?size=16")
    assert data.train_a.shape == (6, 1, 16, 16) and data.val_a.shape == (3, 1, 16, 16)
    assert data.train_b.shape == (7, 3, 16, 16) and data.val_b.shape == (3, 3, 16, 16)


def test_a_zip_reads_like_its_folder(tmp_path):
    root = make_domains(tmp_path / "set", a=5, b=5)
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(root.rglob("*.png")):
            zf.write(path, f"set/{path.relative_to(root)}")
    zipped, folder = load_data(f"unpaired:{archive}"), load_data(f"unpaired:{root}")
    np.testing.assert_array_equal(zipped.train_a, folder.train_a)
    np.testing.assert_array_equal(zipped.val_b, folder.val_b)


def test_refusals_are_one_line(tmp_path, capsys):
    root = make_domains(tmp_path / "set", a=5, b=5)
    for picture in (root / "trainB").iterdir():
        picture.unlink()
    with pytest.raises(StudioError, match=r"set has no readable pictures in trainB/ .*"
                                          r"trainA/ and domain B's in trainB/"):
        load_data(f"unpaired:{root}")
    assert main(["--runs-dir", str(tmp_path / "runs"), "train", "cyclegan", "--data",
                 f"unpaired:{root}"]) == 2
    err = capsys.readouterr().err
    assert "no readable pictures in trainB/" in err and err.count("\n") == 1
    for spec, message in ((f"unpaired:{root}?layout=x", "takes the option size"),
                          (f"unpaired:{root}?size=big", "whole number of pixels"),
                          (f"unpaired:{tmp_path / 'nowhere'}", "does not exist")):
        with pytest.raises(StudioError, match=message):
            load_data(spec)


def test_shapes_seasons_is_two_unpaired_domains_of_shapes():
    assert ("shapes-seasons", "unpaired") in [(n, k) for n, k, _ in BUNDLED_DATASETS]
    data = load_data("shapes-seasons")
    assert data.kind == "unpaired" and data.class_names[:2] == ["circle", "square"]
    assert data.train_a.shape == data.train_b.shape == (2250, 3, 32, 32)
    assert data.val_a.shape == data.val_b.shape == (250, 3, 32, 32)
    assert np.bincount(data.val_a_labels).tolist() == np.bincount(data.val_labels).tolist() \
        == [50] * 5
    a, b = data.train_a, data.train_b
    # Summer is saturated on white or black; winter is cold (blue above red) and speckled.
    def saturation(x):                  # of each picture's most colourful pixel, on average
        return (x.max(1) - x.min(1)).reshape(len(x), -1).max(1).mean()
    assert saturation(a) > 2 * saturation(b)
    assert b[:, 2].mean() > b[:, 0].mean() + 0.05
    corners = a[:, :, :3, :3].reshape(len(a), -1)
    assert np.isin(np.round(corners, 3), (0.0, 1.0)).mean() > 0.95  # plain backgrounds
    assert b[:, :, :3, :3].std(axis=(2, 3)).mean() > 0.01           # a fine grain
    # No pairing: a winter picture is not its summer namesake in winter's look.
    own_look = winter_look(a[:200], seed=0)
    assert np.abs(own_look - b[:200]).mean() > 3 * np.abs(own_look - winter_look(a[:200], 1)
                                                           ).mean() / 2
    assert load_data("shapes-seasons", image_size=16).train_a.shape == (2250, 3, 16, 16)
