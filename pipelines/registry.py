"""Pipeline name -> class. What the CLI and the UI list.

Entries name their class by import path so that listing pipelines (the UI does it at start-up)
imports no torch and no family code. Adding a family is one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .errors import StudioError


@dataclass(frozen=True)
class PipelineEntry:
    name: str
    family: str      # gan, vae, diffusion, text, ... (groups the UI's list)
    kind: str        # "image" or "text": what it samples
    summary: str     # one line for lists
    target: str      # "module:Class"


PIPELINES: tuple[PipelineEntry, ...] = (
    PipelineEntry("gan", "gan", "image",
                  "Vanilla GAN (Goodfellow 2014): MLP generator and discriminator, "
                  "non-saturating loss (minimax with --set loss=minimax)",
                  "pipelines.gan:VanillaGAN"),
    PipelineEntry("dcgan", "gan", "image",
                  "DCGAN: transposed-conv generator, strided-conv discriminator, batch norm",
                  "pipelines.gan:DCGAN"),
    PipelineEntry("cgan", "gan", "image",
                  "Conditional GAN: label embedding in G, projection (or concat) discriminator; "
                  "draws the class you ask for",
                  "pipelines.gan:ConditionalGAN"),
    PipelineEntry("wgan", "gan", "image",
                  "WGAN: a critic with weight clipping, n_critic 5, RMSProp",
                  "pipelines.gan:WGAN"),
    PipelineEntry("wgan-gp", "gan", "image",
                  "WGAN-GP: a critic with a gradient penalty, n_critic 5",
                  "pipelines.gan:WGANGP"),
    PipelineEntry("lsgan", "gan", "image",
                  "LSGAN: least-squares losses on a DCGAN",
                  "pipelines.gan:LSGAN"),
    PipelineEntry("sngan", "gan", "image",
                  "SNGAN: hinge loss, spectral norm in the discriminator, TTUR learning rates",
                  "pipelines.gan:SNGAN"),
    PipelineEntry("infogan", "gan", "image",
                  "InfoGAN: categorical and continuous latent codes learned without labels "
                  "(mutual-information term); code sweeps",
                  "pipelines.gan:InfoGAN"),
    PipelineEntry("ae", "autoencoder", "image",
                  "Autoencoder: MLP or conv encoder/decoder; reconstructions, latent map, "
                  "anomaly scores", "pipelines.autoencoders:AE"),
    PipelineEntry("dae", "autoencoder", "image",
                  "Denoising autoencoder: Gaussian, masking or salt-and-pepper corruption",
                  "pipelines.autoencoders:DAE"),
    PipelineEntry("sparse-ae", "autoencoder", "image",
                  "Sparse autoencoder: KL penalty pulling each code unit's mean activation "
                  "toward rho", "pipelines.autoencoders:SparseAE"),
    PipelineEntry("contractive-ae", "autoencoder", "image",
                  "Contractive autoencoder: penalty on the encoder Jacobian's Frobenius norm",
                  "pipelines.autoencoders:ContractiveAE"),
    PipelineEntry("vae", "autoencoder", "image",
                  "VAE: reparameterised Gaussian posterior, KL warm-up; samples from the "
                  "prior, ELBO in nats", "pipelines.autoencoders:VAE"),
    PipelineEntry("beta-vae", "autoencoder", "image",
                  "beta-VAE: a VAE with KL weight 4 (Gaussian likelihood) for a more factorised "
                  "latent space",
                  "pipelines.autoencoders:BetaVAE"),
    PipelineEntry("cvae", "autoencoder", "image",
                  "Conditional VAE: encoder and decoder see the class; draws the digit you "
                  "ask for", "pipelines.autoencoders:CVAE"),
    PipelineEntry("vqvae", "autoencoder", "image",
                  "VQ-VAE: discrete code maps from an EMA codebook (commitment loss, dead-code "
                  "resets); code-map tool", "pipelines.autoencoders:VQVAE"),
    PipelineEntry("linear-regression", "classic", "classic",
                  "Least squares with statsmodels' coefficient table (std err, t, p, CI, R²); "
                  "regression tables (diabetes, csv:)", "pipelines.classic:LinearRegression"),
    PipelineEntry("logistic", "classic", "classic",
                  "Logistic regression (one-vs-rest for 3+ classes) with the z/p table, "
                  "log-likelihood and pseudo-R²", "pipelines.classic:Logistic"),
    PipelineEntry("decision-tree", "classic", "classic",
                  "CART decision tree; the drawn tree and feature importances",
                  "pipelines.classic:DecisionTree"),
    PipelineEntry("random-forest", "classic", "classic",
                  "Random forest; feature importances with their spread over the trees",
                  "pipelines.classic:RandomForest"),
    PipelineEntry("svm-linear", "classic", "classic", "Support vector machine, linear kernel",
                  "pipelines.classic:SVMLinear"),
    PipelineEntry("svm-rbf", "classic", "classic", "Support vector machine, RBF kernel",
                  "pipelines.classic:SVMRBF"),
    PipelineEntry("svm-poly", "classic", "classic", "Support vector machine, polynomial kernel",
                  "pipelines.classic:SVMPoly"),
    PipelineEntry("mlp", "classifier", "classifier",
                  "MLP classifier: depth, width, activation, optimiser, L1/L2, dropout; "
                  "per-layer gradient norms (vanishing gradients)", "pipelines.classifiers:MLP"),
    PipelineEntry("lenet5", "classifier", "classifier", "LeNet-5 CNN (tanh, average pooling)",
                  "pipelines.classifiers:LeNet5"),
    PipelineEntry("alexnet", "classifier", "classifier",
                  "Small AlexNet-style CNN: five convs, max pooling, dropout FC layers",
                  "pipelines.classifiers:AlexNet"),
    PipelineEntry("vgg", "classifier", "classifier",
                  "VGG-style CNN: stages of 3x3 conv-BN-ReLU pairs", "pipelines.classifiers:VGG"),
    PipelineEntry("resnet", "classifier", "classifier",
                  "Small ResNet: three stages of basic residual blocks",
                  "pipelines.classifiers:ResNet"),
    PipelineEntry("densenet", "classifier", "classifier",
                  "Small DenseNet: three dense blocks with transitions",
                  "pipelines.classifiers:DenseNet"),
    PipelineEntry("rnn-rows", "classifier", "classifier",
                  "RNN reading an image row by row (many-to-one)", "pipelines.classifiers:RNNRows"),
    PipelineEntry("lstm-rows", "classifier", "classifier",
                  "LSTM reading an image row by row", "pipelines.classifiers:LSTMRows"),
    PipelineEntry("gru-rows", "classifier", "classifier",
                  "GRU reading an image row by row", "pipelines.classifiers:GRURows"),
    PipelineEntry("bilstm-rows", "classifier", "classifier",
                  "Bidirectional LSTM reading an image row by row",
                  "pipelines.classifiers:BiLSTMRows"),
    PipelineEntry("ddpm", "diffusion", "image",
                  "DDPM with diffusers: an unconditional UNet2DModel; every common sampler; "
                  "img2img, inpainting; exports a DDPMPipeline folder", "pipelines.diffusion:DDPM"),
    PipelineEntry("ddpm-class", "diffusion", "image",
                  "Class-conditional DDPM with classifier-free guidance; draws the class you "
                  "ask for", "pipelines.diffusion:ClassDDPM"),
    PipelineEntry("ddpm-text", "diffusion", "image",
                  "Text-to-image latent diffusion on the captioned shapes: an AutoencoderKL, "
                  "then a CLIP text encoder and a cross-attention UNet on its latents; "
                  "guidance, held-out colour/shape prompts; exports a StableDiffusionPipeline",
                  "pipelines.diffusion:TextDDPM"),
    PipelineEntry("transformer", "text", "text",
                  "Decoder-only transformer (GPT-2 or Llama style, transformers) trained from "
                  "scratch or fine-tuned from a local folder (--init-from); attention map",
                  "pipelines.text:Transformer"),
    PipelineEntry("rnn", "text", "text",
                  "Recurrent (Elman, tanh) language model: embedding, stacked RNN, linear head",
                  "pipelines.text:RNN"),
    PipelineEntry("lstm", "text", "text",
                  "LSTM language model: embedding, stacked LSTM, linear head",
                  "pipelines.text:LSTM"),
    PipelineEntry("gru", "text", "text",
                  "GRU language model: embedding, stacked GRU, linear head",
                  "pipelines.text:GRU"),
)


def list_pipelines() -> list[PipelineEntry]:
    return list(PIPELINES)


def get_entry(name: str) -> PipelineEntry:
    for entry in PIPELINES:
        if entry.name == name:
            return entry
    raise StudioError(f"unknown pipeline {name!r}; available: "
                      f"{', '.join(e.name for e in PIPELINES)}")


def load_pipeline_class(name: str) -> type:
    """Import and return the pipeline class registered under `name`."""
    module_name, _, class_name = get_entry(name).target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
