"""Paired data for image-to-image models (pipelines/data/paired.py): A/ and B/ folders, side by
side pictures, a zip, partners matched by name (the rest skipped and counted), mixed sizes
read at one size, clear one-line refusals, and the bundled shapes-edges."""

import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from pipelines.cli import main
from pipelines.core.base import data_info
from pipelines.core.errors import StudioError
from pipelines.data import BUNDLED_DATASETS, ImageData, load_data
from pipelines.data.paired import PairedImageData


def grey(value, size=(16, 16)):
    return Image.fromarray(np.full(size[::-1], value, np.uint8))


def red(value, size=(16, 16)):
    picture = np.zeros(size[::-1] + (3,), np.uint8)
    picture[..., 0] = value
    return Image.fromarray(picture)


def make_a_b(root, count=10, sizes=None):
    """Pair k: a grey input of value 20k in A/, a red target of value 20k in B/ (a .jpg in B
    for odd k: partners match by name without the suffix)."""
    (root / "A").mkdir(parents=True)
    (root / "B").mkdir()
    for k in range(count):
        size = sizes[k % len(sizes)] if sizes else (16, 16)
        grey(20 * k, size).save(root / "A" / f"{k}.png")
        red(20 * k, size).save(root / "B" / f"{k}.{'jpg' if k % 2 else 'png'}")
    return root


def assert_pairs_match(data):
    """Each input's grey value is its target's red value, in both splits."""
    for inputs, targets in ((data.train_inputs, data.train_targets),
                            (data.val_inputs, data.val_targets)):
        np.testing.assert_allclose(inputs[:, 0, 8, 8], targets[:, 0, 8, 8], atol=3 / 255)


def test_a_b_folders_load_as_pairs(tmp_path):
    data = load_data(f"paired:{make_a_b(tmp_path / 'set')}")
    assert isinstance(data, PairedImageData) and isinstance(data, ImageData)
    assert data.kind == "paired" and data.skipped_files == 0
    assert data.train_inputs.shape == (9, 1, 32, 32) and data.val_inputs.shape == (1, 1, 32, 32)
    assert data.train_targets.shape == (9, 3, 32, 32) and data.train_targets.dtype == np.float32
    assert (data.input_channels, data.target_channels, data.channels) == (1, 3, 3)
    assert data.image_size == 32 and data.num_classes == 1 and data.class_names == ["set"]
    assert data.train_labels.dtype == np.int64 and not data.train_labels.any()
    assert_pairs_match(data)
    info = data_info(data)
    assert info == {"name": data.name, "kind": "paired", "channels": 1, "target_channels": 3,
                    "image_size": 32, "num_classes": 1, "class_names": ["set"]}


def test_partners_without_a_match_are_skipped_and_counted(tmp_path):
    root = make_a_b(tmp_path / "set")
    grey(7).save(root / "A" / "lonely.png")           # no partner in B/
    red(7).save(root / "B" / "orphan.png")            # no partner in A/
    (root / "notes.txt").write_text("a loose file")   # in neither
    (root / "A" / "9.png").write_bytes(b"not a picture")   # its pair is unusable
    data = load_data(f"paired:{root}")
    assert data.skipped_files == 5 and len(data.train_inputs) + len(data.val_inputs) == 9
    assert_pairs_match(data)


def test_side_by_side_pictures_split_down_the_middle(tmp_path):
    root = tmp_path / "sbs"
    (root / "train").mkdir(parents=True)
    for k in range(6):
        picture = np.zeros((16, 32, 3), np.uint8)
        picture[:, :16] = 20 * k                      # left: grey input
        picture[:, 16:, 0] = 20 * k                   # right: red target
        Image.fromarray(picture).save(root / "train" / f"{k}.png")
    data = load_data(f"paired:{root}?layout=side_by_side&size=16")
    assert data.train_inputs.shape == (5, 3, 16, 16) and data.image_size == 16
    assert_pairs_match(data)
    assert np.allclose(data.train_targets[:, 1:], 0) and data.train_inputs[:, 1:].any()


def test_a_zip_reads_like_its_folder(tmp_path):
    root = make_a_b(tmp_path / "set")
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for file in sorted(root.rglob("*.*")):
            z.write(file, f"photos/{file.relative_to(root).as_posix()}")   # under one root
    from_zip, from_folder = load_data(f"paired:{archive}"), load_data(f"paired:{root}")
    np.testing.assert_array_equal(from_zip.train_inputs, from_folder.train_inputs)
    np.testing.assert_array_equal(from_zip.val_targets, from_folder.val_targets)
    assert from_zip.class_names == ["photos"]


def test_mixed_sizes_are_read_at_one_size(tmp_path):
    root = make_a_b(tmp_path / "set", sizes=[(16, 16), (40, 30), (64, 64)])
    data = load_data(f"paired:{root}?size=8")
    assert data.train_inputs.shape[1:] == (1, 8, 8) and data.train_targets.shape[1:] == (3, 8, 8)
    assert load_data(f"paired:{root}", image_size=16).image_size == 16


def make_b_only(root):
    (root / "A").mkdir(parents=True)
    (root / "B").mkdir()
    for k in range(2):
        red(k).save(root / "B" / f"{k}.png")


def make_unmatched(root):
    make_a_b(root, 3)
    for target in (root / "B").iterdir():
        target.rename(target.with_name("x" + target.name))


BAD = {
    "empty A": (make_b_only, "paired:{}", "no input images in A/ (found 2 in B/)"),
    "no partners": (make_unmatched, "paired:{}",
                    "none of the 3 images in A/ has a partner of the same name in B/"),
    "layout": (make_a_b, "paired:{}?layout=diagonal", "layout must be folders or side_by_side"),
    "option": (make_a_b, "paired:{}?colour=red", "takes the options layout and size"),
    "size": (make_a_b, "paired:{}?size=3", "Image size 3 is not supported"),
    "missing": (lambda root: None, "paired:{}", "does not exist"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_sets_are_refused_in_one_line(tmp_path, case):
    setup, spec, message = BAD[case]
    root = tmp_path / "set"
    setup(root)
    with pytest.raises(StudioError) as error:
        load_data(spec.format(root))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_shapes_edges_pairs_each_shape_with_its_outline(capsys):
    load_data("digits")                      # scikit-learn imported (the split needs it)
    start = time.process_time()
    data = load_data("shapes-edges")
    # CPU seconds, which other work on the machine does not inflate: ~1 s here.
    assert time.process_time() - start < 3
    shapes = load_data("shapes")
    # The targets are the shapes set itself: the same pictures, labels and split.
    np.testing.assert_array_equal(data.train_targets, shapes.train_images)
    np.testing.assert_array_equal(data.val_labels, shapes.val_labels)
    assert data.class_names == shapes.class_names and data.num_classes == 5
    assert data.train_inputs.shape == (4500, 1, 32, 32) and data.val_inputs.shape == (500, 1, 32, 32)
    # A drawing is paper of the picture's own background with an outline in the other tone:
    # most pixels are the background's, some are ink, and no fill colour is in it.
    for drawing, target in zip(data.val_inputs[:50], data.val_targets[:50]):
        paper = target[:, 0, 0].mean()
        assert np.mean(np.abs(drawing[0] - paper) < 0.01) > 0.8
        assert np.abs(drawing[0] - paper).max() > 0.5
    assert load_data("shapes-edges", image_size=16).val_inputs.shape == (500, 1, 16, 16)
    assert ("shapes-edges", "paired") in [(n, k) for n, k, _ in BUNDLED_DATASETS]
    assert main(["list"]) == 0 and "shapes-edges" in capsys.readouterr().out
