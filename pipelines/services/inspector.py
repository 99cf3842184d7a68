"""The architecture inspector: every network of a pipeline, layer by layer, as it really runs.

    report = inspect_pipeline("dcgan", "shapes", {"width": 32}, {})    # before training
    report = inspect_run(run_folder)                                   # a run's own options
    print(as_text(report)); as_markdown(report)                        # the CLI; the page

How: the run these options describe is built in a temporary folder exactly as training would
build it (the trainer: data, device, precision), and one training step of each phase runs with
forward hooks on every module. A module called by the family's own code (not from inside
another module) is a *root*: its first call's inputs are kept, and torchinfo (the library made
for this) runs that root again on them and reports each layer's output shape, parameters
(trainable or frozen) and multiply-adds. So the shapes are those of a real forward pass with the
run's batch size, whatever the family's networks take (noise, pictures, token ids, timesteps).
Each network's parameter count is read from the network itself (a layer the step never calls is
still counted there). Conv and pool layers get their output-size arithmetic written out with
their own numbers, and a chain of them its receptive field.

Nothing is kept: the temporary folder goes when the report is made. Families fit in one go
(the classic models) have no layers to show and say so.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any


# The layers whose output size is written out: (W - K + 2P) / S + 1 and its transposed twin.
SIZE_LAYERS = ("Conv1d", "Conv2d", "Conv3d", "MaxPool2d", "AvgPool2d", "MaxPool1d",
               "AvgPool1d")
TRANSPOSED = ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
UPSAMPLING = TRANSPOSED + ("Upsample", "PixelShuffle", "UpsamplingNearest2d",
                           "UpsamplingBilinear2d")
INSPECT_TRAINER = {"steps": 1, "log_every": 1, "sample_every": 0, "checkpoint_every": 0,
                   "final_eval": False, "compile": False, "report_to": "none"}


def inspect_run(run) -> dict[str, Any]:
    """The inspector's report for a run folder: its pipeline, data and options."""
    info = run.info()
    return inspect_pipeline(info["pipeline"], info["data"], info["config"], info["trainer"],
                            title=f"run {run.id}")


def inspect_pipeline(pipeline: str, data: str | None, config_overrides: dict[str, Any],
                     trainer_overrides: dict[str, Any], title: str | None = None
                     ) -> dict[str, Any]:
    """{"title", "pipeline", "data", "batch_size", "networks": [...], "note"} (JSON-able)."""
    from ..core.phases import spans
    from ..core.run_setup import make_configs, start_run
    from ..registry import load_pipeline_class
    cls = load_pipeline_class(pipeline)
    data = data or default_data(cls)
    head = {"title": title or f"{pipeline} on {data}", "pipeline": pipeline, "data": data}
    if cls.spec.trains != "steps":
        return {**head, "batch_size": None, "networks": [],
                "note": f"{pipeline} is fit in one go by scikit-learn or statsmodels: it has no "
                        f"layers to show (`studio list {pipeline}` shows its options)"}
    config, tc = make_configs(cls, config_overrides, trainer_overrides, data)  # the run as asked
    phases = spans(cls.phases(config), tc.steps)            # one step of each is traced
    tmp = Path(tempfile.mkdtemp(prefix="studio-inspect-"))
    try:
        run = start_run(pipeline, data, config_overrides=config_overrides,
                        trainer_overrides={**trainer_overrides, **INSPECT_TRAINER},
                        runs_dir=tmp, name="inspect")
        networks, batch = _traced_networks(run, phases)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {**head, "batch_size": batch, "networks": networks, "note": ""}


def default_data(cls) -> str:
    """The data set a pipeline is shown on when none is named: its bundled one."""
    from ..core.spec import example_data
    return example_data(cls.spec)


