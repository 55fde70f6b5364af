"""Colour conversions shared by the filter, training and export: the one source of truth.

The networks see CIE L*a*b* (D65 white, sRGB primaries and transfer), as in the design paper
(section 3: "L in, ab out"). The RGB <-> Lab formulas are kornia's, which follow the CIE
definitions; they are plain tensor ops, so they also export to ONNX (see ``export/``).

Network normalisation: ``L_norm = L / 50 - 1`` (L in [0, 100] -> [-1, 1]) and
``ab_norm = ab / 110`` (the sRGB gamut spans about +-110 in a and b).
"""
from __future__ import annotations

import numpy as np
import torch
from kornia.color import lab_to_rgb as _lab_to_rgb
from kornia.color import rgb_to_lab as _rgb_to_lab

L_SCALE = 50.0
AB_SCALE = 110.0

# (Kr, Kb) luma coefficients per VapourSynth ``_Matrix`` value (ITU-T H.273 MatrixCoefficients).
MATRIX_COEFFICIENTS: dict[int, tuple[float, float]] = {
    1: (0.2126, 0.0722),  # BT.709
    4: (0.30, 0.11),  # FCC
    5: (0.299, 0.114),  # BT.470BG
    6: (0.299, 0.114),  # SMPTE 170M
    7: (0.212, 0.087),  # SMPTE 240M
    9: (0.2627, 0.0593),  # BT.2020 non-constant luminance
}


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], shape (..., 3, H, W) -> Lab (L in [0, 100], a/b about [-110, 110])."""
    return _rgb_to_lab(rgb)


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Lab -> sRGB, shape (..., 3, H, W); clipped to [0, 1] unless ``clip`` is False (a gamut test)."""
    return _lab_to_rgb(lab, clip=clip)


def gray_to_l(gray: torch.Tensor) -> torch.Tensor:
    """Gamma-encoded gray level in [0, 1] (R = G = B) -> CIE L* in [0, 100].

    Same value as ``rgb_to_lab`` of the neutral colour, without building three channels:
    linearise with the sRGB curve (IEC 61966-2-1), then L* = 116 f(Y) - 16 (CIE 15).
    """
    g = gray.clamp(0.0, 1.0)
    lin = torch.where(g > 0.04045, ((g + 0.055) / 1.055).pow(2.4), g / 12.92)
    delta = 6.0 / 29.0
    f = torch.where(lin > delta**3, lin.clamp_min(1e-12).pow(1.0 / 3.0), lin / (3 * delta**2) + 4.0 / 29.0)
    return 116.0 * f - 16.0


def gray_to_l_array(gray: np.ndarray) -> np.ndarray:
    """:func:`gray_to_l` on a float32 numpy array (any shape), in float32: the filter's CPU path.

    The same formula; numpy's float32 ``power`` rounds differently from torch's vectorised one by a few ulps
    (both within 2e-5 L* of the float64 value, tests/test_filter_stages.py). Why numpy: single-threaded SIMD;
    on a 341x192 plane torch's two OpenMP threads stalled for tens of ms while ORT's inference held the
    other core (issue 15: "preprocess" 7.8 ms), numpy takes ~0.4 ms whatever the load.
    """
    one = np.float32(1.0)
    g = np.clip(gray, np.float32(0.0), one)
    lin = np.where(g > np.float32(0.04045),
                   np.power((g + np.float32(0.055)) / np.float32(1.055), np.float32(2.4)), g / np.float32(12.92))
    delta = 6.0 / 29.0
    f = np.where(lin > np.float32(delta**3), np.power(np.maximum(lin, np.float32(1e-12)), np.float32(1.0 / 3.0)),
                 lin / np.float32(3 * delta**2) + np.float32(4.0 / 29.0))
    f *= np.float32(116.0)
    f -= np.float32(16.0)
    return f


def normalize_l(l: torch.Tensor) -> torch.Tensor:
    return l / L_SCALE - 1.0


def denormalize_l(l_norm: torch.Tensor) -> torch.Tensor:
    return (l_norm + 1.0) * L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    return ab / AB_SCALE


def denormalize_ab(ab_norm: torch.Tensor) -> torch.Tensor:
    return ab_norm * AB_SCALE


