"""One step of the keyframe mode: chroma and confidence carried from one frame to another along dense flow.

* dense flow both ways with OpenCV's DIS (Kroeger et al. 2016, "Fast Optical Flow using Dense Inverse
  Search"), on 8-bit luma;
* backward warp of a's chroma and confidence along the b -> a flow;
* confidence = warped confidence x forward-backward consistency (the occlusion test of Sundaram, Brox &
  Keutzer 2010, ``|w + w^|^2 < 0.01 (|w|^2 + |w^|^2) + 0.5``, made soft: exp(-lhs / rhs)) x luma
  agreement (exp(-(box3 |Y_b - warped Y_a| / luma_sigma)^2)) x inside the frame;
* holes (low confidence) filled by a confidence-weighted, edge-aware fill: normalised convolution
  (Knutsson & Westin 1993) with the recursive domain-transform filter guided by luma (Gastal & Oliveira 2011,
  "Domain Transform for Edge-Aware Image and Video Processing", section 4.2 / the RF filter); the fill's own
  confidence is its normalised weight times :attr:`PropagationOptions.fill_trust`.

Plus the small array helpers the keyframe mode shares (tensor <-> array, area resize, Cb/Cr of R'G'B').
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from .. import color
from ..jit import jit


@dataclass(frozen=True, kw_only=True)
class PropagationOptions:
    """Constants of the propagation; tuned on synthetic pan/zoom clips (benchmarks/references.py), not on the
    held-out clips it is reported on."""

    anchor_step: int = 8  # s: anchors at key +- j*s; a frame is one flow away from its anchor
    luma_sigma: float = 0.06  # Y' difference (3x3 mean) where the luma-agreement confidence falls to 1/e
    distance_frames: float = 400.0  # frames from the key at which confidence has decayed to 1/e
    fill_sigma_space: float = 0.1  # spatial reach of the hole fill, as a fraction of the grid's short side
    fill_sigma_range: float = 0.1  # luma step (Y') that the fill treats as an edge of one spatial sigma
    fill_trust: float = 0.8  # confidence of a filled pixel relative to the confidence around it
    auto_below: float = 0.1  # confidence under which the automatic model's prediction is mixed in (0.25, 0.4: worse)
    palette_correlation: float = 0.85  # luma correlation with its frame below which a reference is a palette


DEFAULT_OPTIONS = PropagationOptions()


@dataclass(frozen=True)
class FrameLuma:
    """What the propagation reads of a frame: Y' (h, w) float32 at render size, ``L_norm`` on the work
    grid (the scene-cut measure the automatic path uses), and its scene-change properties
    (``_SceneChangePrev``/``_SceneChangeNext`` where set: :func:`vs_colorgan.temporal.cut_flag`)."""

    y: np.ndarray
    l_work: torch.Tensor
    cut_props: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class State:
    """Chroma carried to a frame: Cb, Cr (h, w, 2) float32 on the render grid and confidence (h, w) in [0, 1]."""

    cbcr: np.ndarray
    conf: np.ndarray


def to_tensor(hwc: np.ndarray) -> torch.Tensor:
    """(h, w) or (h, w, C) numpy -> (1, C, h, w) float32 tensor."""
    a = hwc[..., None] if hwc.ndim == 2 else hwc
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32))[None]


def to_hwc(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t[0].permute(1, 2, 0).numpy())


def rgb_to_cbcr(rgb: np.ndarray, kr: float, kb: float) -> np.ndarray:
    """R'G'B' (h, w, 3) -> Cb, Cr (h, w, 2) with :func:`vs_colorgan.color.rgb_to_ycbcr`."""
    _, cb, cr = color.rgb_to_ycbcr(to_tensor(rgb), kr, kb)
    return to_hwc(torch.cat([cb, cr], dim=1))