# --- tracing one step --------------------------------------------------------------------------
class _Roots:
    """Forward hooks on every module of every network: the first call of each module made from
    outside any module (a root), with its inputs."""

    def __init__(self, networks: dict[str, Any]):
        self.depth, self.calls, self.handles = 0, {}, []
        self.names: dict[int, tuple[str, str]] = {}
        for net_name, net in networks.items():
            for sub_name, module in net.named_modules():
                self.names.setdefault(id(module), (net_name, sub_name))
                self.handles += [module.register_forward_pre_hook(self._enter, with_kwargs=True),
                                 module.register_forward_hook(self._leave, always_call=True)]

    def _enter(self, module, args, kwargs):
        if self.depth == 0 and id(module) not in self.calls:
            # Detached copies: a step may pass an input it differentiates against (the
            # contractive autoencoder's Jacobian), which must not be run through again.
            self.calls[id(module)] = (module, tuple(map(_detached, args)),
                                      {k: _detached(v) for k, v in kwargs.items()})
        self.depth += 1

    def _leave(self, module, args, output):
        self.depth -= 1

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _detached(value):
    import torch
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


def _traced_networks(run, phases) -> tuple[list[dict[str, Any]], int]:
    from ..core.trainer import Trainer
    trainer = Trainer(run)
    networks = {name: trainer.accelerator.unwrap_model(module)
                for name, module in trainer.pipeline.modules.items()}
    roots = _Roots(networks)
    try:
        for span in phases:                             # one step of each phase
            trainer.step = span.start
            trainer.ctx.step = span.start
            with trainer.accelerator.autocast():
                getattr(trainer.pipeline, span.phase.step)(trainer.next_batch(), trainer.ctx)
    finally:
        roots.remove()
    out = []
    for name, net in networks.items():
        params = list(net.parameters())
        total = sum(p.numel() for p in params)
        trainable = sum(p.numel() for p in params if p.requires_grad)
        called = [(roots.names[key][1], call) for key, call in roots.calls.items()
                  if roots.names[key][0] == name]
        origins = getattr(trainer.pipeline, "transferred", {}) if name == "net" else {}
        entry = {"name": name, "kind": type(net).__name__, "params": total,
                 "trainable": trainable, "frozen": total - trainable,
                 "param_bytes": sum(p.numel() * p.element_size() for p in params),
                 "buffer_bytes": sum(b.numel() * b.element_size() for b in net.buffers()),
                 "calls": [_summarise(sub or name, *call, origins=origins)
                           for sub, call in called]}
        if not called:
            entry["note"] = ("not called as a module by a training step (its step uses the "
                             "parameters directly, it is used when sampling, or it stores "
                             "state such as a pool of past pictures)")
        out.append(entry)
    return out, trainer.tc.batch_size


