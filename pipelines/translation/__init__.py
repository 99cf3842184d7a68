"""Image-to-image translation: pix2pix (pix2pix.py: the pipeline; networks.py: its U-Net and
PatchGAN; spec.py: its torch-free declarations), trained on paired data (data/paired.py)."""
