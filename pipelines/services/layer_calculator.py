"""The layer calculator: a stack of conv, pool and dense layers typed as text, and an input
size; every layer's output shape and parameter count, with the arithmetic written out.

    rows = calculate("conv 16 k=3 p=1\\nconv 32 k=3 p=1", "3x32x32")
    rows[0].params == 448        # (3 x 3 x 3 + 1) x 16: the worked example of a 3x3 conv

Written by hand, not with torch: the formulas are the lesson (the page shows them as the user
types, without starting a model), and tests/test_layer_calculator.py checks every number
against torch's own layers. No torch here, so the page can import it.

One layer a line (or separated by ";"):
    conv OUT k=K [s=S] [p=P] [d=D]     a 2-D convolution to OUT channels (bias included)
    pool k=K [s=S] [p=P]               max or average pooling (stride defaults to k)
    flatten                            (C, H, W) -> C x H x W features
    dense OUT                          a fully connected layer (flattens first if needed)
"k3" works for "k=3"; "conv 16 3" for "conv 16 k=3".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.errors import StudioError

MAX_LAYERS = 200
MAX_SIDE = 100_000

# The worked examples shown beside the calculator (and checked by its test): name -> (input,
# stack, what a learner should see).
EXAMPLES: dict[str, tuple[str, str, str]] = {
    "two 3x3 convs (448 and 4,640 parameters)": (
        "3x32x32", "conv 16 k=3 p=1\nconv 32 k=3 p=1",
        "(3 x 3 x 3 + 1) x 16 = 448; (3 x 3 x 16 + 1) x 32 = 4,640; padding 1 keeps 32 px"),
    "LeNet-5 (LeCun et al. 1998)": (
        "1x32x32", "conv 6 k=5\npool k=2\nconv 16 k=5\npool k=2\ndense 120\ndense 84\ndense 10",
        "C1 6@28x28 (156), S2 14x14, C3 16@10x10 (2,416), S4 5x5, F5 120 (48,120), "
        "F6 84 (10,164), 10 outputs (850): 61,706 parameters"),
    "AlexNet's first layer (Krizhevsky et al. 2012)": (
        "3x227x227", "conv 96 k=11 s=4\npool k=3 s=2",
        "(227 - 11 + 2 x 0) / 4 + 1 = 55; 34,944 parameters; overlapping 3x3 pooling, "
        "stride 2: 27"),
}


@dataclass
class Row:
    layer: str               # the line as typed, tidied
    shape: tuple[int, ...]   # the output: (C, H, W) or (features,)
    params: int
    arithmetic: str          # how the size and the count come out


def parse_shape(text: str) -> tuple[int, ...]:
    """'3x32x32' (or '3,32,32', '3 32 32') -> (3, 32, 32); '784' -> (784,)."""
    parts = [p for p in re.split(r"[x×,\s]+", (text or "").strip().lower()) if p]
    if not parts or len(parts) not in (1, 3) or not all(p.isdigit() for p in parts):
        raise StudioError(f"input size {text!r}: give channels x height x width, e.g. "
                          f"3x32x32, or a number of features, e.g. 784")
    shape = tuple(int(p) for p in parts)
    if min(shape) < 1 or max(shape) > MAX_SIDE:
        raise StudioError(f"input size {text!r}: each number from 1 to {MAX_SIDE:,}")
    return shape


def calculate(stack: str, input_size: str) -> list[Row]:
    """Every layer's output shape and parameters, or one StudioError naming the bad line."""
    shape = parse_shape(input_size)
    lines = [line.strip() for line in re.split(r"[;\n]", stack or "") if line.strip()]
    if not lines:
        raise StudioError("type at least one layer, e.g. conv 16 k=3 p=1")
    if len(lines) > MAX_LAYERS:
        raise StudioError(f"at most {MAX_LAYERS} layers")
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            row, shape = _layer(line, shape)
        except StudioError as e:
            raise StudioError(f"line {number} ({line!r}): {e}") from None
        rows.append(row)
    return rows