def _summarise(label: str, module, args, kwargs, origins: dict[str, str] | None = None
               ) -> dict[str, Any]:
    """One root call, run again by torchinfo: its layers and totals. `origins`: where
    transferred tensors came from (a classifier's init_from), by tensor name."""
    import torch
    import torchinfo
    from torch.utils.flop_counter import FlopCounterMode
    inputs = _named_inputs(module, args, kwargs)
    try:
        stats = torchinfo.summary(module, input_data=inputs, verbose=0, depth=64,
                                  col_names=("input_size", "output_size", "num_params",
                                             "trainable"))
    except Exception as e:  # noqa: BLE001 - a module torchinfo cannot run: say so, go on
        return {"root": label, "kind": type(module).__name__, "layers": [],
                "error": f"torchinfo could not trace it: {type(e).__name__}: {e}"[:300]}
    # Multiply-adds from torch's own counter: torchinfo counts a Linear layer once per
    # sample, not per token of a sequence (16 x 50 tokens through Linear(64, 128): 133 K
    # against the 6.6 M done). It counts matrix products and convolutions, by module. A
    # forward that differentiates inside itself (a Jacobian penalty) is not counted.
    flops, total_flops = {}, None
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(**inputs)
        flops = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
        total_flops = counter.get_total_flops()
    except Exception:  # noqa: BLE001 - the shapes and parameters stand without the count
        pass
    prefix = type(module).__name__
    layers, field, jump, chain = [], 1, 1, True
    for layer in stats.summary_list:
        if not layer.is_leaf_layer:
            continue
        kind = layer.class_name
        arithmetic = _size_arithmetic(layer.module, kind, layer.input_size)
        if kind in UPSAMPLING:
            chain = False
        elif kind in SIZE_LAYERS:
            k, s, d = (_first(getattr(layer.module, a, 1)) for a in
                       ("kernel_size", "stride", "dilation"))
            field += (k - 1) * d * jump
            jump *= s
        layers.append({"name": _qualified(layer), "kind": kind,
                       "input": _shape(layer.input_size), "output": _shape(layer.output_size),
                       "params": int(layer.num_params),
                       "trainable": int(layer.trainable_params),
                       "mult_adds": (flops.get(f"{prefix}.{_qualified(layer)}", 0) // 2
                                     if total_flops is not None else None),
                       "arithmetic": arithmetic,
                       "from": (origins or {}).get(f"{_qualified(layer)}.weight", "")})
    # The module's own count: torchinfo counts a weight shared by two layers (a language
    # model's tied embedding and output) twice.
    return {"root": label, "kind": type(module).__name__, "layers": layers,
            "params": sum(p.numel() for p in module.parameters()),
            "mult_adds": None if total_flops is None else total_flops // 2,
            "input_bytes": int(stats.total_input), "output_bytes": int(stats.total_output_bytes),
            "receptive_field": field if chain and jump > 1 else None}


def _named_inputs(module, args, kwargs) -> dict[str, Any]:
    """The call's inputs by parameter name, without the Nones (torchinfo's memory count
    cannot add up a None, e.g. `labels=None` of an unconditional generator)."""
    import inspect
    try:
        bound = inspect.signature(module.forward).bind(*args, **kwargs).arguments
    except TypeError:                       # *args signatures: keep the positions' order
        bound = {f"arg{i}": a for i, a in enumerate(args)} | dict(kwargs)
    return {k: v for k, v in bound.items() if v is not None}


def _first(value) -> int:
    return int(value[0] if isinstance(value, (tuple, list)) else value)


def _shape(size) -> list:
    """torchinfo's sizes: a list of ints, or of lists for several tensors."""
    if isinstance(size, (list, tuple)):
        return [_shape(s) if isinstance(s, (list, tuple)) else int(s) for s in size]
    return []


def _qualified(layer) -> str:
    parts, node = [], layer
    while node is not None and node.parent_info is not None:
        parts.append(str(node.var_name))
        node = node.parent_info
    return ".".join(reversed(parts)) or str(layer.var_name)


def _size_arithmetic(module, kind: str, input_size) -> str | None:
    """The output width worked out from the input's, with the layer's own numbers."""
    if kind not in SIZE_LAYERS + TRANSPOSED or not input_size:
        return None
    w = int(input_size[-1]) if not isinstance(input_size[-1], (list, tuple)) else None
    if w is None:
        return None
    k, s, d = (_first(getattr(module, a, 1)) for a in ("kernel_size", "stride", "dilation"))
    p = _first(getattr(module, "padding", 0)) if not isinstance(
        getattr(module, "padding", 0), str) else None
    if p is None:
        return f"padding {module.padding!r}: width {w} kept" if module.padding == "same" else None
    if kind in TRANSPOSED:
        op = _first(getattr(module, "output_padding", 0))
        out = (w - 1) * s - 2 * p + d * (k - 1) + op + 1
        extra = f" + {op}" if op else ""
        return f"({w} - 1) x {s} - 2 x {p} + {d * (k - 1)}{extra} + 1 = {out}"
    from .layer_calculator import output_size
    return output_size(w, k, s, p, d)[1]


# --- reports -----------------------------------------------------------------------------------
def _count(n: int) -> str:
    return f"{n:,}"