def split_lab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sRGB batch (N, 3, H, W) -> (L_norm (N, 1, H, W), ab_norm (N, 2, H, W)): a training pair."""
    lab = rgb_to_lab(rgb)
    return normalize_l(lab[:, :1]), normalize_ab(lab[:, 1:])


def merge_lab(l_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    """(L_norm, ab_norm) -> sRGB in [0, 1]: what a network's output looks like."""
    return lab_to_rgb(torch.cat([denormalize_l(l_norm), denormalize_ab(ab_norm)], dim=1))


# kornia's XYZ (D65) -> linear sRGB matrix (kornia.color.xyz_to_rgb) and D65 white (kornia.color.lab)
_XYZ_TO_RGB = np.array([[3.2404813432005266, -1.5371515162713185, -0.4985363261688878],
                        [-0.9692549499965682, 1.8759900014898907, 0.0415559265582928],
                        [0.0556466391351772, -0.2040413383665112, 1.0573110696453443]])
_D65 = (0.95047, 1.0, 1.08883)


def lab_to_cbcr_array(l_norm: np.ndarray, ab_norm: np.ndarray, kr: float, kb: float) -> np.ndarray:
    """(L_norm (h, w), ab_norm (2, h, w)) -> Cb, Cr (2, h, w) float32 of the matrix (Kr, Kb): :func:`merge_lab`
    then :func:`rgb_to_ycbcr` in numpy, the filter's CPU path on the work grid.

    kornia's formulas step for step (``lab_to_rgb`` with ``clip=True``); the 3x3 matrix products add in
    another order, so values agree within ~1e-6 (tests/test_filter_stages.py). Why numpy: kornia's ~30 small
    torch operations cost ~0.4 ms per frame in dispatch on a 64x114 grid, numpy's ~0.1 ms.
    """
    f32 = np.float32
    lab_l = (l_norm + f32(1.0)) * f32(L_SCALE)
    a, b = ab_norm[0] * f32(AB_SCALE), ab_norm[1] * f32(AB_SCALE)
    fy = (lab_l + f32(16.0)) / f32(116.0)
    fxyz = np.stack([a / f32(500.0) + fy, fy, np.maximum(fy - b / f32(200.0), f32(0.0))])
    xyz = np.where(fxyz > f32(0.2068966), fxyz ** 3, (fxyz - f32(4.0 / 29.0)) / f32(7.787))
    xyz *= np.array(_D65, dtype=np.float32)[:, None, None]
    lin = np.einsum("ij,jhw->ihw", _XYZ_TO_RGB.astype(np.float32), xyz)
    threshold = f32(0.0031308)
    rgb = np.where(lin > threshold, f32(1.055) * np.maximum(lin, threshold) ** f32(1 / 2.4) - f32(0.055),
                   f32(12.92) * lin)
    np.clip(rgb, f32(0.0), f32(1.0), out=rgb)
    r, g, b = rgb
    y = f32(kr) * r + f32(1.0 - kr - kb) * g + f32(kb) * b
    return np.stack([(b - y) / f32(2.0 * (1.0 - kb)), (r - y) / f32(2.0 * (1.0 - kr))])


def rgb_to_ycbcr(rgb: torch.Tensor, kr: float, kb: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gamma-encoded R'G'B' (N, 3, H, W) -> Y' in [0, 1] and Cb, Cr in [-0.5, 0.5] (ITU-R BT.601/709 form)."""
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    y = kr * r + (1.0 - kr - kb) * g + kb * b
    cb = (b - y) / (2.0 * (1.0 - kb))
    cr = (r - y) / (2.0 * (1.0 - kr))
    return y, cb, cr


def ycbcr_to_rgb(y: torch.Tensor, cb: torch.Tensor, cr: torch.Tensor, kr: float, kb: float) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr`; returns (N, 3, H, W), not clipped."""
    r = y + 2.0 * (1.0 - kr) * cr
    b = y + 2.0 * (1.0 - kb) * cb
    g = (y - kr * r - kb * b) / (1.0 - kr - kb)
    return torch.cat([r, g, b], dim=1)
