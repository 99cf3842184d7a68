"""GAN losses, the gradient penalty, weight clipping and InfoGAN's mutual-information term.

The adversarial losses take the discriminator's raw outputs (logits / critic scores):

    loss          discriminator                         generator
    minimax       -log D(x) - log(1 - D(G(z)))          log(1 - D(G(z)))   (Goodfellow, 2014)
    non-saturating      the same                        -log D(G(z))       (the paper's fix)
    wasserstein   -(C(x) - C(G(z)))                     -C(G(z))           (Arjovsky, 2017)
    least-squares ((D(x) - 1)^2 + D(G(z))^2) / 2        (D(G(z)) - 1)^2 / 2 (Mao, 2017)
    hinge         relu(1 - D(x)) + relu(1 + D(G(z)))    -D(G(z))           (Lim; Miyato, 2018)

with D(.) = sigmoid(logit) for the first two. The minimax generator loss saturates: when D
rejects fakes confidently, log(1 - D) is flat and the generator learns nothing; the studio
keeps it so that a person can watch that happen.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PROBABILITY_LOSSES = ("minimax", "non-saturating")   # D outputs a logit of P(real)


def discriminator_loss(kind: str, d_real: torch.Tensor, d_fake: torch.Tensor,
                       real_target: float = 1.0) -> torch.Tensor:
    """d_real, d_fake: (B,) raw outputs. `real_target` < 1 is one-sided label smoothing
    (Salimans et al., 2016): only the real targets are softened, never the fake ones."""
    if kind in PROBABILITY_LOSSES:
        return (F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, real_target))
                + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
    if kind == "wasserstein":
        return d_fake.mean() - d_real.mean()
    if kind == "least-squares":
        return 0.5 * ((d_real - real_target) ** 2).mean() + 0.5 * (d_fake ** 2).mean()
    if kind == "hinge":
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    raise ValueError(kind)


def generator_loss(kind: str, d_gen: torch.Tensor) -> torch.Tensor:
    """d_gen: (B,) raw discriminator outputs on fresh fakes."""
    if kind == "minimax":
        return -F.softplus(d_gen).mean()          # log(1 - sigmoid(d)) = -softplus(d)
    if kind == "non-saturating":
        return F.softplus(-d_gen).mean()          # -log sigmoid(d)
    if kind in ("wasserstein", "hinge"):
        return -d_gen.mean()
    if kind == "least-squares":
        return 0.5 * ((d_gen - 1) ** 2).mean()
    raise ValueError(kind)


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor,
                     labels: torch.Tensor | None, mix: torch.Tensor) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al., 2017): E[(||grad_x C(x_hat)||_2 - 1)^2] at points
    x_hat = mix * real + (1 - mix) * fake on the lines between real and fake samples, which
    pushes the critic towards being 1-Lipschitz there. mix: (B,) in [0, 1].

    `critic(x, labels)` returns (score (B,), features); the graph is kept (create_graph) so
    the penalty's own gradient reaches the critic's weights."""
    m = mix.view(-1, *([1] * (real.dim() - 1))).to(real.dtype)
    x_hat = (m * real.detach() + (1 - m) * fake.detach()).requires_grad_(True)
    score, _ = critic(x_hat, labels)
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).float().norm(dim=1)                     # (B,)
    return ((norms - 1) ** 2).mean()


@torch.no_grad()
def clip_weights(module: torch.nn.Module, limit: float) -> None:
    """The original WGAN's crude Lipschitz constraint: clamp every critic weight to
    [-limit, limit] after each critic step."""
    for p in module.parameters():
        p.clamp_(-limit, limit)


def info_loss(q_out, categories: torch.Tensor | None, continuous: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """InfoGAN's variational lower bound on I(c; G(z, c)), as a loss (Chen et al., 2016):
    cross-entropy of the categorical code plus the Gaussian negative log-likelihood of the
    continuous codes under Q's predicted mean and std. Returns (total, categorical part,
    continuous part); the parts are logged."""
    logits, mean, log_std = q_out
    zero = logits.new_zeros(())
    cat = F.cross_entropy(logits, categories) if categories is not None else zero
    if continuous is not None and continuous.shape[1]:
        # -log N(c; mean, std^2), dropping the constant log(2 pi) / 2
        nll = (log_std + 0.5 * ((continuous - mean) / log_std.exp()) ** 2).sum(dim=1).mean()
    else:
        nll = zero
    return cat + nll, cat, nll


def diversity_ratio(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """A cheap mode-collapse signal: the mean pairwise distance between the fakes of a batch
    divided by that between the reals. Near 1 the fakes vary as much as real data; a
    collapsing generator drives it towards 0."""
    def spread(x):
        flat = x.detach().float().flatten(1)
        return torch.pdist(flat).mean() if len(flat) > 1 else flat.new_zeros(())
    return spread(fake) / spread(real).clamp_min(1e-8)


def mode_seeking(fake_a: torch.Tensor, fake_b: torch.Tensor, noise_a: torch.Tensor,
                 noise_b: torch.Tensor) -> torch.Tensor:
    """Mao et al. (2019), "Mode Seeking Generative Adversarial Networks" (their code's form):
    1 / (mean |G(c, z1) - G(c, z2)| / mean |z1 - z2| + 1e-5) for two noises under the same
    condition c. Small when the output follows the noise, large when it ignores it."""
    ratio = (fake_a - fake_b).abs().mean() / (noise_a - noise_b).abs().mean()
    return 1 / (ratio + 1e-5)
