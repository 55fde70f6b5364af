"""The painted keyframes ``colorgan-adapt`` learns from, read exactly as ``colorize(references=...)`` reads them.

This module is the one place where the adaptation imports the filter's keyframe code (reference loading,
stroke fill, colour conversion of a key); everything else in the adaptation imports from here. So when those
modules move, only the imports below change.

A key becomes a training pair on the filter's own render grid (the luma the generator sees, here at
``scale`` times the model's render size so that scale jitter can shrink it without upsampling):

* input: ``L_norm`` of the video's frame (Y' read as an sRGB gray level, :func:`vs_colorgan.pipeline.render_luma`);
* target: the key's chroma exactly as the filter shows it on that frame
  (:meth:`vs_colorgan.reference.keys.KeyColours.key_chroma`: the user's Cb/Cr on the frame's own luma, a
  partial reference filled from its strokes, Levin et al. 2004), converted to ``ab_norm`` through the frame's
  Y' and the clip's matrix;
* weight: 1 for a complete reference; for a partial one (PNG with alpha) its alpha, so a key painted only in
  places teaches only where it was painted (``fill_weight`` > 0 lets the stroke fill teach too, less).

References whose luma does not match their frame (a set photo, another print) are palettes for the filter
(:meth:`~vs_colorgan.reference.keys.KeyColours.classify`); they have no pixel correspondence with the
frame, so they are skipped here and reported.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import vapoursynth as vs

from vs_colorgan import color
from vs_colorgan.errors import ColorizeError
from vs_colorgan.filter import build, check_clip  # noqa: F401  (check_clip re-exported for adapt.py)
from vs_colorgan.pipeline import Colorizer, render_luma, render_shape
from vs_colorgan.reference.flow import resize_area, to_tensor
from vs_colorgan.reference.references import Reference, load_references


@dataclass(frozen=True)
class KeyFrame:
    """One painted frame on the (scaled) render grid: ``l_norm`` (1, h, w), ``ab`` target (2, h, w) in ab_norm,
    ``weight`` (1, h, w) in [0, 1]."""

    frame: int
    l_norm: torch.Tensor
    ab: torch.Tensor
    weight: torch.Tensor
    partial: bool


def read_references(references: object, clip: vs.VideoNode) -> dict[int, Reference]:
    """Validate ``references`` against ``clip`` as ``colorize`` does (raises ColorizeError naming frame and file)."""
    return load_references(references, num_frames=clip.num_frames, width=clip.width, height=clip.height)


def prepared_size(clip: vs.VideoNode, render_size: int, multiple: int, scale: float) -> int:
    """The short side keys are prepared at: ``scale`` x the render size, a multiple of the model's multiple,
    never more than the clip's own short side (rounded up to the multiple)."""
    short = min(clip.width, clip.height)
    want = round(render_size * scale / multiple) * multiple
    cap = -(-short // multiple) * multiple
    return max(multiple, min(want, max(render_size, cap)))


def load_keys(clip: vs.VideoNode, refs: dict[int, Reference], colorizer: Colorizer, *, short_side: int,
              fill_weight: float = 0.0) -> tuple[list[KeyFrame], list[int]]:
    """The training pairs of ``refs`` on ``clip`` at ``short_side``; returns (keys, frames skipped as palettes)."""
    _, processor = build(clip, colorizer, render_size=short_side, references=refs)
    prop = processor.references
    palettes = sorted(prop.palette)
    keys = []
    for k in prop.keys.colour_frames:
        y = prop.luma(k).y  # (h, w) Y' in [0, 1] on the grid the filter renders at
        guide = to_tensor(y)
        cbcr = prop.keys.key_chroma(k, guide)  # (1, 2, h, w), the filter's keyframe chroma
        rgb = color.ycbcr_to_rgb(guide, cbcr[:, :1], cbcr[:, 1:], prop.kr, prop.kb).clamp(0.0, 1.0)
        ab = color.normalize_ab(color.rgb_to_lab(rgb)[:, 1:])
        l_norm = render_luma(guide).l_norm
        _, alpha = refs[k].load(clip.width, clip.height)
        if alpha is None:
            weight = np.ones(y.shape, np.float32)
        else:
            a = np.clip(resize_area(alpha, (y.shape[1], y.shape[0])), 0.0, 1.0)
            weight = a + (1.0 - a) * fill_weight
        keys.append(KeyFrame(k, l_norm[0], ab[0], torch.from_numpy(weight)[None], alpha is not None))
    return keys, palettes


__all__ = ["ColorizeError", "KeyFrame", "check_clip", "load_keys", "prepared_size", "read_references",
           "render_shape"]
