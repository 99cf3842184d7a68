"""The engine core: the Pipeline contract and specs, configs, the trainer, phases and schedules,
the run folder, checkpoints and hardware. Imports no family and never gradio."""
