"""Words for the text-to-image model: the caption tokenizer, the held-out (colour, shape) pairs,
prompts made from a seed, and measuring which colour a drawn shape is and where it is.

The tokenizer is a `tokenizers` WordLevel model over the caption vocabulary (about 30 words),
built once in `describe_data` and stored as its JSON text with the run; wrapped in
transformers' PreTrainedTokenizerFast it is what the exported folder's tokenizer/ holds.
Torch-free.
"""

from __future__ import annotations

import numpy as np

from ..data.shapes import BACKGROUNDS, COLUMNS, PALETTE, ROWS, SHAPE_NAMES, SIZES, position_name
from ..errors import StudioError

SPECIALS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")       # ids 0..3
SAMPLE_PROMPTS = 64   # validation captions kept with a model of free captions, drawn by seed
CAPTIONED_DATA = ("Use shapes, or a folder: whose images each have a caption (cat1.txt beside "
                  "cat1.png, or a metadata.jsonl or metadata.csv with a file_name and a text per "
                  "image).")
COLOUR_NAMES = tuple(name for name, _ in PALETTE)


def build_tokenizer(captions: list[str]) -> tuple[str, int]:
    """A WordLevel tokenizer over the captions' words -> (its JSON text, padded length L).
    Every encoding is [BOS] words [EOS] [PAD]..., exactly L ids."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    words = sorted({w for c in captions for w in c.lower().split()})
    vocab = {token: i for i, token in enumerate(SPECIALS + tuple(words))}
    length = max(len(c.split()) for c in captions) + 2
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", 2), ("[EOS]", 3)])
    tok.enable_padding(pad_id=0, pad_token="[PAD]", length=length)
    tok.enable_truncation(max_length=length)
    return tok.to_str(), length


def load_tokenizer(json_text: str):
    from tokenizers import Tokenizer
    return Tokenizer.from_str(json_text)


def encode(tokenizer, prompts: list[str], *, strict: bool = True) -> np.ndarray:
    """Prompts -> (N, L) int64 token ids. With `strict`, a word outside the vocabulary is an
    error naming it (the model could only read it as [UNK])."""
    if strict:
        vocab = tokenizer.get_vocab()
        unknown = sorted({w for p in prompts for w in p.lower().split() if w not in vocab})
        if unknown:
            known = ", ".join(sorted(w for w in vocab if w not in SPECIALS))
            raise StudioError(f"the prompt uses words this model never saw ({', '.join(unknown)});"
                              f" it knows: {known}")
    return np.array([e.ids for e in tokenizer.encode_batch(prompts)], dtype=np.int64)


def parse_pairs(text: str) -> list[tuple[int, int]]:
    """'red triangle, blue cross' -> [(colour index, shape index), ...]."""
    pairs = []
    for item in filter(None, (part.strip().lower() for part in text.split(","))):
        words = item.split()
        if len(words) != 2 or words[0] not in COLOUR_NAMES or words[1] not in SHAPE_NAMES:
            raise StudioError(f"held_out must list 'colour shape' pairs separated by commas "
                              f"(colours: {', '.join(COLOUR_NAMES)}; shapes: "
                              f"{', '.join(SHAPE_NAMES)}), not {item!r}")
        pairs.append((COLOUR_NAMES.index(words[0]), SHAPE_NAMES.index(words[1])))
    return pairs


def caption_attributes(caption: str) -> tuple[int, int]:
    """(colour index, shape index) named in a caption or prompt; -1 where none is."""
    words = caption.lower().split()
    colour = next((COLOUR_NAMES.index(w) for w in words if w in COLOUR_NAMES), -1)
    shape = next((SHAPE_NAMES.index(w) for w in words if w in SHAPE_NAMES), -1)
    return colour, shape


def caption_position(caption: str) -> int:
    """The position a caption or prompt names, as row * 3 + column (0: top left, 4: center,
    8: bottom right); -1 where it names none."""
    words = caption.lower().split(" on ")[0].split(" at the ")[-1].split()
    if len(words) == 1 and words[0] == "center":
        return 4
    if len(words) == 2 and words[0] in ROWS and words[1] in COLUMNS:
        return ROWS.index(words[0]) * 3 + COLUMNS.index(words[1])
    return -1


def seeded_prompt(seed: int, colour: int | None = None, shape: int | None = None) -> str:
    """A caption in the data's own grammar, all from `seed`: the shape cycles with the seed and
    the colour with seed // 5, so consecutive seeds show every combination; size, position and
    background are drawn from the seed."""
    rng = np.random.default_rng(seed)
    colour = (seed // len(SHAPE_NAMES)) % len(PALETTE) if colour is None else colour
    shape = seed % len(SHAPE_NAMES) if shape is None else shape
    size, row, column, background = (rng.integers(len(SIZES)), rng.integers(len(ROWS)),
                                     rng.integers(len(COLUMNS)), rng.integers(len(BACKGROUNDS)))
    return (f"a {SIZES[size][0]} {PALETTE[colour][0]} {SHAPE_NAMES[shape]} at the "
            f"{position_name(row, column)} on a {BACKGROUNDS[background][0]} background")


def _shape_pixels(image: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels far from the image's background (the median of its border)."""
    border = np.concatenate([image[:, 0], image[:, -1], image[:, :, 0], image[:, :, -1]], axis=1)
    background = np.median(border, axis=1)                                       # (3,)
    return np.abs(image - background[:, None, None]).max(0) > 0.35


def measure_positions(images: np.ndarray) -> np.ndarray:
    """Where each image's shape is (N,), as row * 3 + column of the 3 x 3 grid its centre of
    mass falls in; -1 where no shape is found. images: (N, 3, H, W) in [0, 1]."""
    out = np.full(len(images), -1, dtype=np.int64)
    for i, image in enumerate(np.asarray(images, np.float32)):
        rows, columns = np.nonzero(_shape_pixels(image))
        if len(rows) >= 3:
            side = image.shape[-1]
            out[i] = min(2, int(rows.mean() * 3 / side)) * 3 + min(2, int(columns.mean() * 3 / side))
    return out


def measure_colours(images: np.ndarray) -> np.ndarray:
    """The palette colour of each image's shape (N,), -1 where no shape is found.
    images: (N, 3, H, W) in [0, 1]. The background is the median of the border pixels; the
    shape is every pixel far from it; its median colour is matched to the nearest palette one."""
    palette = np.array([rgb for _, rgb in PALETTE], np.float32) / 255.0          # (6, 3)
    out = np.full(len(images), -1, dtype=np.int64)
    for i, image in enumerate(np.asarray(images, np.float32)):
        far = _shape_pixels(image)                                               # (H, W)
        if far.sum() >= 3:
            colour = np.median(image[:, far], axis=1)                            # (3,)
            out[i] = int(np.argmin(((palette - colour) ** 2).sum(1)))
    return out
