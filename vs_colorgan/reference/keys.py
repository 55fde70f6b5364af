"""The keyframes' own colour: each reference's chroma at any size (strokes filled along the luma, Levin et al.
2004), the state a propagation starts from, and which references are palettes (a photo of the set, another
print: their luma does not match their frame, so only their colour statistics are used).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .. import color
from ..temporal import PredictionCache
from ..upsample import fast_guided_upsample
from .flow import FrameLuma, PropagationOptions, State, box3, resize_area, rgb_to_cbcr, to_hwc, to_tensor
from .references import Reference
from .scribble import FILL_SIZE, STROKE_ALPHA, fill_from_strokes


class KeyColours:
    """The references of one ``colorize`` call at the clip's size, in Cb/Cr of its matrix (Kr, Kb).

    ``luma(i)`` returns frame i's :class:`FrameLuma` (render size)."""

    def __init__(self, references: dict[int, Reference], *, luma: Callable[[int], FrameLuma],
                 size: tuple[int, int], matrix: tuple[float, float], upsample_eps: float,
                 options: PropagationOptions) -> None:
        self.refs = references
        self.frames = sorted(references)
        self.luma = luma
        self.width, self.height = size
        self.kr, self.kb = matrix
        self.upsample_eps = upsample_eps
        self.options = options
        self._keys: PredictionCache[State] = PredictionCache(8)
        self._fills: PredictionCache[tuple[np.ndarray, np.ndarray]] = PredictionCache(8)
        self.palette: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # key -> (mean, std) of its Cb, Cr
        self.colour_frames = list(self.frames)  # the keys that are not palettes (set by classify)

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
