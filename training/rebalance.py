"""Colour rebalancing of the reconstruction loss (Zhang, Isola & Efros 2016, "Colorful Image Colorization", 2.2).

Most pixels of any picture set are near gray, so a loss averaged over pixels is mostly about gray, and where a
colour is uncertain the mean-seeking estimate is pulled to it: the desaturated look of regression models.
Zhang et al. weight each pixel's loss by the rarity of its true colour,

    w(q) ∝ ((1 - λ) p̃(q) + λ / Q)^-1,   normalised so that E_p̃[w] = 1,

where p̃ is the training set's distribution of quantised ab (bins of 10, smoothed by a Gaussian of sigma 5 ab
units), Q the number of bins in use and λ the mix with the uniform (they use 0.5; λ = 1 gives every pixel the
same weight, the loss as before). They weight a classification loss; here it weights the per-pixel regression
loss of the NoGAN phase, so rare saturated colours pull the estimate as hard as the common near-gray ones.
"""
from __future__ import annotations

from collections.abc import Iterable

import kornia
import numpy as np
import torch
from tqdm import tqdm

from vs_colorgan import color
from vs_colorgan.networks import AB_BIN  # ab units per bin (Zhang et al.: grid size 10), the bins head's too

AB_RANGE = color.AB_SCALE  # |a|, |b| covered: the networks' ab_norm scale
BINS = int(2 * AB_RANGE / AB_BIN)  # 22 per axis
SMOOTH_SIGMA = 5.0  # ab units (Zhang et al.: sigma = 5)
PRIOR_SHORT_SIDE = 64  # the pictures are read at this short side for the histogram: colour statistics, not detail
# at most this many pictures, evenly spaced, make the histogram: a distribution of a few hundred bins is settled
# long before a large folder (COCO's 118,000 pictures) has been read once
PRIOR_MAX_PICTURES = 2000


def _bin_index(ab_norm: torch.Tensor) -> torch.Tensor:
    """(..., 2, H, W) ab_norm -> (..., H, W) flat bin index in [0, BINS^2)."""
    ab = color.denormalize_ab(ab_norm)
    idx = ((ab + AB_RANGE) / AB_BIN).floor().clamp(0, BINS - 1).long()
    return idx.select(-3, 0) * BINS + idx.select(-3, 1)


def evenly(items: list, count: int = PRIOR_MAX_PICTURES) -> list:
    """At most ``count`` of ``items``, evenly spaced (all of them when there are no more)."""
    return items if len(items) <= count else [items[i * len(items) // count] for i in range(count)]


def ab_prior(pictures: Iterable[np.ndarray | None], *, total: int | None = None,
             show_progress: bool = False) -> torch.Tensor:
    """(BINS, BINS) smoothed distribution of the pictures' quantised ab (each an RGB uint8 array, read one at a
    time; None, an unreadable one, is skipped; every picture counts alike, whatever its size)."""
    from PIL import Image

    hist = torch.zeros(BINS * BINS, dtype=torch.float64)
    for rgb in tqdm(pictures, total=total, desc="colour prior", unit="picture", disable=not show_progress):
        if rgb is None:
            continue
        h, w = rgb.shape[:2]
        s = PRIOR_SHORT_SIDE / min(h, w)
        if s < 1:
            rgb = np.asarray(Image.fromarray(rgb).resize((max(1, round(w * s)), max(1, round(h * s))),
                                                         Image.Resampling.BOX))
        t = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().unsqueeze(0) / 255.0
        _, ab = color.split_lab(t)
        counts = torch.bincount(_bin_index(ab).flatten(), minlength=BINS * BINS).double()
        hist += counts / counts.sum()
    if hist.sum() <= 0:
        raise ValueError("training.rebalance: no pictures to take the colour distribution from")
    hist = hist.view(BINS, BINS) / hist.sum()
    # Gaussian smoothing (sigma 5 ab units = half a bin), zero outside the grid
    sm = kornia.filters.gaussian_blur2d(hist.view(1, 1, BINS, BINS), (5, 5), (SMOOTH_SIGMA / AB_BIN,) * 2,
                                        border_type="constant")[0, 0]
    return (sm / sm.sum()).float()


def rebalance_table(prior: torch.Tensor, lam: float) -> torch.Tensor:
    """(BINS * BINS,) weight of each bin: Zhang et al.'s eq. 4 with mix ``lam``, E_prior[w] = 1; bins the prior
    never reaches get the largest weight in use (a pixel lands there only through the smoothing's edge)."""
    p = prior.flatten().double()
    used = p > 0
    q = int(used.sum())
    w = torch.zeros_like(p)
    w[used] = 1.0 / ((1.0 - lam) * p[used] + lam / q)
    w = w / (p * w).sum()
    w[~used] = w[used].max()
    return w.float()


def pixel_weights(table: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) weight of each pixel of a batch of true ab_norm (N, 2, H, W)."""
    return table.to(ab_norm.device)[_bin_index(ab_norm)].unsqueeze(1)

