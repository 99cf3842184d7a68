"""Linear latent-variable models: probabilistic PCA and factor analysis (model.py), declared
without torch in spec.py. The example family of docs/architecture.md: a spec file, an
implementation file and one line in pipelines/registry.py."""
