"""4x super-resolution: SRResNet and SRGAN (Ledig et al. 2017) on one pipeline (pipeline.py),
their networks (networks.py), the reduction, measures and content network (quality.py) and
their torch-free declarations (spec.py)."""