def _bytes(n: int) -> str:
    return f"{n / 2**20:.2f} MB" if n >= 2**20 / 10 else f"{n / 2**10:.1f} KB"


def _macs(n: int | None) -> str:
    if n is None:
        return "not counted"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def _dims(shape) -> str:
    if not shape:
        return ""
    if isinstance(shape[0], list):
        return ", ".join(_dims(s) for s in shape)
    return "(" + ", ".join(map(str, shape)) + ")"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """One line per network: parameters, trainable, multiply-adds a call."""
    lines = []
    for net in report["networks"]:
        macs = sum(c.get("mult_adds") or 0 for c in net["calls"])
        frozen = f", {_count(net['frozen'])} frozen" if net["frozen"] else ""
        lines.append(f"{net['name']} ({net['kind']}): {_count(net['params'])} parameters"
                     f"{frozen}, {_bytes(net['param_bytes'])}"
                     + (f"; {_macs(macs)} multiply-adds a call at batch "
                        f"{report['batch_size']}" if macs else "")
                     + (f"; {net['note']}" if net.get("note") else ""))
    return lines


def as_text(report: dict[str, Any]) -> str:
    out = [report["title"]]
    if report["note"]:
        return "\n".join(out + [report["note"]])
    out += [f"batch size {report['batch_size']}; shapes from one real training step"]
    out += summary_lines(report)
    for net in report["networks"]:
        for call in net["calls"]:
            out.append("")
            out.append(f"{net['name']}: {call['root']} ({call['kind']})")
            if call.get("error"):
                out.append(f"  {call['error']}")
                continue
            rows = [("layer", "type", "output shape", "params", "mult-adds", "size")]
            rows += [(layer["name"], layer["kind"], _dims(layer["output"]),
                      _count(layer["params"]) + ("" if layer["trainable"] == layer["params"]
                                                 else " (frozen)"),
                      _macs(layer["mult_adds"]), " ".join(filter(None, (
                          layer["arithmetic"], layer["from"] and f"[from {layer['from']}]"))))
                     for layer in call["layers"]]
            widths = [max(len(r[i]) for r in rows) for i in range(5)]
            out += ["  " + "  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5]
                    for r in rows]
            out.append("  " + _totals(call))
    return "\n".join(out)


def _totals(call: dict[str, Any]) -> str:
    field = (f"; receptive field {call['receptive_field']} px"
             if call.get("receptive_field") else "")
    return (f"total {_count(call['params'])} parameters, {_macs(call['mult_adds'])} "
            f"multiply-adds; input {_bytes(call['input_bytes'])}, activations (forward and "
            f"backward) {_bytes(call['output_bytes'])}{field}")


def as_markdown(report: dict[str, Any]) -> str:
    out = [f"**{report['title']}**"]
    if report["note"]:
        return "\n\n".join(out + [report["note"]])
    out.append(f"Batch size {report['batch_size']}; shapes from one real training step.")
    out.append("\n".join(f"- {line}" for line in summary_lines(report)))
    for net in report["networks"]:
        for call in net["calls"]:
            title = f"**{net['name']}**: `{call['root']}` ({call['kind']})"
            if call.get("error"):
                out.append(f"{title}: {call['error']}")
                continue
            rows = ["| layer | type | input | output | params | mult-adds | output size |",
                    "| --- | --- | --- | --- | ---: | ---: | --- |"]
            rows += [f"| `{layer['name']}` | {layer['kind']} | {_dims(layer['input'])} | "
                     f"{_dims(layer['output'])} | {_count(layer['params'])}"
                     f"{'' if layer['trainable'] == layer['params'] else ' (frozen)'} | "
                     f"{_macs(layer['mult_adds'])} | {layer['arithmetic'] or ''}"
                     f"{' — from ' + layer['from'] if layer['from'] else ''} |"
                     for layer in call["layers"]]
            out.append(title + "\n\n" + "\n".join(rows) + "\n\n" + _totals(call))
    return "\n\n".join(out)
