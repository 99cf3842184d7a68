"""The judge: a small CNN classifier trained on a data set's own training split, whose
penultimate layer is the feature space image metrics are measured in.

No Inception weights can be fetched here, so Fréchet distance and KID stand on this network
instead. It is trained once per data set and cached in a folder (usually the runs folder's
`.judges/`) as

    judge-<fingerprint>.safetensors   weights (metadata: fingerprint, architecture version)
    judge-<fingerprint>.json          what it was trained on and how well it does

where the fingerprint hashes the data set's arrays, labels, image size and class names, and
JUDGE_VERSION. The same data set (and architecture) reuses the cached judge; any change to the
data gets a new one. Numbers measured with different judges are not comparable, which is why
the fingerprint is reported next to them.

A data set with a single class gives a classifier nothing to learn, so there the judge learns
to tell the four 90-degree rotations of each image apart instead (a self-supervised task), and
its `val_accuracy` is its rotation accuracy.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..core.checkpoints import load_weights, weights_bytes
from ..data import ImageData
from ..core.errors import StudioError
from ..core.atomic_files import atomic_write_bytes, atomic_write_json
from ..core.runs import now_iso

# Bump when the network, its training or its features change: every cached judge is retrained.
JUDGE_VERSION = "judge-cnn/1"
FEATURE_DIM = 64
BATCH_SIZE = 64
EPOCHS = 8                # passes over the training split, within the step bounds below:
MIN_STEPS, MAX_STEPS = 120, 250   # digits: 203 steps (8 epochs); shapes: 250 (3.6 epochs)
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-4
ROTATIONS = 4             # the self-supervised task of single-class data


class JudgeNet(nn.Module):
    """Stages of two 3x3 conv + batch norm + ReLU layers, each followed by 2x2 max pooling
    until the image is 4x4 or smaller, then global average pooling, a FEATURE_DIM hidden layer
    (the features) and a linear head. 8x8 digits: 8 -> 4 (two stages); 32x32 shapes: 32 -> 16
    -> 8 -> 4 (four stages).

    Channels grow as the resolution falls (16 at 16 px and above, 32 at 8 px, 64 at 4 px), so
    the cheap low-resolution stages carry the width. Training (measured in CPU seconds on one
    core of the 2-core CI machine kind): digits ~9 s to 0.99 validation accuracy, shapes ~33 s
    to 1.00.
    """

    def __init__(self, channels: int, image_size: int, num_outputs: int):
        super().__init__()
        self.channels, self.image_size = channels, image_size   # what `Judge` checks inputs against
        layers: list[nn.Module] = []
        size, width_in = image_size, channels
        while True:
            width = _width_at(size)
            layers += [_conv_bn_relu(width_in, width), _conv_bn_relu(width, width)]
            width_in = width
            if size <= 4:
                break
            layers.append(nn.MaxPool2d(2, ceil_mode=True))   # odd sizes round up: 5 -> 3
            size = math.ceil(size / 2)
        self.body = nn.Sequential(*layers)
        self.hidden = nn.Sequential(nn.Linear(width_in, FEATURE_DIM), nn.ReLU())
        self.head = nn.Linear(FEATURE_DIM, num_outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) in [0, 1] -> (B, FEATURE_DIM)."""
        h = self.body(x * 2 - 1)                    # (B, W, s, s), s <= 4
        return self.hidden(h.mean(dim=(2, 3)))      # (B, FEATURE_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))          # (B, num_outputs) logits

    def stage_statistics(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) in [0, 1] -> (B, 2 x the stages' channels): each stage's activations
        (where it ends, before pooling) summarised per channel by their mean and standard
        deviation over the picture, the statistics style transfer matches (Huang & Belongie
        2017). Early stages see strokes, edges and texture rather than the class."""
        stats = []
        h = x * 2 - 1
        for layer in self.body:
            if isinstance(layer, nn.MaxPool2d):
                stats += [h.mean(dim=(2, 3)), h.std(dim=(2, 3))]
            h = layer(h)
        stats += [h.mean(dim=(2, 3)), h.std(dim=(2, 3))]     # the last stage: no pooling
        return torch.cat(stats, dim=1)


def _width_at(size: int) -> int:
    return int(min(64, max(16, 256 // size)))


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


@dataclass
class Judge:
    """A trained judge network and what is known about it."""

    net: JudgeNet
    class_names: list[str]
    task: str                 # "classes", or "rotations" for single-class data
    val_accuracy: float       # on the data set's validation split, for `task`
    fingerprint: str
    train_seconds: float      # how long its training took (when it was trained)
    trained_now: bool         # True if this call trained it, False if it came from the cache

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def _batched(self, images: np.ndarray,
                 fn: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
        """`fn` over (N, C, H, W) images in batches of 256, after checking their shape."""
        images = np.asarray(images, dtype=np.float32)
        expected = (self.net.channels, self.net.image_size, self.net.image_size)
        if images.ndim != 4 or images.shape[1:] != expected:
            raise StudioError(f"the judge takes images of shape (N, "
                              f"{', '.join(map(str, expected))}), got {images.shape}; sample "
                              f"at the data set's size")
        self.net.eval()
        # range(0, max(N, 1)): an empty input still runs once, so the result has its width.
        out = [fn(torch.from_numpy(images[i:i + 256]).to(self.device)).float().cpu()
               for i in range(0, max(len(images), 1), 256)]
        return torch.cat(out).numpy()

    def features(self, images: np.ndarray) -> np.ndarray:
        """(N, C, H, W) floats in [0, 1] -> (N, FEATURE_DIM) penultimate-layer activations."""
        return self._batched(images, self.net.features).astype(np.float64)

    def stage_statistics(self, images: np.ndarray) -> np.ndarray:
        """(N, C, H, W) floats in [0, 1] -> (N, D) per-stage channel means and deviations
        (JudgeNet.stage_statistics)."""
        return self._batched(images, self.net.stage_statistics).astype(np.float64)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(N, num_classes) class probabilities (all ones for single-class data)."""
        if self.task == "rotations":
            return np.ones((len(images), 1))
        proba = self._batched(images, lambda x: torch.softmax(self.net(x), dim=1))
        return proba.astype(np.float64)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(N,) int64 class indices."""
        return self.predict_proba(images).argmax(axis=1).astype(np.int64)


def data_fingerprint(data: ImageData) -> str:
    """A hex digest of everything the judge learns from: the arrays of both splits (the
    validation split sets the reported accuracy), labels, image shape, class names, and the
    judge's architecture version."""
    h = hashlib.sha256(JUDGE_VERSION.encode())
    for array in (data.train_images, data.train_labels, data.val_images, data.val_labels):
        array = np.ascontiguousarray(array)
        h.update(f"{array.dtype.str}{array.shape}".encode())
        h.update(array.tobytes())
    h.update(json.dumps(list(data.class_names)).encode())
    return h.hexdigest()


def get_judge(data: ImageData, cache_dir: str | Path, *, device: str | None = None,
              log: Callable[[str], None] | None = None) -> Judge:
    """The judge for `data`: from `cache_dir` if one was trained on the same data, else
    trained now (seeded; seconds on a CPU for the bundled sets) and cached."""
    if not isinstance(data, ImageData):
        raise StudioError(f"the image judge needs image data; {data.name!r} is {data.kind} data")
    fingerprint = data_fingerprint(data)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    weights_path, sidecar_path = _cache_paths(Path(cache_dir), fingerprint)
    cached = _load_cached(weights_path, sidecar_path, fingerprint, data, device)
    if cached is not None:
        return cached
    if log:
        log(f"training the quality judge for {data.name} (once; cached in {cache_dir})")
    judge = train_judge(data, fingerprint, device)
    meta = {"judge_version": JUDGE_VERSION, "fingerprint": fingerprint}
    atomic_write_bytes(weights_path, weights_bytes(judge.net.state_dict(), meta))
    # The sidecar is written last: a judge without one (a crash between the two) is retrained.
    atomic_write_json(sidecar_path, {
        **meta, "data": data.name, "channels": data.channels, "image_size": data.image_size,
        "class_names": list(data.class_names), "task": judge.task,
        "num_outputs": judge.net.head.out_features, "feature_dim": FEATURE_DIM,
        "val_accuracy": judge.val_accuracy, "train_seconds": round(judge.train_seconds, 2),
        "train_images": len(data.train_images), "val_images": len(data.val_images),
        "torch": torch.__version__, "created": now_iso()})
    return judge


def _cache_paths(cache_dir: Path, fingerprint: str) -> tuple[Path, Path]:
    stem = f"judge-{fingerprint[:16]}"
    return cache_dir / f"{stem}.safetensors", cache_dir / f"{stem}.json"


def _load_cached(weights_path: Path, sidecar_path: Path, fingerprint: str, data: ImageData,
                 device: str) -> Judge | None:
    """The cached judge, or None when there is none or it does not match (then it is
    retrained and overwritten)."""
    if not (weights_path.is_file() and sidecar_path.is_file()):
        return None
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
        tensors, meta = load_weights(weights_path)
        if (sidecar.get("fingerprint") != fingerprint or meta.get("fingerprint") != fingerprint
                or meta.get("judge_version") != JUDGE_VERSION):
            return None
        net = JudgeNet(data.channels, data.image_size, int(sidecar["num_outputs"]))
        net.load_state_dict(tensors)
        return Judge(net=net.to(device).eval(), class_names=list(data.class_names),
                     task=str(sidecar["task"]), val_accuracy=float(sidecar["val_accuracy"]),
                     fingerprint=fingerprint, train_seconds=float(sidecar["train_seconds"]),
                     trained_now=False)
    except (StudioError, json.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError,
            RuntimeError):
        return None  # damaged or foreign: training a fresh judge is the repair


def train_judge(data: ImageData, fingerprint: str, device: str, seed: int = 0) -> Judge:
    """Train a fresh judge on data's training split. Seeded: the same data gives the same
    judge on the same machine. The global torch RNG is left as it was."""
    task = "classes" if data.num_classes >= 2 else "rotations"
    num_outputs = data.num_classes if task == "classes" else ROTATIONS
    images = torch.from_numpy(np.ascontiguousarray(data.train_images))   # (N, C, S, S)
    labels = torch.from_numpy(np.ascontiguousarray(data.train_labels))   # (N,)
    steps = int(np.clip(math.ceil(EPOCHS * len(images) / BATCH_SIZE), MIN_STEPS, MAX_STEPS))
    shift = max(1, data.image_size // 16)   # augmentation: random translations of a few pixels

    start = time.perf_counter()
    # enable_grad: the judge may be trained from inside a caller's no_grad (the trainer's
    # end-of-run evaluation runs under one).
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        net = JudgeNet(data.channels, data.image_size, num_outputs)
        net.to(device).train()
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(net.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LEARNING_RATE, total_steps=steps)
        order = torch.randperm(len(images), generator=gen)
        position = 0
        for _ in range(steps):
            if position + BATCH_SIZE > len(order):   # a new epoch: reshuffle
                order, position = torch.randperm(len(images), generator=gen), 0
            idx = order[position:position + BATCH_SIZE]
            position += BATCH_SIZE
            x = _random_shift(images[idx], shift, gen)
            y = labels[idx]
            if task == "rotations":
                x, y = _rotate(x, torch.randint(0, ROTATIONS, (len(x),), generator=gen))
            loss = F.cross_entropy(net(x.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    seconds = time.perf_counter() - start
    accuracy = _val_accuracy(net, data, task)
    return Judge(net=net, class_names=list(data.class_names), task=task, val_accuracy=accuracy,
                 fingerprint=fingerprint, train_seconds=seconds, trained_now=True)


def _random_shift(x: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image of (B, C, S, S) by up to `shift` pixels each way, repeating the
    border (digits' black and shapes' white backgrounds both continue naturally)."""
    size = x.shape[-1]
    padded = F.pad(x, (shift,) * 4, mode="replicate")          # (B, C, S + 2s, S + 2s)
    offsets = torch.randint(0, 2 * shift + 1, (len(x), 2), generator=gen).tolist()
    return torch.stack([p[:, i:i + size, j:j + size] for p, (i, j) in zip(padded, offsets)])


def _rotate(x: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image of (B, C, S, S) turned by k[i] quarter turns; the labels are k."""
    return torch.stack([torch.rot90(img, int(q), dims=(1, 2)) for img, q in zip(x, k)]), k


@torch.no_grad()
def _val_accuracy(net: JudgeNet, data: ImageData, task: str) -> float:
    device = next(net.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(data.val_images))
    if task == "classes":
        y = torch.from_numpy(np.ascontiguousarray(data.val_labels))
    else:   # every validation image in each of its four rotations
        k = torch.arange(ROTATIONS).repeat_interleave(len(x))
        x, y = _rotate(x.repeat(ROTATIONS, 1, 1, 1), k)
    predicted = torch.cat([net(x[i:i + 256].to(device)).argmax(1).cpu()
                           for i in range(0, len(x), 256)])
    return float((predicted == y).float().mean())