def resize_area(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (width, height): area averaging when shrinking, bilinear when enlarging."""
    if (a.shape[1], a.shape[0]) == size:
        return a
    shrink = a.shape[1] * a.shape[0] > size[0] * size[1]
    return cv2.resize(a, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def box3(a: np.ndarray) -> np.ndarray:
    return cv2.blur(a, (3, 3), borderType=cv2.BORDER_REPLICATE)


def dis_flow(frm: np.ndarray, to: np.ndarray) -> np.ndarray:
    """Dense flow (h, w, 2) with ``frm(x) ~ to(x + flow(x))``, DIS "medium" preset on 8-bit luma.

    A new DIS object per call: the object keeps buffers and is not safe to share between VapourSynth's threads.
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    u8 = [np.clip(v * 255.0 + 0.5, 0, 255).astype(np.uint8) for v in (frm, to)]
    return dis.calc(u8[0], u8[1], None)


@jit  # compiled: a Python loop over rows cost ~25 ms per fill at 480p (issue 15's keyframe mode)
def _recursive_pass(x: np.ndarray, coef: np.ndarray) -> None:
    """One causal + one anti-causal first-order recursive pass along axis 0 of ``x`` (n, m, C), in place:
    ``J[i] = I[i] + a_i (J[i-1] - I[i])`` with per-sample feedback ``coef`` (n - 1, m, 1) (Gastal & Oliveira
    2011, eq. 21). Row operations, the same float32 arithmetic compiled or not (vs_colorgan.jit)."""
    for i in range(1, x.shape[0]):
        x[i] += coef[i - 1] * (x[i - 1] - x[i])
    for i in range(x.shape[0] - 2, -1, -1):
        x[i] += coef[i] * (x[i + 1] - x[i])


def domain_transform_filter(values: np.ndarray, y: np.ndarray, *, sigma_s: float, sigma_r: float,
                            iterations: int = 3) -> np.ndarray:
    """Edge-aware smoothing of ``values`` (h, w, C) guided by ``y`` (h, w): the recursive domain-transform
    filter (Gastal & Oliveira 2011, section 4.2, with their iteration schedule eq. 14). ``sigma_s`` in
    pixels, ``sigma_r`` in units of ``y``."""
    ratio = sigma_s / sigma_r
    # domain transform derivatives ct'(x) = 1 + sigma_s / sigma_r |I'(x)| (eq. 11), per axis
    d_h = (1.0 + ratio * np.abs(np.diff(y, axis=1))).T[..., None].astype(np.float32)  # (w-1, h, 1)
    d_v = (1.0 + ratio * np.abs(np.diff(y, axis=0)))[..., None].astype(np.float32)  # (h-1, w, 1)
    out = np.ascontiguousarray(values.transpose(1, 0, 2), dtype=np.float32)  # (w, h, C): rows are contiguous
    for i in range(iterations):
        sigma_i = sigma_s * math.sqrt(3.0) * 2.0 ** (iterations - i - 1) / math.sqrt(4.0 ** iterations - 1.0)
        a = math.exp(-math.sqrt(2.0) / sigma_i)
        _recursive_pass(out, np.power(np.float32(a), d_h))
        out = np.ascontiguousarray(out.transpose(1, 0, 2))  # (h, w, C)
        _recursive_pass(out, np.power(np.float32(a), d_v))
        out = np.ascontiguousarray(out.transpose(1, 0, 2))
    return np.ascontiguousarray(out.transpose(1, 0, 2))


FILL_SHRINK = 2  # the fill runs at half the render grid: it fills holes with smooth colour, and its cost is
# Python-level recursion over rows and columns (about 4x cheaper at half size, measured 100 -> 25 ms at 480p)


def edge_aware_fill(cbcr: np.ndarray, conf: np.ndarray, y: np.ndarray, *, sigma_s: float, sigma_r: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Normalised convolution (Knutsson & Westin 1993) with the domain-transform filter: the
    confidence-weighted, luma-edge-aware mean of ``cbcr`` around each pixel, and that mean's weight
    (the filtered confidence, in [0, 1]). Computed on a grid :data:`FILL_SHRINK` times smaller (``sigma_s``
    is given in pixels of the full grid) and brought back bilinearly."""
    h, w = y.shape
    size = (max(2, w // FILL_SHRINK), max(2, h // FILL_SHRINK))
    stack = np.concatenate([cbcr * conf[..., None], conf[..., None]], axis=2)
    small = domain_transform_filter(resize_area(stack, size), resize_area(y, size),
                                    sigma_s=sigma_s * size[0] / w, sigma_r=sigma_r, iterations=2)
    out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    weight = np.clip(out[..., 2], 0.0, 1.0)
    return out[..., :2] / np.maximum(out[..., 2:], 1e-6), weight


def _squared_norm(v: np.ndarray) -> np.ndarray:
    """|v|^2 of a field of 2-vectors (h, w, 2) -> (h, w)."""
    x, y = v[..., 0], v[..., 1]
    return x * x + y * y


def carry(state: State, ya: np.ndarray, yb: np.ndarray, options: PropagationOptions) -> State:
    """Carry ``state`` from a frame of luma ``ya`` to one of luma ``yb`` (Y' (h, w) at render size; see the
    module docstring)."""
    o = options
    h, w = yb.shape
    flow_ba = dis_flow(yb, ya)  # yb(x) ~ ya(x + flow_ba(x))
    flow_ab = dis_flow(ya, yb)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x, map_y = gx + flow_ba[..., 0], gy + flow_ba[..., 1]
    src = np.dstack([state.cbcr, state.conf, ya, flow_ab])
    warped = cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    cbcr, conf, ya_w, back = warped[..., :2], warped[..., 2], warped[..., 3], warped[..., 4:6]
    # forward-backward consistency, Sundaram et al. 2010 (section 4.1), soft
    # squared norms as two products each: numpy's sum over a length-2 last axis was ~1 ms per frame at 480p
    fb = _squared_norm(flow_ba + back)
    scale = 0.01 * (_squared_norm(flow_ba) + _squared_norm(back)) + 0.5
    c_fb = np.exp(-fb / scale)
    c_luma = np.exp(-(box3(np.abs(yb - ya_w)) / o.luma_sigma) ** 2)
    inside = (map_x >= -0.5) & (map_x <= w - 0.5) & (map_y >= -0.5) & (map_y <= h - 0.5)
    c = np.clip(conf, 0.0, 1.0) * c_fb * c_luma * inside
    c = c.astype(np.float32)
    filled, weight = edge_aware_fill(cbcr, c, yb, sigma_s=o.fill_sigma_space * min(h, w),
                                     sigma_r=o.fill_sigma_range)
    out_cbcr = c[..., None] * cbcr + (1.0 - c[..., None]) * filled
    out_conf = c + (1.0 - c) * weight * o.fill_trust
    return State(out_cbcr.astype(np.float32), out_conf.astype(np.float32))
