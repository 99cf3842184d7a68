"""The layer calculator (pipelines/services/layer_calculator.py): the worked examples' figures
(448 and 4,640; LeNet-5's 61,706; AlexNet's 55 and 34,944), every shape and count checked
against torch's own layers on stacks of every kind, one-line errors, the CLI and the page's
handler."""

import pytest
import torch
from torch import nn

from pipelines.cli import main
from pipelines.core.errors import StudioError
from pipelines.services.layer_calculator import EXAMPLES, calculate


def test_the_worked_examples():
    two = calculate(*reversed(EXAMPLES["two 3x3 convs (448 and 4,640 parameters)"][:2]))
    assert [r.params for r in two] == [448, 4640] and two[1].shape == (32, 32, 32)
    lenet = calculate(*reversed(EXAMPLES["LeNet-5 (LeCun et al. 1998)"][:2]))
    assert [r.shape for r in lenet] == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5),
                                        (120,), (84,), (10,)]
    assert [r.params for r in lenet] == [156, 0, 2416, 0, 48120, 10164, 850]
    assert sum(r.params for r in lenet) == 61706
    alex = calculate(*reversed(EXAMPLES["AlexNet's first layer (Krizhevsky et al. 2012)"][:2]))
    assert alex[0].shape == (96, 55, 55) and alex[0].params == 34944
    assert alex[1].shape == (96, 27, 27)
    assert alex[0].arithmetic.startswith("(227 - 11 + 2 x 0) / 4 + 1 = 55")


def torch_stack(stack: str, shape):
    """The same stack built from torch layers: (output shapes, parameter counts)."""
    layers, c = [], shape[0]
    for line in stack.split(";"):
        kind, *words = line.split()
        named = {w[0]: int(w[2:]) for w in words if "=" in w}
        if kind == "conv":
            out = int(words[0])
            layers.append(nn.Conv2d(c, out, named["k"], named.get("s", 1), named.get("p", 0),
                                    named.get("d", 1)))
            c = out
        elif kind == "pool":
            layers.append(nn.MaxPool2d(named["k"], named.get("s", named["k"]),
                                       named.get("p", 0)))
        elif kind == "flatten":
            layers.append(nn.Flatten())
        else:
            layers.append(nn.Sequential(nn.Flatten(), nn.LazyLinear(int(words[0]))))
    x, shapes, counts = torch.zeros(1, *shape), [], []
    for layer in layers:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
        counts.append(sum(p.numel() for p in layer.parameters()))
    return shapes, counts


@pytest.mark.parametrize("stack, shape", [
    ("conv 8 k=3 p=1; pool k=2; conv 16 k=5 s=2 p=2; flatten; dense 10", (3, 32, 32)),
    ("conv 4 k=7 s=3 p=1; pool k=3 s=2 p=1; conv 6 k=3 d=2", (1, 45, 45)),
    ("conv 12 k=4 s=2 p=1; conv 24 k=4 s=2 p=1; conv 1 k=4 s=1 p=1", (3, 64, 64)),
    ("dense 32; dense 5", (784,)),
])
def test_every_number_is_torchs(stack, shape):
    rows = calculate(stack, "x".join(map(str, shape)))
    shapes, counts = torch_stack(stack, shape)
    assert [r.shape for r in rows] == shapes
    assert [r.params for r in rows] == counts


@pytest.mark.parametrize("stack, size, said", [
    ("conv k=3", "3x8x8", "line 1 ('conv k=3'): conv takes its output channels first"),
    ("conv 8 k=3\nconv 8 k=9", "3x8x8", "line 2 ('conv 8 k=9'): a 9x9 window does not fit"),
    ("dense 10\nconv 8 k=3", "3x8x8", "conv needs a (channels, height, width) input"),
    ("lstm 8", "3x8x8", "'lstm' is not a layer"),
    ("conv 8 k=3", "3x8", "give channels x height x width"),
    ("", "3x8x8", "type at least one layer"),
])
def test_bad_stacks_are_one_line(stack, size, said):
    with pytest.raises(StudioError) as caught:
        calculate(stack, size)
    assert said in str(caught.value) and "\n" not in str(caught.value)


def test_the_cli_and_the_pages_handler(capsys):
    from studio.tabs.calculator import worked_out
    assert main(["layers", "conv 16 k=3 p=1; conv 32 k=3 p=1", "--input", "3x32x32"]) == 0
    out = capsys.readouterr().out
    assert "(3 x 3 x 3 + 1) x 16 = 448" in out and "total 5,088 parameters" in out
    assert main(["layers"]) == 0
    assert "61,706" in capsys.readouterr().out
    assert main(["layers", "conv 8 k=99", "--input", "1x8x8"]) == 2
    assert capsys.readouterr().err.startswith("studio: error: line 1")
    assert "| 2 | `pool k=2 s=2 p=0` | 6 x 14 x 14 | 0 |" in worked_out(
        "1x32x32", "conv 6 k=5\npool k=2")
    assert worked_out("1x32x32", "conv x").startswith("**Not a stack yet**: line 1")
