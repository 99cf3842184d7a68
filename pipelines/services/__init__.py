"""What the CLI and the worker call on a trained run: sampling and tools, evaluation, export,
loading, model cards, image files, the dry run."""
