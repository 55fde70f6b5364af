"""Colour from keyframes: a keyframe's chroma carried through its shot by dense flow on luma.

For a frame ``n`` the nearest keyframes of its scene, one before and one after (scene cuts as the filter finds
them, :func:`vs_colorgan.temporal.mean_abs_l_difference` or ``_SceneChange*`` props), each give a chroma
estimate with a per-pixel confidence; the two are blended by confidence and distance, and the automatic
model's prediction takes over where confidence stays low. Everything runs on the render-size grid (the luma
the generator sees); the result is brought to the chroma grid by the same luma-guided upsampling as the
automatic path (:func:`vs_colorgan.upsample.fast_guided_upsample`).

Order independence. Frame ``n`` must not depend on what was rendered before it, and must not chain through
every frame between it and its key (a seek to frame 5000 would then cost 5000 flows). So the chroma travels
from key ``k`` through fixed *anchor* frames ``k + j*s`` (``s`` = :attr:`PropagationOptions.anchor_step`,
``j = 1, 2, ...`` away from the key, in each direction); anchor ``j`` is computed from anchor ``j - 1`` and,
where that chain lost track, straight from the key (:meth:`ReferencePropagator._next_anchor`), and cached. Frame ``n`` then takes one step from the last anchor before it (towards the key). Each anchor's
value is a pure function of (clip, references, options), so any order of requests, any number of threads and
any chunking give the same bytes.

One step, state at frame ``a`` -> frame ``b`` (:meth:`ReferencePropagator.step`):

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

Distance from the key enters twice: confidence decays as ``exp(-d / distance_frames)``, and two keys are
blended with linear-interpolation weights ``1 - d_i / (d_before + d_after)`` times their confidence.

Chroma is carried as Cb, Cr of the clip's matrix (the keyframe's own Cb/Cr are the user's, so a keyframe whose
reference is the true colour frame comes out as that frame, up to rounding).
"""
from __future__ import annotations

import logging
import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .. import color
from ..pipeline import lab_to_cbcr
from .references import Reference
from .scribble import FILL_SIZE, STROKE_ALPHA, fill_from_strokes
from ..temporal import PredictionCache, scene_cut
from ..upsample import fast_guided_upsample, limit_to_gamut

log = logging.getLogger("vs_colorgan")
ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)


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
    """What the propagation reads of a frame: Y' (h, w) float32 at render size, and ``L_norm`` on the work
    grid (the scene-cut measure the automatic path uses)."""

    y: np.ndarray
    l_work: torch.Tensor


@dataclass(frozen=True)
class State:
    """Chroma carried to a frame: Cb, Cr (h, w, 2) float32 on the render grid and confidence (h, w) in [0, 1]."""

    cbcr: np.ndarray
    conf: np.ndarray


@dataclass(frozen=True)
class RefResult:
    """A frame's chroma (1, 2, Hc, Wc) on the chroma grid, or None when no key reaches it (automatic colour),
    its mean confidence, and the keys used (palette: the reference used as a palette, or None)."""

    cbcr: torch.Tensor | None
    confidence: float
    keys: tuple[int, ...]
    palette: int | None = None


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


def _recursive_pass(x: np.ndarray, coef: np.ndarray) -> None:
    """One causal + one anti-causal first-order recursive pass along axis 0 of ``x`` (n, m, C), in place:
    ``J[i] = I[i] + a_i (J[i-1] - I[i])`` with per-sample feedback ``coef`` (n - 1, m, 1) (Gastal & Oliveira
    2011, eq. 21)."""
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


