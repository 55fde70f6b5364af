"""Colour from keyframes: a keyframe's chroma carried through its shot by dense flow on luma.

For a frame ``n`` the nearest keyframes of its scene, one before and one after (scene cuts as the filter finds
them, :func:`vs_colorgan.temporal.mean_abs_l_difference` or ``_SceneChange*`` props), each give a chroma
estimate with a per-pixel confidence; the two are blended by confidence and distance, and the automatic
model's prediction takes over where confidence stays low. Everything runs on the render-size grid (the luma
the generator sees); the result is brought to the chroma grid by the same luma-guided upsampling as the
automatic path (:meth:`vs_colorgan.pipeline.Colorizer.finish_cbcr`, by the caller).

Order independence. Frame ``n`` must not depend on what was rendered before it, and must not chain through
every frame between it and its key (a seek to frame 5000 would then cost 5000 flows). So the chroma travels
from key ``k`` through fixed *anchor* frames ``k + j*s`` (``s`` = :attr:`PropagationOptions.anchor_step`,
``j = 1, 2, ...`` away from the key, in each direction); anchor ``j`` is computed from anchor ``j - 1`` and,
where that chain lost track, straight from the key (:meth:`ReferencePropagator._next_anchor`), and cached. Frame ``n`` then takes one step from the last anchor before it (towards the key). Each anchor's
value is a pure function of (clip, references, options), so any order of requests, any number of threads and
any chunking give the same bytes.

One step, state at frame ``a`` -> frame ``b`` (:meth:`ReferencePropagator.step`): flow, warp, confidence and
hole fill, in :mod:`vs_colorgan.reference.flow`. The keys' own colour (strokes filled, palettes found) is
:mod:`vs_colorgan.reference.keys`.

Distance from the key enters twice: confidence decays as ``exp(-d / distance_frames)``, and two keys are
blended with linear-interpolation weights ``1 - d_i / (d_before + d_after)`` times their confidence.

Chroma is carried as Cb, Cr of the clip's matrix (the keyframe's own Cb/Cr are the user's, so a keyframe whose
reference is the true colour frame comes out as that frame, up to rounding).
"""
from __future__ import annotations

import logging
import math
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from ..pipeline import lab_to_cbcr
from ..temporal import Abandoned, PredictionCache, cut_flag, scene_cut
from ..upsample import limit_to_gamut
from .flow import DEFAULT_OPTIONS as _DEFAULT, FrameLuma, PropagationOptions, State, carry, to_hwc, to_tensor
from .keys import KeyColours
from .references import Reference

__all__ = ["ReferencePropagator", "RefResult", "FrameLuma", "PropagationOptions", "DEFAULT_OPTIONS",
           "transfer_statistics"]

log = logging.getLogger("vs_colorgan")
ArrayOrTensor = TypeVar("ArrayOrTensor", np.ndarray, torch.Tensor)
DEFAULT_OPTIONS = _DEFAULT  # what a ReferencePropagator without options uses (benchmarks/references.py tunes it)


class Carried(NamedTuple):
    """:meth:`ReferencePropagator.carried`'s result."""

    colour: tuple[int, ...]
    palette: int | None
    cbcr: np.ndarray | None
    conf: np.ndarray | None


@dataclass(frozen=True)
class RefResult:
    """A frame's chroma: ``cbcr`` (1, 2, Hc, Wc) on the chroma grid, gamut-limited (a keyframe: the user's own),
    or ``low``: Cb, Cr (1, 2, h, w) on the render grid and its luma Y' (1, 1, h, w), for the caller's guided
    upsampling (:meth:`vs_colorgan.pipeline.Colorizer.finish_cbcr`); both None when no key reaches it
    (automatic colour). Also its mean confidence, and the keys used (palette: the reference used as a
    palette, or None)."""

    cbcr: torch.Tensor | None
    confidence: float
    keys: tuple[int, ...]
    palette: int | None = None
    low: tuple[torch.Tensor, torch.Tensor] | None = None


