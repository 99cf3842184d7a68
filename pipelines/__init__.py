"""The engine: data, trainer, run folders, pipelines. Never imports gradio."""