class ReferencePropagator:
    """The keyframe mode of one ``colorize`` call: validated references, the frame sources, and the caches.

    ``luma(i)`` returns frame i's :class:`FrameLuma`; ``cut_flag(i)`` says whether frame properties mark a cut
    between frames i - 1 and i (None: they say nothing, the luma measure decides).
    """

    def __init__(self, references: dict[int, Reference], *, luma: Callable[[int], FrameLuma],
                 cut_flag: Callable[[int], bool | None], size: tuple[int, int], matrix: tuple[float, float],
                 scene_threshold: float, upsample_radius: int, upsample_eps: float, cache_size: int,
                 saturation: float = 1.0, options: PropagationOptions | None = None) -> None:
        self.refs = references
        self.frames = sorted(references)
        self.width, self.height = size
        self.kr, self.kb = matrix
        self.scene_threshold = scene_threshold
        self.upsample_radius = 2 * upsample_radius  # the filter's radius is on the work grid, half this grid
        self.upsample_eps = upsample_eps
        self.saturation = saturation  # colorize's chroma gain: on the carried colour as on the automatic one
        self.options = options = options if options is not None else DEFAULT_OPTIONS
        self._luma_source = luma
        self._cut_flag = cut_flag
        self._lumas: PredictionCache[FrameLuma] = PredictionCache(cache_size + 2 * options.anchor_step)
        self._keys: PredictionCache[State] = PredictionCache(8)
        self._fills: PredictionCache[tuple[np.ndarray, np.ndarray]] = PredictionCache(8)
        self._anchors: PredictionCache[State] = PredictionCache(cache_size + 8)
        self._cuts: dict[int, bool] = {}  # one bool per frame: cheap to keep for the whole clip
        self.palette: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # key -> (mean, std) of its Cb, Cr
        self.colour_frames = list(self.frames)  # the keys that are not palettes (set by classify)

    # -- frames and scenes -----------------------------------------------------------------------------------
    def luma(self, i: int) -> FrameLuma:
        return self._lumas.get_or_compute(i, lambda: self._luma_source(i))

    def cut_before(self, i: int) -> bool:
        """Is there a scene cut between frames i - 1 and i? (The filter's rule: props first, else mean |dL*|.)"""
        cut = self._cuts.get(i)
        if cut is None:
            cut = scene_cut(self._cut_flag(i), lambda: (self.luma(i).l_work, self.luma(i - 1).l_work),
                            scene_threshold=self.scene_threshold)
            self._cuts[i] = cut
        return cut

    def scene_keys(self, n: int, frames: list[int]) -> tuple[int | None, int | None]:
        """The nearest of ``frames`` (sorted) at or before and at or after ``n`` with no scene cut in between."""
        i = bisect_right(frames, n)
        before = frames[i - 1] if i else None
        if before is not None and any(self.cut_before(m) for m in range(n, before, -1)):
            before = None
        j = bisect_left(frames, n)
        after = frames[j] if j < len(frames) else None
        if after is not None and any(self.cut_before(m) for m in range(n + 1, after + 1)):
            after = None
        return before, after

    # -- keyframes -------------------------------------------------------------------------------------------
    def classify(self) -> list[int]:
        """Find the references whose luma does not match their frame (a photo of the set, another take): they
        are used as palettes for their shot. Returns their frame numbers. Run once, before rendering."""
        for k in self.frames:
            ref = self.refs[k]
            if ref.partial:
                continue  # strokes: their luma is whatever the brush had, only their chroma counts
            rgb, _ = ref.load(self.width, self.height)
            y = self.luma(k).y
            small = resize_area(rgb, (y.shape[1], y.shape[0]))
            y_ref = color.rgb_to_ycbcr(to_tensor(small), self.kr, self.kb)[0][0, 0].numpy()
            corr = float(np.corrcoef(box3(y_ref).ravel(), box3(y).ravel())[0, 1])
            if not corr >= self.options.palette_correlation:  # NaN (a flat frame) counts as no match
                cbcr = rgb_to_cbcr(small, self.kr, self.kb).reshape(-1, 2)
                self.palette[k] = (cbcr.mean(axis=0), cbcr.std(axis=0))
        self.colour_frames = [k for k in self.frames if k not in self.palette]
        return sorted(self.palette)

    def _strokes(self, ref: Reference, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """A reference at ``size`` (w, h): its Cb, Cr (h, w, 2) and alpha (h, w); for a partial one the
        chroma is the alpha-weighted mean of the painted pixels (what lies under transparency is ignored)."""
        rgb, alpha = ref.load(self.width, self.height)
        if alpha is None:
            return rgb_to_cbcr(resize_area(rgb, size), self.kr, self.kb), np.ones(size[::-1], np.float32)
        a = resize_area(alpha, size)
        premultiplied = resize_area(rgb * alpha[..., None], size)
        rgb_small = premultiplied / np.maximum(a, 1e-6)[..., None]
        return rgb_to_cbcr(np.clip(rgb_small, 0.0, 1.0), self.kr, self.kb), a

    def _fill(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """A partial reference's chroma filled from its strokes (Levin et al. 2004) on a grid of short side
        :data:`~vs_colorgan.reference.scribble.FILL_SIZE`: (Cb, Cr (h, w, 2), Y' (h, w)) on that grid."""
        y_render = self.luma(k).y
        h, w = y_render.shape
        scale = min(1.0, FILL_SIZE / min(h, w))
        size = (max(2, round(w * scale)), max(2, round(h * scale)))
        y = resize_area(y_render, size)
        cbcr, a = self._strokes(self.refs[k], size)
        painted = a >= STROKE_ALPHA
        if not painted.any():  # strokes thinner than the grid: take the most covered pixels
            painted = a >= a.max() * 0.5
        return fill_from_strokes(y, cbcr, painted), y

    def key_chroma(self, k: int, guide: torch.Tensor) -> torch.Tensor:
        """Keyframe ``k``'s chroma (1, 2, h, w) at the size of ``guide`` (its Y' (1, 1, h, w)): the user's,
        painted pixels kept, the rest of a partial reference filled (and upsampled guided by the luma)."""
        size = (guide.shape[-1], guide.shape[-2])
        cbcr, a = self._strokes(self.refs[k], size)
        out = to_tensor(cbcr)
        if self.refs[k].partial:
            filled, y_fill = self._fills.get_or_compute(k, lambda: self._fill(k))
            up = fast_guided_upsample(to_tensor(filled), to_tensor(y_fill), guide, radius=1, eps=self.upsample_eps)
            alpha = to_tensor(a)
            out = alpha * out + (1.0 - alpha) * up
        return out

    def key_state(self, k: int) -> State:
        def compute() -> State:
            y = self.luma(k).y
            cbcr = to_hwc(self.key_chroma(k, to_tensor(y)))
            return State(cbcr, np.ones(y.shape, np.float32))

        return self._keys.get_or_compute(k, compute)

    # -- propagation -----------------------------------------------------------------------------------------
    def step(self, state: State, a: int, b: int) -> State:
        """Carry ``state`` from frame ``a`` to frame ``b`` (see the module docstring)."""
        o = self.options
        ya, yb = self.luma(a).y, self.luma(b).y
        h, w = yb.shape
        flow_ba = dis_flow(yb, ya)  # yb(x) ~ ya(x + flow_ba(x))
        flow_ab = dis_flow(ya, yb)
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        map_x, map_y = gx + flow_ba[..., 0], gy + flow_ba[..., 1]
        src = np.dstack([state.cbcr, state.conf, ya, flow_ab])
        warped = cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        cbcr, conf, ya_w, back = warped[..., :2], warped[..., 2], warped[..., 3], warped[..., 4:6]
        # forward-backward consistency, Sundaram et al. 2010 (section 4.1), soft
        fb = np.sum((flow_ba + back) ** 2, axis=2)
        scale = 0.01 * (np.sum(flow_ba ** 2, axis=2) + np.sum(back ** 2, axis=2)) + 0.5
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

    def anchor(self, k: int, direction: int, j: int) -> State:
        """The state at anchor frame ``k + direction * j * s``, through the anchors before it (cached)."""
        s = self.options.anchor_step
        start, state = 0, self.key_state(k)
        for i in range(j, 0, -1):  # restart from the last cached anchor, not from the key
            found = self._anchors.peek((k, direction, i))
            if found is not None:
                start, state = i, found
                break
        for i in range(start + 1, j + 1):
            prev = state
            state = self._anchors.get_or_compute((k, direction, i), lambda i=i, prev=prev: self._next_anchor(k, direction, i, prev))
        return state

    def _next_anchor(self, k: int, direction: int, i: int, prev: State) -> State:
        """Anchor ``i`` from anchor ``i - 1`` and, where that chain lost track (occlusions, things that moved
        away and back), straight from the key: per pixel the estimate with the higher confidence wins, weighted
        by confidence. A static camera thus keeps the key's colour behind every passer-by, and a moving one,
        where the direct flow fails (low confidence), keeps the chain's."""
        s = self.options.anchor_step
        chained = self.step(prev, k + direction * (i - 1) * s, k + direction * i * s)
        if i == 1:
            return chained
        direct = self.step(self.key_state(k), k, k + direction * i * s)
        c1, c2 = chained.conf, direct.conf
        w1, w2 = c1 * c1, c2 * c2  # squared: the more confident estimate dominates
        den = np.maximum(w1 + w2, 1e-12)
        cbcr = (w1[..., None] * chained.cbcr + w2[..., None] * direct.cbcr) / den[..., None]
        return State(cbcr.astype(np.float32), np.maximum(c1, c2))

    def from_key(self, k: int, n: int) -> State:
        """Key ``k``'s chroma carried to frame ``n``: its last anchor towards ``n``, then one step."""
        direction = 1 if n > k else -1
        j = abs(n - k) // self.options.anchor_step
        state = self.anchor(k, direction, j)
        a = k + direction * j * self.options.anchor_step
        return state if a == n else self.step(state, a, n)

    def propagate(self, n: int, keys: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Blend the estimates of ``keys`` (one or two) for frame ``n``: Cb, Cr (h, w, 2) and confidence (h, w)."""
        distances = [abs(n - k) for k in keys]
        total = sum(distances)
        num = den = conf_sum = None
        for k, d in zip(keys, distances, strict=True):
            state = self.from_key(k, n)
            c = state.conf * math.exp(-d / self.options.distance_frames)
            lin = 1.0 - d / total if len(keys) == 2 else 1.0  # linear interpolation between the two keys
            wgt = (c * lin + 1e-6 * lin)[..., None]
            num = wgt * state.cbcr if num is None else num + wgt * state.cbcr
            den = wgt if den is None else den + wgt
            conf_sum = wgt[..., 0] * c if conf_sum is None else conf_sum + wgt[..., 0] * c
        return num / den, conf_sum / den[..., 0]

    # -- one frame -------------------------------------------------------------------------------------------
    def chroma(self, n: int, guide: torch.Tensor, automatic: Callable[[], tuple[torch.Tensor, torch.Tensor]]
               ) -> RefResult:
        """Frame ``n``'s chroma on the grid of ``guide`` (its Y', (1, 1, Hc, Wc)), gamut-limited.

        ``automatic()`` returns the automatic path's (``L_norm``, ``ab_norm``) on the work grid; it is called
        only where a palette or low confidence needs it.
        """
        o = self.options
        if n in self.refs and n not in self.palette:  # the keyframe itself: the user's chroma
            return RefResult(limit_to_gamut(guide, self.gain(self.key_chroma(n, guide)), self.kr, self.kb), 1.0, (n,))
        # colour keys and palettes are looked up apart: a palette between two keys does not hide them
        colour = [k for k in dict.fromkeys(self.scene_keys(n, self.colour_frames)) if k is not None]
        palettes = [k for k in self.scene_keys(n, sorted(self.palette)) if k is not None]
        palette = min(palettes, key=lambda k: (abs(n - k), k)) if palettes else None
        if not colour and palette is None:
            return RefResult(None, 0.0, ())
        y = self.luma(n).y
        if colour:
            cbcr, conf = self.propagate(n, colour)
            cbcr = self.gain(cbcr)
        else:
            cbcr, conf = np.zeros((*y.shape, 2), np.float32), np.zeros(y.shape, np.float32)
        mix = np.clip(1.0 - conf / o.auto_below, 0.0, 1.0)
        if mix.max() > 0.0:
            cbcr_auto = self.automatic_cbcr(automatic, y.shape)
            if palette is not None:
                mean, std = self.palette[palette]
                cbcr_auto = transfer_statistics(cbcr_auto, self.gain(mean), self.gain(std))
            cbcr = (1.0 - mix[..., None]) * cbcr + mix[..., None] * cbcr_auto
        up = fast_guided_upsample(to_tensor(cbcr), to_tensor(y), guide, radius=self.upsample_radius,
                                  eps=self.upsample_eps)
        return RefResult(limit_to_gamut(guide, up, self.kr, self.kb), float(conf.mean()), tuple(colour), palette)

    def automatic_cbcr(self, automatic: Callable[[], tuple[torch.Tensor, torch.Tensor]],
                       shape: tuple[int, int]) -> np.ndarray:
        """The automatic path's prediction as Cb, Cr (h, w, 2) on the render grid."""
        l_work, ab = automatic()
        cbcr = lab_to_cbcr(l_work, ab, self.kr, self.kb, saturation=self.saturation)
        up = F.interpolate(cbcr.float().cpu(), size=shape, mode="bilinear", align_corners=False)
        return to_hwc(up)

    def gain(self, cbcr: ArrayOrTensor) -> ArrayOrTensor:
        """The saturation gain on chroma the user gave (a key's, carried or a palette's statistics): the
        automatic colour gets it in :func:`~vs_colorgan.pipeline.lab_to_cbcr` instead, once."""
        return cbcr if self.saturation == 1.0 else cbcr * self.saturation


def transfer_statistics(cbcr: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Give ``cbcr`` (h, w, 2) the per-channel mean and standard deviation of a palette image (the colour
    transfer of Reinhard et al. 2001, "Color Transfer between Images", eq. 10-11, here in Cb/Cr)."""
    flat = cbcr.reshape(-1, 2)
    own_mean, own_std = flat.mean(axis=0), flat.std(axis=0)
    return ((cbcr - own_mean) * (std / np.maximum(own_std, 1e-4)) + mean).astype(np.float32)