def _layer(line: str, shape: tuple[int, ...]) -> tuple[Row, tuple[int, ...]]:
    kind, *words = line.lower().split()
    numbers, named = [], {}
    for word in words:
        m = re.fullmatch(r"([a-z]+)=?(\d+)", word)
        if word.isdigit():
            numbers.append(int(word))
        elif m and m.group(1) in ("k", "s", "p", "d"):
            named[m.group(1)] = int(m.group(2))
        else:
            raise StudioError(f"{word!r} is not a number or k=, s=, p=, d=")
    if kind in ("conv", "pool"):
        if len(shape) != 3:
            raise StudioError(f"{kind} needs a (channels, height, width) input, not {shape}")
        if kind == "conv":
            if not numbers:
                raise StudioError("conv takes its output channels first, e.g. conv 16 k=3 p=1")
            out_c, rest = numbers[0], numbers[1:]
        else:
            out_c, rest = shape[0], numbers
        if rest and "k" not in named:
            named["k"] = rest.pop(0)
        if rest:
            raise StudioError(f"too many numbers: {rest}")
        if "k" not in named:
            raise StudioError(f"{kind} needs a kernel size, e.g. k=3")
        k, p, d = named["k"], named.get("p", 0), named.get("d", 1)
        s = named.get("s", 1 if kind == "conv" else k)
        if min(k, s, d, out_c) < 1 or p < 0:
            raise StudioError("kernel, stride, dilation and channels are at least 1, "
                              "padding at least 0")
        c, h, w = shape
        span = d * (k - 1) + 1
        if h + 2 * p < span or w + 2 * p < span:
            raise StudioError(f"a {span}x{span} window does not fit a {h}x{w} input with "
                              f"padding {p}")
        oh, _ = output_size(h, k, s, p, d)
        ow, size = output_size(w, k, s, p, d)
        if kind == "conv":
            params = (k * k * c + 1) * out_c
            count = f"; ({k} x {k} x {c} + 1) x {out_c} = {params:,} parameters"
            tidy = f"conv {out_c} k={k} s={s} p={p}" + (f" d={d}" if d != 1 else "")
        else:
            params, count = 0, "; no parameters"
            tidy = f"pool k={k} s={s} p={p}" + (f" d={d}" if d != 1 else "")
        return Row(tidy, (out_c, oh, ow), params, size + count), (out_c, oh, ow)
    if kind == "flatten":
        features = _features(shape)
        return Row("flatten", (features,), 0, f"{' x '.join(map(str, shape))} = {features:,} "
                                             f"features"), (features,)
    if kind == "dense":
        if len(numbers) != 1 or named:
            raise StudioError("dense takes one number, its outputs, e.g. dense 10")
        out, features = numbers[0], _features(shape)
        if out < 1:
            raise StudioError("a dense layer has at least 1 output")
        params = (features + 1) * out
        flat = "" if len(shape) == 1 else f"{' x '.join(map(str, shape))} flattened; "
        return (Row(f"dense {out}", (out,), params,
                    f"{flat}({features:,} + 1) x {out:,} = {params:,} parameters"), (out,))
    raise StudioError(f"{kind!r} is not a layer: use conv, pool, flatten or dense")


def output_size(w: int, k: int, s: int, p: int, d: int = 1) -> tuple[int, str]:
    """A conv or pool layer's output width from its input's, and the sum written out with
    the layer's numbers: (W - K + 2P) / S + 1 (the inspector shows the same)."""
    span = d * (k - 1) + 1
    out = (w + 2 * p - span) // s + 1
    kernel = str(k) if d == 1 else f"{span} (k {k}, dilation {d})"
    text = f"({w} - {kernel} + 2 x {p}) / {s} + 1 = {out}"
    return out, text + (", rounded down" if (w + 2 * p - span) % s else "")


def _features(shape: tuple[int, ...]) -> int:
    n = 1
    for x in shape:
        n *= x
    return n


def as_markdown(rows: list[Row], input_size: str) -> str:
    total = sum(r.params for r in rows)
    lines = [f"Input {' x '.join(map(str, parse_shape(input_size)))}; **{total:,} parameters** "
             f"in all.", "", "| # | layer | output | parameters | how |",
             "| ---: | --- | --- | ---: | --- |"]
    lines += [f"| {i} | `{r.layer}` | {' x '.join(map(str, r.shape))} | {r.params:,} | "
              f"{r.arithmetic} |" for i, r in enumerate(rows, 1)]
    return "\n".join(lines)


def as_text(rows: list[Row], input_size: str) -> str:
    table = [("layer", "output", "params", "how")] + [
        (r.layer, " x ".join(map(str, r.shape)), f"{r.params:,}", r.arithmetic) for r in rows]
    widths = [max(len(t[i]) for t in table) for i in range(3)]
    out = [f"input {' x '.join(map(str, parse_shape(input_size)))}"]
    out += ["  ".join(c.ljust(w) for c, w in zip(t[:3], widths)) + "  " + t[3] for t in table]
    out.append(f"total {sum(r.params for r in rows):,} parameters")
    return "\n".join(out)