class ReferencePropagator:
    """The keyframe mode of one ``colorize`` call: validated references, the frame sources, and the caches.

    ``luma(i)`` returns frame i's :class:`FrameLuma`; ``cut_flag(i)`` says whether frame properties mark a cut
    between frames i - 1 and i (None: they say nothing, the luma measure decides).
    """

    def __init__(self, references: dict[int, Reference], *, luma: Callable[[int], FrameLuma],
                 size: tuple[int, int], matrix: tuple[float, float],
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
        self._lumas: PredictionCache[FrameLuma] = PredictionCache(cache_size + 2 * options.anchor_step)
        self._anchors: PredictionCache[State] = PredictionCache(cache_size + 8)
        # the carried estimate of a frame (keys, palette, colour): computed ahead by prepare() on the
        # look-ahead thread in a sequential render, else by chroma()
        self._carried: PredictionCache[Carried] = PredictionCache(cache_size)
        self._no_wait = threading.local()  # set while prepare() runs: luma() never asks VapourSynth then
        self._cuts: dict[int, bool] = {}  # one bool per frame: cheap to keep for the whole clip
        self.keys = KeyColours(references, luma=self.luma, size=size, matrix=matrix, upsample_eps=upsample_eps,
                               options=options)

    # -- frames and scenes -----------------------------------------------------------------------------------

    def luma(self, i: int) -> FrameLuma:
        if getattr(self._no_wait, "active", False) and self._lumas.peek(i) is None:
            raise Abandoned  # prepare(): a frame not read yet would be a wait on VapourSynth (see prepare)
        return self._lumas.get_or_compute(i, lambda: self._luma_source(i))

    def add_luma(self, i: int, luma: FrameLuma) -> None:
        """Frame ``i``'s luma, read by the caller (the look-ahead, outside any cache: see :meth:`prepare`)."""
        self._lumas.get_or_compute(i, lambda: luma)

    def cut_before(self, i: int) -> bool:
        """Is there a scene cut between frames i - 1 and i? (The filter's rule: props first, else mean |dL*|.)"""
        cut = self._cuts.get(i)
        if cut is None:
            newer, older = self.luma(i), self.luma(i - 1)
            cut = scene_cut(cut_flag(newer.cut_props, older.cut_props), lambda: (newer.l_work, older.l_work),
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

    # -- keyframes -------------------------------------------------------------------------------------------
    def classify(self) -> list[int]:
        """The references used as palettes (:meth:`KeyColours.classify`); run once, before rendering."""
        return self.keys.classify()

    @property
    def palette(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        return self.keys.palette

    # -- propagation -----------------------------------------------------------------------------------------
    def step(self, state: State, a: int, b: int) -> State:
        """Carry ``state`` from frame ``a`` to frame ``b`` (:func:`vs_colorgan.reference.flow.carry`)."""
        return carry(state, self.luma(a).y, self.luma(b).y, self.options)

    def anchor(self, k: int, direction: int, j: int) -> State:
        """The state at anchor frame ``k + direction * j * s``, through the anchors before it (cached)."""
        start, state = 0, self.keys.key_state(k)
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
        direct = self.step(self.keys.key_state(k), k, k + direction * i * s)
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
    def carried(self, n: int) -> Carried:
        """Frame ``n``'s keys and what they carry to it, before the automatic colour is mixed in: the colour
        keys of its scene, its palette, and the keys' Cb, Cr (h, w, 2, saturation gain applied) and
        confidence (h, w) on the render grid (zeros without colour keys)."""
        # colour keys and palettes are looked up apart: a palette between two keys does not hide them
        colour = tuple(k for k in dict.fromkeys(self.scene_keys(n, self.keys.colour_frames)) if k is not None)
        palettes = [k for k in self.scene_keys(n, sorted(self.palette)) if k is not None]
        palette = min(palettes, key=lambda k: (abs(n - k), k)) if palettes else None
        if not colour and palette is None:
            return Carried((), None, None, None)
        y = self.luma(n).y
        if colour:
            cbcr, conf = self.propagate(n, list(colour))
            return Carried(colour, palette, self.gain(cbcr), conf)
        return Carried(colour, palette, np.zeros((*y.shape, 2), np.float32), np.zeros(y.shape, np.float32))

    def prepare(self, n: int, luma: FrameLuma) -> bool:
        """Compute frame ``n``'s carried estimate ahead (the look-ahead thread, while the callback of ``n - 1``
        runs), given its luma as read outside every cache; False where that would need a frame not read yet.

        Why it cannot deadlock: a callback may wait here on a cache entry this computes, so it must never wait
        on VapourSynth (whose threads may all be in callbacks). :meth:`luma` raises :class:`Abandoned` instead
        of reading a frame, and the entries this owned are handed to their waiters to compute
        (:class:`~vs_colorgan.temporal.PredictionCache`). In a sequential render everything else it needs
        (the frame before, the anchors, the key) is cached already.
        """
        if n in self.refs and n not in self.palette:
            return False  # a keyframe: its own chroma needs the full-size guide, and is cheap
        self.add_luma(n, luma)
        self._no_wait.active = True
        try:
            self._carried.get_or_compute(n, lambda: self.carried(n))
            return True
        except Abandoned:
            return False
        finally:
            self._no_wait.active = False

    def chroma(self, n: int, guide: Callable[[], torch.Tensor],
               automatic: Callable[[], tuple[torch.Tensor, torch.Tensor]]) -> RefResult:
        """Frame ``n``'s chroma (see :class:`RefResult`). ``guide()`` returns the frame's Y' on the chroma grid
        (1, 1, Hc, Wc), called only for a keyframe; ``automatic()`` the automatic path's (``L_norm``,
        ``ab_norm``) on the work grid, called only where a palette or low confidence needs it.
        """
        o = self.options
        if n in self.refs and n not in self.palette:  # the keyframe itself: the user's chroma
            g = guide()
            return RefResult(limit_to_gamut(g, self.gain(self.keys.key_chroma(n, g)), self.kr, self.kb), 1.0, (n,))
        colour, palette, cbcr, conf = self._carried.get_or_compute(n, lambda: self.carried(n))
        if not colour and palette is None:
            return RefResult(None, 0.0, ())
        y = self.luma(n).y
        mix = np.clip(1.0 - conf / o.auto_below, 0.0, 1.0)
        if mix.max() > 0.0:
            cbcr_auto = self.automatic_cbcr(automatic, y.shape)
            if palette is not None:
                mean, std = self.palette[palette]
                cbcr_auto = transfer_statistics(cbcr_auto, self.gain(mean), self.gain(std))
            cbcr = (1.0 - mix[..., None]) * cbcr + mix[..., None] * cbcr_auto
        return RefResult(None, float(conf.mean()), colour, palette, low=(to_tensor(cbcr), to_tensor(y)))

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
