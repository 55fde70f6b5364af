"""Temporal smoothing: a bounded cache of per-frame predictions, scene cuts, and the weighted combination.

Per-frame colourization flickers: the generator's answer for a static object changes a little with the
noise of each frame. Frame ``n``'s chroma is therefore the weighted mean of the predictions for frames
``max(scene_start, n - radius) ... n``, with per-pixel weights ``exp(-|box(L_k - L_n)| / sigma)`` (L* units,
on the work grid - half the render size, see :mod:`vs_colorgan.pipeline` - ``box`` a 3x3 mean): where the picture is unchanged the predictions are averaged, where
something moved or changed the weight falls towards zero and the pixel keeps frame ``n``'s own prediction.
This is the range kernel of a bilateral filter (Tomasi & Manduchi 1998) applied along time, on a causal
window; the difference is taken over a 3x3 patch, as non-local means does (Buades et al. 2005), so that
film grain (independent from frame to frame, averaged out by the patch) does not read as motion while
moving structure (coherent over the patch) still does.

Everything here depends only on the frames of the window, never on what was rendered before, so a frame's
output is the same whatever order frames are requested in (see docs/filter.md, "Determinism").
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

import numpy as np
import torch

from .color import L_SCALE
from .upsample import box_mean, box_mean_array, one_cpu_frame

V = TypeVar("V")


class Abandoned(Exception):
    """Raised by a computation that gives up rather than wait (a look-ahead job that would need a frame from
    VapourSynth): :meth:`PredictionCache.get_or_compute`'s waiters then compute the value themselves."""


