"""How a super-resolved image is judged, and what the content loss sees.

    reduce(hr), bicubic(lr)     the 4x reduction that makes every input, and the baseline
    set_psnr(x, y)              PSNR of a set of crops taken together (the held-out photo's)
    psnr(x, y), ssim(x, y)      per image, on [0, 1] pixels, all channels (no border cropped)
    paired_fd(...)              Fréchet distance of outputs vs originals, with its floor
    feature_net(data)           the judge's conv body, for the content loss

SSIM is written here (Wang et al. 2004: an 11x11 Gaussian window of sigma 1.5, C1 = 0.01^2,
C2 = 0.03^2, data range 1, the mean over the valid window positions and the channels)
because neither torchmetrics nor scikit-image is installed in the studio's environment; the
window shrinks to the largest odd size that fits an image smaller than 11 px.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import ImageData
from .spec import SCALE


def reduce(hr: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) in [0, 1] -> (B, C, S/4, S/4): bicubic with anti-aliasing (the filter
    widened to the reduction, so detail is averaged away rather than aliased), in float32."""
    size = hr.shape[-1] // SCALE
    lr = F.interpolate(hr.float(), size=(size, size), mode="bicubic", antialias=True,
                       align_corners=False)
    return lr.clamp(0, 1)


def bicubic(lr: torch.Tensor) -> torch.Tensor:
    """(B, C, s, s) in [0, 1] -> (B, C, 4s, 4s): plain bicubic interpolation, the baseline."""
    size = lr.shape[-1] * SCALE
    up = F.interpolate(lr.float(), size=(size, size), mode="bicubic", align_corners=False)
    return up.clamp(0, 1)


def nearest(lr: torch.Tensor) -> torch.Tensor:
    """Each low-resolution pixel as a 4x4 block: how the input is shown beside the others."""
    return lr.repeat_interleave(SCALE, -2).repeat_interleave(SCALE, -1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) peak signal-to-noise ratio in dB of (B, C, H, W) images in [0, 1] (peak 1)."""
    mse = ((x.float() - y.float()) ** 2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(1e-10))


def set_psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR in dB of a whole set of images taken together: of the mean squared error over
    every pixel of every image. The studio's validation images are crops of one held-out
    photograph, and this is that photograph's PSNR, as papers measure a test image's over
    the whole image; the mean of per-crop PSNRs (psnr(...).mean()) instead weights a flat
    crop of background, where bicubic is near 45 dB and a faint error costs 5, like a crop
    of detail."""
    mse = ((x.float() - y.float()) ** 2).mean().item()
    return -10 * math.log10(max(mse, 1e-10))


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(B,) structural similarity of (B, C, H, W) images in [0, 1] (see the module's note)."""
    x, y = x.float(), y.float()
    channels, side = x.shape[1], min(x.shape[-2:])
    size = min(11, side if side % 2 else side - 1)
    g = torch.exp(-(torch.arange(size, dtype=torch.float32) - size // 2) ** 2 / (2 * 1.5 ** 2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(channels, 1, size, size).to(x.device)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=channels)      # valid positions only

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)
             / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2)))
    return index.flatten(1).mean(1)


def paired_fd(judge, outputs: np.ndarray, bicubics: np.ndarray, originals: np.ndarray
              ) -> dict[str, float]:
    """Fréchet distances on the judge's features, with the validation images split into two
    fixed halves A and B (seed 0): outputs of A vs originals of B (fd), the bicubic images of
    A vs originals of B (fd_bicubic), and originals of A vs originals of B (fd_floor: what a
    perfect model scores at this n, since FD is biased upwards at small n)."""
    from ..metrics import frechet_distance
    order = np.random.default_rng(0).permutation(len(originals))
    half = len(order) // 2
    a, b = order[:half], order[half:2 * half]
    real_b = judge.features(originals[b])
    return {"fd": frechet_distance(judge.features(outputs[a]), real_b),
            "fd_bicubic": frechet_distance(judge.features(bicubics[a]), real_b),
            "fd_floor": frechet_distance(judge.features(originals[a]), real_b),
            "fd_n": half}


# --- the content loss's feature network --------------------------------------------------------
_FEATURE_NETS: dict[str, nn.Module] = {}


def feature_net(data: ImageData) -> nn.Module:
    """The studio judge for this data set (pipelines/metrics/judge.py: a small CNN trained on
    the training split; a single-class set such as photos learns to tell the four rotations
    of each image apart), trained here on the CPU with the judge's own seed, so the same data
    always gives the same network and a resumed run the same loss. Its conv body, up to the
    global pooling, is the feature map the content loss compares (the role VGG's conv5_4
    plays in the paper): (B, C, S, S) in [-1, 1] -> (B, W, s, s), s <= 4. Frozen, in eval
    mode, kept once per process and data set (a judge of the bundled sets trains in under
    a minute)."""
    from ..metrics.judge import data_fingerprint, train_judge
    key = data_fingerprint(data)
    if key not in _FEATURE_NETS:
        body = train_judge(data, key, "cpu").net.body.eval()
        _FEATURE_NETS[key] = body.requires_grad_(False)
    return _FEATURE_NETS[key]


def feature_loss(net: nn.Module, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of the feature maps of output and target (both in [-1, 1]),
    divided by the targets' mean squared activation: a scale-free number, ~1 for an
    unrelated image, so its weight against the adversarial term does not depend on the
    network's activation scale (the paper divides VGG's by a fixed 12.75^2 for the same
    purpose)."""
    with torch.no_grad():
        want = net(target.float())
    got = net(output.float())
    return F.mse_loss(got, want) / want.pow(2).mean().clamp_min(1e-8)


def batched(fn, x: torch.Tensor, size: int = 256) -> torch.Tensor:
    """fn over x in batches (validation images: hundreds at once would hold every map)."""
    return torch.cat([fn(x[i:i + size]) for i in range(0, max(len(x), 1), size)])
