"""The layer calculator under the Train tab's form: type a stack of conv, pool and dense layers
and an input size; every layer's output shape and parameters, worked out as you type
(pipelines/services/layer_calculator.py: plain arithmetic, no model is built). The worked
examples fill the two boxes."""

from __future__ import annotations

import gradio as gr

from pipelines.core.errors import StudioError
from pipelines.services import layer_calculator as calc

FIRST = next(iter(calc.EXAMPLES))


def worked_out(input_size: str, stack: str) -> str:
    """The table, or what is wrong in one line (shown in place: no pop-up per keystroke)."""
    try:
        return calc.as_markdown(calc.calculate(stack, input_size), input_size)
    except StudioError as e:
        return f"**Not a stack yet**: {e}"


def build() -> None:
    with gr.Accordion("Layer calculator: output shapes and parameters of a stack you type",
                      open=False, elem_id="calc"):
        size, stack, expect = calc.EXAMPLES[FIRST]
        with gr.Row():
            example = gr.Dropdown(list(calc.EXAMPLES), value=FIRST, label="Worked example",
                                  elem_id="calc-example", scale=2)
            input_size = gr.Textbox(size, label="Input", info="channels x height x width, or "
                                    "a number of features", elem_id="calc-input", scale=1)
        layers = gr.Textbox(stack, lines=6, label="Layers, one a line",
                            info="conv OUT k=K [s=S p=P d=D] · pool k=K [s=S p=P] · flatten · "
                                 "dense OUT", elem_id="calc-layers")
        note = gr.Markdown(f"*What to see:* {expect}", elem_id="calc-note")
        table = gr.Markdown(worked_out(size, stack), elem_id="calc-table")

    def pick(name):
        size, stack, expect = calc.EXAMPLES[name]
        return size, stack, f"*What to see:* {expect}", worked_out(size, stack)

    def typed(name, size, stack):
        """The table, and the example's note while the boxes still hold that example."""
        example_size, example_stack, expect = calc.EXAMPLES.get(name, ("", "", ""))
        same = (size.strip(), stack.strip()) == (example_size, example_stack)
        return worked_out(size, stack), f"*What to see:* {expect}" if same else ""

    example.change(pick, example, [input_size, layers, note, table], show_progress="hidden")
    for box in (input_size, layers):
        box.change(typed, [example, input_size, layers], [table, note],
                   show_progress="hidden")
