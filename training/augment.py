"""Degradations of the network's input luma that look like real black-and-white film.

The model is trained on clean digital photographs but runs on scanned film: softer, grainier, with
other tone curves, flicker and vignetting. Each degradation is applied to ``L_norm`` only (the target
chroma stays the clean photo's), with probability ``p`` each, drawn from torch's RNG so a resumed run
draws the same ones. Kinds and ranges follow what restorers meet in old footage (and the degradation
models of film-restoration work such as Wan et al. 2020, "Bringing Old Photos Back to Life", sec. 3.1:
blur, noise, contrast/brightness changes):

* tone curve: gamma in [0.6, 1.6] and a contrast stretch in [0.7, 1.3] around mid-gray;
* brightness flicker: a global offset of up to +-8 L*;
* blur: Gaussian, sigma in [0.3, 1.5] px (soft lenses, generation loss of prints);
* grain: Gaussian noise of 1-5 L*, blurred by a 1-px kernel half of the time (film grain is clumpy);
* vignetting: darkening toward the corners by up to 35 %.

>>> l_aug = film_degrade(l_norm, p=0.5)   # (1, H, W) in [-1, 1]
"""
from __future__ import annotations

import torch
from torchvision.transforms.functional import gaussian_blur


def _u(lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand(()).item()


def film_degrade(l_norm: torch.Tensor, p: float) -> torch.Tensor:
    """Randomly degraded copy of ``l_norm`` (C=1, H, W), values in [-1, 1] (L* / 50 - 1)."""
    if p <= 0:
        return l_norm
    x = (l_norm + 1.0) * 0.5  # L* / 100 in [0, 1]
    if torch.rand(()).item() < p:  # tone curve
        x = x.clamp(0, 1).pow(_u(0.6, 1.6))
        x = 0.5 + (x - 0.5) * _u(0.7, 1.3)
    if torch.rand(()).item() < p:  # brightness flicker
        x = x + _u(-0.08, 0.08)
    if torch.rand(()).item() < p:  # blur
        sigma = _u(0.3, 1.5)
        k = 2 * int(3 * sigma) + 1
        x = gaussian_blur(x.unsqueeze(0), [k, k], [sigma, sigma])[0]
    if torch.rand(()).item() < p:  # grain
        noise = torch.randn_like(x) * _u(0.01, 0.05)
        if torch.rand(()).item() < 0.5:
            noise = gaussian_blur(noise.unsqueeze(0), [3, 3], [1.0, 1.0])[0] * 1.5
        x = x + noise
    if torch.rand(()).item() < p:  # vignetting
        h, w = x.shape[-2:]
        yy = torch.linspace(-1, 1, h).view(h, 1)
        xx = torch.linspace(-1, 1, w).view(1, w)
        r2 = (yy * yy + xx * xx) / 2.0  # 0 at the centre, 1 in the corners
        x = x * (1.0 - _u(0.05, 0.35) * r2)
    return (x.clamp(0, 1) * 2.0 - 1.0).to(l_norm.dtype)

