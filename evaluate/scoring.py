"""Streaming scores of one colourized sequence against the ground truth.

Frames arrive one at a time (memory stays flat over long clips): per-frame PSNR, SSIM,
colourfulness and chroma change are kept as series, the warp error is accumulated pair by pair
with the flow of the gray input, and only the small per-frame histograms are kept for CDC.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import metrics

METRIC_KEYS = ("psnr", "ssim", "ciede2000", "false_colour", "colorfulness", "colorfulness_ratio", "cdc", "warp_error",
               "chroma_change")


def finite_or_none(x: float | None) -> float | None:
    """JSON has no infinity or NaN: those become ``None`` (null)."""
    return None if x is None or not math.isfinite(x) else float(x)


@dataclass
class SequenceScorer:
    """Scores of one variant (ours, per-frame, gray, reference) fed frame by frame.

    ``is_reference=True`` marks the ground truth scored against itself: PSNR is then reported as
    null (infinite) and SSIM as 1 (exact), neither computed.
    """

    is_reference: bool = False
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    ciede2000: list[float] = field(default_factory=list)
    false_colour: list[float] = field(default_factory=list)  # per frame; frames without neutral pixels skipped
    colorfulness: list[float] = field(default_factory=list)
    chroma_change: list[float] = field(default_factory=list)
    warp_error: list[float] = field(default_factory=list)
    _hists: list[np.ndarray] = field(default_factory=list)
    _prev: np.ndarray | None = None
    _prev_ab: np.ndarray | None = None

    def add(self, rgb: np.ndarray, truth: np.ndarray, pair: metrics.FlowPair | None) -> None:
        """Frame t (RGB uint8), the ground truth frame t, and the gray input's flow t-1 -> t (None at t = 0)."""
        if not self.is_reference:
            self.psnr.append(metrics.psnr(rgb, truth))
            self.ssim.append(metrics.ssim(rgb, truth))
            truth_lab = metrics.lab_float(truth)
            self.ciede2000.append(metrics.ciede2000(rgb, truth, truth_lab=truth_lab))
            fc = metrics.false_colour_rate(rgb, truth, truth_lab=truth_lab)
            if fc is not None:
                self.false_colour.append(fc)
        self.colorfulness.append(metrics.colorfulness(rgb))
        self._hists.append(metrics.channel_histograms(rgb))
        ab = metrics.lab_ab(rgb)
        if self._prev is not None:
            if pair is None:
                raise ValueError("evaluate.scoring.SequenceScorer.add: the flow pair is needed after the first frame")
            self.chroma_change.append(metrics.chroma_change_ab(self._prev_ab, ab))
            self.warp_error.append(metrics.warp_error_pair(self._prev, rgb, pair))
        self._prev, self._prev_ab = rgb, ab

    @property
    def frames(self) -> int:
        return len(self.colorfulness)

    def summary(self, reference_colorfulness: float | None) -> dict[str, float | None]:
        """Means over the sequence, keyed by :data:`METRIC_KEYS` (null where a metric does not apply)."""
        cf = float(np.mean(self.colorfulness)) if self.colorfulness else None
        ratio = None
        if cf is not None and reference_colorfulness:
            ratio = cf / reference_colorfulness
        return {
            # TCVC/BasicSR convention: the mean of per-frame PSNRs.
            "psnr": None if self.is_reference else finite_or_none(float(np.mean(self.psnr))),
            "ssim": 1.0 if self.is_reference else float(np.mean(self.ssim)),
            "ciede2000": 0.0 if self.is_reference else float(np.mean(self.ciede2000)),
            "false_colour": 0.0 if self.is_reference or not self.false_colour else float(np.mean(self.false_colour)),
            "colorfulness": cf,
            "colorfulness_ratio": ratio,
            "cdc": metrics.cdc_from_histograms(np.stack(self._hists)) if self._hists else None,
            "warp_error": float(np.mean(self.warp_error)) if self.warp_error else None,
            "chroma_change": float(np.mean(self.chroma_change)) if self.chroma_change else None,
        }
