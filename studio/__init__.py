"""The Gradio front end of Generative Media Studio.

It never imports torch: training runs as a subprocess of the CLI (`studio.jobs`), and the UI
reads run folders through the torch-free parts of `pipelines` (registry, runs, config, data).
"""
