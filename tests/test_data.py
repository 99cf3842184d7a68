"""The data sets: shapes, ranges, labels, the fixed split, and a user's messy folders and files."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from pipelines.data import BUNDLED_DATASETS, ImageData, TextData, load_data
from pipelines.core.errors import StudioError

from helpers import make_captioned_folder


def assert_valid_images(data: ImageData, channels: int, size: int) -> None:
    """Shapes, dtypes and ranges every ImageData must have."""
    for images, labels in ((data.train_images, data.train_labels),
                           (data.val_images, data.val_labels)):
        assert images.dtype == np.float32 and labels.dtype == np.int64
        assert images.shape[1:] == (channels, size, size) and len(images) == len(labels)
        assert images.min() >= 0.0 and images.max() <= 1.0
        assert labels.min() >= 0 and labels.max() < data.num_classes
    assert data.channels == channels and data.image_size == size and data.kind == "image"


# --- bundled sets -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shapes_data() -> ImageData:
    return load_data("shapes")


def test_bundled_datasets_list_is_immutable():
    assert isinstance(BUNDLED_DATASETS, tuple)
    assert [(name, kind) for name, kind, _ in BUNDLED_DATASETS] == [
        ("digits", "image"), ("shapes", "image"), ("photos", "image"), ("shakespeare", "text"),
        ("shapes-edges", "paired"), ("shapes-seasons", "unpaired"),
        ("digits-m", "unpaired"), ("shakespeare-lines", "labelled-text"),
        ("dates", "text-pairs")]
    assert all(isinstance(entry, tuple) and entry[2] for entry in BUNDLED_DATASETS)


def test_digits_shapes_and_stratified_split():
    data = load_data("digits")
    assert_valid_images(data, channels=1, size=8)
    assert len(data.train_images) + len(data.val_images) == 1797
    assert data.class_names == [str(d) for d in range(10)]
    assert data.train_captions is None and data.skipped_files == 0
    # Stratified: every class keeps its 10% share of the validation set, to within rounding.
    val_counts = np.bincount(data.val_labels, minlength=10)
    totals = np.bincount(data.train_labels, minlength=10) + val_counts
    assert np.all(np.abs(val_counts - 0.1 * totals) <= 1)
    again = load_data("digits")
    assert np.array_equal(again.val_labels, data.val_labels)
    assert np.array_equal(again.val_images, data.val_images)


def test_digits_resized_keeps_split_and_range():
    small, big = load_data("digits"), load_data("digits", image_size=16)
    assert_valid_images(big, channels=1, size=16)
    assert np.array_equal(small.val_labels, big.val_labels)
    # Bilinear resizing keeps the mean brightness of each image roughly where it was.
    assert np.allclose(small.val_images.mean(axis=(1, 2, 3)), big.val_images.mean(axis=(1, 2, 3)),
                       atol=0.05)


def test_shapes_all_classes_with_matching_captions(shapes_data):
    assert_valid_images(shapes_data, channels=3, size=32)
    assert len(shapes_data.train_images) + len(shapes_data.val_images) == 5000
    assert shapes_data.num_classes >= 4
    assert set(shapes_data.val_labels) == set(range(shapes_data.num_classes))
    for images, labels, captions in (
            (shapes_data.train_images, shapes_data.train_labels, shapes_data.train_captions),
            (shapes_data.val_images, shapes_data.val_labels, shapes_data.val_captions)):
        assert len(captions) == len(images)
        for label, caption in zip(labels, captions):
            assert caption.startswith("a ") and caption.endswith(" background")
            assert f" {shapes_data.class_names[label]} at the " in caption
    # The drawn image agrees with its caption's background.
    for image, caption in zip(shapes_data.val_images[:50], shapes_data.val_captions[:50]):
        corner = image[:, 0, 0]
        assert np.allclose(corner, 1.0 if caption.endswith("white background") else 0.0)


def test_shapes_are_deterministic(shapes_data):
    again = load_data("shapes")
    assert np.array_equal(again.train_images, shapes_data.train_images)
    assert again.val_captions == shapes_data.val_captions


def test_shakespeare_loads():
    data = load_data("shakespeare", image_size=32)  # image_size is ignored for text
    assert isinstance(data, TextData) and data.kind == "text"
    assert len(data.train_text) + len(data.val_text) > 1_000_000
    assert "ROMEO" in data.train_text


def test_unknown_spec_lists_valid_specs():
    with pytest.raises(StudioError) as error:
        load_data("mnist")
    for spec in ("digits", "shapes", "shakespeare", "folder:", "text:"):
        assert spec in str(error.value)


def test_bad_image_size_is_a_studio_error():
    with pytest.raises(StudioError, match="Image size"):
        load_data("digits", image_size=0)


# --- a user's image folder ----------------------------------------------------------------

def make_mixed_folder(root):
    """Two classes of images in assorted sizes, modes and formats, plus two unreadable files."""
    cats, dogs = root / "cats", root / "dogs"
    cats.mkdir(parents=True)
    dogs.mkdir()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(cats / "a.jpg")
    Image.new("RGBA", (20, 50), (0, 0, 255, 0)).save(cats / "b.png")  # fully transparent
    Image.new("RGB", (33, 33), (10, 200, 10)).convert("P").save(cats / "c.gif")
    Image.new("CMYK", (16, 24), (0, 255, 255, 0)).save(cats / "d.tiff")
    Image.new("RGB", (64, 64), (90, 90, 250)).save(cats / "e.webp")
    Image.new("L", (50, 20), 128).save(dogs / "f.png")
    Image.new("LA", (30, 30), (0, 255)).save(dogs / "g.png")
    Image.new("RGB", (12, 40), (250, 250, 0)).save(dogs / "h.bmp")
    Image.new("I;16", (24, 24), 16384).save(dogs / "i.png")  # a quarter of full scale
    (dogs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    (root / "cats" / "notes.txt").write_text("not an image")
    (root / ".DS_Store").write_bytes(b"hidden files are ignored, not counted")


def make_gray_folder(root):
    """One class of grayscale images directly in the folder."""
    root.mkdir(parents=True)
    Image.new("L", (40, 40), 200).save(root / "a.png")
    Image.new("1", (10, 30), 1).save(root / "b.bmp")
    Image.new("LA", (32, 32), (50, 0)).save(root / "c.png")  # transparent -> white
    Image.new("I;16", (20, 20), 65535).save(root / "d.png")
    Image.new("L", (25, 25), 60).save(root / "e.jpg")


def all_images(data: ImageData) -> np.ndarray:
    return np.concatenate([data.train_images, data.val_images])


def test_mixed_folder_classes_channels_and_skips(tmp_path):
    make_mixed_folder(tmp_path / "pets")
    data = load_data(f"folder:{tmp_path / 'pets'}")
    assert_valid_images(data, channels=3, size=32)
    assert data.class_names == ["cats", "dogs"]
    assert len(all_images(data)) == 9 and data.skipped_files == 2
    labels = np.concatenate([data.train_labels, data.val_labels])
    assert np.bincount(labels).tolist() == [5, 4]
    # Transparency lands on white; a grey 16-bit image is scaled, not clipped to white.
    means = sorted(round(float(image.mean()), 2) for image in all_images(data))
    assert means[-1] == 1.0 and 0.25 in means


def test_folder_image_size(tmp_path):
    make_mixed_folder(tmp_path / "pets")
    data = load_data(f"folder:{tmp_path / 'pets'}", image_size=20)
    assert_valid_images(data, channels=3, size=20)


def test_gray_folder_is_one_channel_single_class(tmp_path):
    make_gray_folder(tmp_path / "scans")
    data = load_data(f"folder:{tmp_path / 'scans'}")
    assert_valid_images(data, channels=1, size=32)
    assert data.class_names == ["scans"] and data.skipped_files == 0
    assert len(all_images(data)) == 5


def test_zip_of_a_folder_matches_the_folder(tmp_path):
    make_gray_folder(tmp_path / "scans")
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((tmp_path / "scans").iterdir()):
            zf.write(path, f"scans/{path.name}")
        zf.writestr("__MACOSX/scans/._a.png", b"resource fork junk")
    from_zip = load_data(f"folder:{archive}")
    from_folder = load_data(f"folder:{tmp_path / 'scans'}")
    assert from_zip.class_names == ["scans"] and from_zip.skipped_files == 0
    assert np.array_equal(all_images(from_zip), all_images(from_folder))


def test_zip_with_class_folders_at_top_level(tmp_path):
    make_mixed_folder(tmp_path / "pets")
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((tmp_path / "pets").rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(tmp_path / "pets").as_posix())
    data = load_data(f"folder:{archive}")
    assert data.class_names == ["cats", "dogs"] and data.channels == 3
    assert len(all_images(data)) == 9 and data.skipped_files == 2


def test_corrupt_zip_is_a_studio_error(tmp_path):
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(StudioError, match="zip"):
        load_data(f"folder:{tmp_path / 'bad.zip'}")


def test_empty_and_missing_folders_explain_what_is_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(StudioError, match="no readable images.*subfolder"):
        load_data(f"folder:{tmp_path / 'empty'}")
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "readme.txt").write_text("hello")
    with pytest.raises(StudioError, match="1 files skipped"):
        load_data(f"folder:{tmp_path / 'texts'}")
    with pytest.raises(StudioError, match="does not exist"):
        load_data(f"folder:{tmp_path / 'nowhere'}")


# --- a user's text file -------------------------------------------------------------------

def test_text_file_split_is_contiguous(tmp_path):
    corpus = "".join(chr(ord("a") + i % 26) for i in range(1000))
    (tmp_path / "corpus.txt").write_text(corpus, encoding="utf-8")
    data = load_data(f"text:{tmp_path / 'corpus.txt'}")
    assert isinstance(data, TextData)
    assert data.train_text + data.val_text == corpus
    assert len(data.train_text) == 900 and len(data.val_text) == 100


def test_bad_text_files_are_studio_errors(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("caf\u00e9 ".encode("latin-1") * 50)
    with pytest.raises(StudioError, match="UTF-8"):
        load_data(f"text:{tmp_path / 'latin1.txt'}")
    with pytest.raises(StudioError, match="does not exist"):
        load_data(f"text:{tmp_path / 'missing.txt'}")
    (tmp_path / "short.txt").write_text("too short")
    with pytest.raises(StudioError, match="at least 100"):
        load_data(f"text:{tmp_path / 'short.txt'}")


# --- captions (text-to-image on the user's own images) -----------------------------------------
@pytest.mark.parametrize("how", ["sidecar", "jsonl", "csv"])
def test_a_folder_with_captions_carries_one_per_image(tmp_path, how):
    make_captioned_folder(tmp_path / "set", how)
    data = load_data(f"folder:{tmp_path / 'set'}", image_size=16)
    assert data.class_names == ["blue", "red"] and data.skipped_files == 0
    captions = data.train_captions + data.val_captions
    assert len(captions) == 12 and len(data.train_captions) == len(data.train_labels)
    for caption, label in zip(data.train_captions, data.train_labels):
        assert caption.startswith(f"a {data.class_names[label]} square")   # each its own image's
    zipped = tmp_path / "set.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for path in sorted((tmp_path / "set").rglob("*")):
            archive.write(path, path.relative_to(tmp_path))
    from_zip = load_data(f"folder:{zipped}", image_size=16)
    assert from_zip.train_captions == data.train_captions


def test_a_folder_without_captions_has_none_and_partial_captions_are_refused(tmp_path):
    make_captioned_folder(tmp_path / "set", "sidecar")
    (tmp_path / "set" / "red" / "3.txt").unlink()
    with pytest.raises(StudioError, match=r"1 of 12 images have no caption; give each image one"):
        load_data(f"folder:{tmp_path / 'set'}", image_size=16)
    for caption in (tmp_path / "set").rglob("*.txt"):
        caption.unlink()
    assert load_data(f"folder:{tmp_path / 'set'}", image_size=16).train_captions is None
    (tmp_path / "set" / "metadata.jsonl").write_text('{"file": "red/1.png"}\n')
    with pytest.raises(StudioError, match="metadata.jsonl line 1 has no file_name and text"):
        load_data(f"folder:{tmp_path / 'set'}", image_size=16)
    (tmp_path / "set" / "metadata.jsonl").write_text('file_name: red/1.png\n')
    with pytest.raises(StudioError, match="metadata.jsonl line 1 is not a JSON object with a "
                                          "file_name and a text"):
        load_data(f"folder:{tmp_path / 'set'}", image_size=16)