class PredictionCache(Generic[V]):
    """Thread-safe LRU cache of at most ``capacity`` values, computing each missing key once.

    When two threads ask for the same missing key, one computes it and the other waits for that result
    (a sequential render with several VapourSynth threads therefore infers each frame once). A failed
    computation is not cached; every waiter gets its exception, except :class:`Abandoned`: then a waiter
    computes the value itself.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, not {capacity}")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._values: OrderedDict[Hashable, V] = OrderedDict()
        self._pending: dict[Hashable, Future[V]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def peek(self, key: Hashable) -> V | None:
        """The cached value of ``key``, or None; computes nothing and leaves the LRU order as it is (the
        keyframe mode restarts its anchor chain from the last anchor still cached)."""
        with self._lock:
            return self._values.get(key)

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        while True:
            with self._lock:
                if key in self._values:
                    self._values.move_to_end(key)
                    self.hits += 1
                    return self._values[key]
                future = self._pending.get(key)
                owner = future is None
                if owner:
                    future = self._pending[key] = Future()
                    self.misses += 1
            if owner:
                break
            try:
                return future.result()
            except Abandoned:
                continue  # its owner gave up: compute it here (or wait for whoever asks first now)
        try:
            value = compute()
        except BaseException as e:
            with self._lock:
                del self._pending[key]
            future.set_exception(e)
            raise
        with self._lock:
            self._values[key] = value
            while len(self._values) > self.capacity:
                self._values.popitem(last=False)
            del self._pending[key]
        future.set_result(value)
        return value


def mean_abs_l_difference(l_norm_a: torch.Tensor, l_norm_b: torch.Tensor) -> float:
    """Mean |L*_a - L*_b| over the frame, from two ``L_norm`` tensors (the scene-cut measure)."""
    return float((l_norm_a - l_norm_b).abs().mean()) * L_SCALE


def cut_flag(newer: Mapping[str, Any], older: Mapping[str, Any]) -> bool | None:
    """Whether the properties of two consecutive frames (``frame.props``) mark a scene cut between them
    (``_SceneChangePrev`` of the newer, ``_SceneChangeNext`` of the older), or None when they say nothing."""
    flags = []
    if "_SceneChangePrev" in newer:
        flags.append(bool(newer["_SceneChangePrev"]))
    if "_SceneChangeNext" in older:
        flags.append(bool(older["_SceneChangeNext"]))
    return any(flags) if flags else None


def scene_cut(flag: bool | None, lumas: Callable[[], tuple[torch.Tensor, torch.Tensor]], *,
              scene_threshold: float) -> bool:
    """The filter's one scene-cut rule, for the automatic path, the keyframe mode and ``colorgan-keyframes``:
    the frame properties' ``flag`` (:func:`cut_flag`) when they say something, else a mean absolute L*
    difference above ``scene_threshold`` between the ``L_norm`` of the newer and the older frame, which
    ``lumas()`` returns (called only then: reading a frame's luma may cost a VapourSynth request)."""
    if flag is not None:
        return flag
    return mean_abs_l_difference(*lumas()) > scene_threshold


def window_length(l_window: Sequence[torch.Tensor], cut_flags: Sequence[bool | None], *,
                  scene_threshold: float) -> int:
    """How many frames of the window (newest first) belong to the current frame's scene.

    ``l_window[k]`` is ``L_norm`` of frame ``n - k``. ``cut_flags[k]`` says whether there is a cut between
    frames ``n - k - 1`` and ``n - k`` according to frame properties (``_SceneChangePrev`` /
    ``_SceneChangeNext``), or ``None`` when the frames carry no such property; then the cut is detected
    here as a mean absolute L* difference above ``scene_threshold`` (:func:`scene_cut`). Returns a length in
    1 .. len(l_window).
    """
    for k in range(len(l_window) - 1):
        flag = cut_flags[k] if k < len(cut_flags) else None
        if scene_cut(flag, lambda k=k: (l_window[k], l_window[k + 1]), scene_threshold=scene_threshold):
            return k + 1
    return len(l_window)


def combine(ab_window: Sequence[torch.Tensor], l_window: Sequence[torch.Tensor], *, sigma: float) -> torch.Tensor:
    """Weighted mean of predictions ``ab_window[k]`` (frame ``n - k``, index 0 = frame ``n``).

    Weights are 1 for frame ``n`` and ``exp(-|box3(L*_k - L*_n)| / sigma)`` per pixel for the others
    (``sigma`` in L* units). Terms are added in window order, so the result is reproducible bit for bit.
    """
    if len(ab_window) == 1:
        return ab_window[0]
    if one_cpu_frame(*ab_window, *l_window):
        return torch.from_numpy(_combine_cpu([t[0].numpy() for t in ab_window], [t[0, 0].numpy() for t in l_window],
                                             sigma))[None]
    l_n = l_window[0]
    num = ab_window[0].clone()
    den = torch.ones_like(l_n)
    scale = L_SCALE / sigma
    for ab_k, l_k in zip(ab_window[1:], l_window[1:], strict=True):
        w = torch.exp(box_mean(l_k - l_n, 1).abs_().mul_(-scale))
        num.addcmul_(w, ab_k)
        den.add_(w)
    return num.div_(den)


def _combine_cpu(ab_window: Sequence[np.ndarray], l_window: Sequence[np.ndarray], sigma: float) -> np.ndarray:
    """:func:`combine` of one frame in numpy and OpenCV (ab (2, h, w), L (h, w)): the same terms in the same
    order; the box means of :func:`vs_colorgan.upsample.box_mean_array` (equal to ~1e-7). Why: a 4-frame window
    was ~40 small torch operations, 0.2-0.5 ms of dispatch per frame on the work grid."""
    l_n = l_window[0]
    num = ab_window[0].copy()
    den = np.ones_like(l_n)
    scale = np.float32(L_SCALE / sigma)
    for ab_k, l_k in zip(ab_window[1:], l_window[1:], strict=True):
        w = box_mean_array(l_k - l_n, 1)
        np.abs(w, out=w)
        w *= -scale
        np.exp(w, out=w)
        num += w * ab_k
        den += w
    num /= den
    return num
