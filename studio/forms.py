"""Forms built from a config's field descriptions (`pipelines.core.spec.field_dicts`): one input
per field, with its type, default, help text, choices and range. The UI never names a family's
options: a new option, or a new family, appears in the forms with no UI code.
"""

from __future__ import annotations

from typing import Any

import gradio as gr


def field_input(spec: dict[str, Any], value: Any = None, *, interactive: bool = True
                ) -> gr.components.Component:
    """The input for one field (its default, or `value` when given)."""
    value = spec["default"] if value is None else value
    common = {"label": spec["name"], "info": spec["help"] or None, "interactive": interactive}
    if spec["choices"]:
        return gr.Dropdown(list(spec["choices"]), value=value, **common)
    if spec["type"] == "bool":
        return gr.Checkbox(value=bool(value), **common)
    if spec["type"] in ("int", "float"):
        return gr.Number(value=value, precision=0 if spec["type"] == "int" else None,
                         minimum=spec["low"], maximum=spec["high"], **common)
    # Free text (a passage) asks for a taller box: `option(..., lines=4)`; Enter then starts
    # a new line instead of submitting.
    return gr.Textbox(value="" if value is None else str(value), lines=spec.get("lines", 1),
                      **common)


def changed_values(specs: list[dict[str, Any]], values: list[Any]) -> dict[str, str]:
    """{name: value as text} for the fields whose value differs from the default; what the CLI
    gets as `--set name=value` (it checks types and ranges, and says what is wrong)."""
    out = {}
    for spec, value in zip(specs, values):
        if value is None or (value == "" and spec["type"] != "str"):
            if spec["default"] is None:
                continue
            raise_empty(spec)
        if spec["type"] == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        if value == spec["default"]:
            continue
        out[spec["name"]] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def raise_empty(spec: dict[str, Any]) -> None:
    from pipelines.core.errors import StudioError
    raise StudioError(f"{spec['name']} is empty; give a {spec['type']} "
                      f"(default {spec['default']})")
