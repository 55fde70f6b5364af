"""Synthetic smooth and flat frames: where a weak colourization model paints rainbows (issue 17).

Plain walls, skies and out-of-focus backgrounds carry no texture for a network to recognise, so whatever
it paints there comes from its priors; a network that knows where the frame's border is (zero padding)
paints by position. These frames make that visible: ramps in all four directions, flat gray with film
grain, mid-gray noise, a bright blur on dark, a bright sky over dark ground. Used by
``tests/test_flat_frames.py`` (with :func:`vs_colorgan.evaluate.metrics.rainbow_share`),
``benchmarks/flat_frames.py`` (a contact sheet) and ``colorgan-calibrate`` (its choice, through the filter).
"""
from __future__ import annotations

import numpy as np


def flat_frames(width: int = 854, height: int = 480, seed: int = 0) -> dict[str, np.ndarray]:
    """``name -> (height, width) uint8 luma`` of every synthetic frame."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 1.0, width)[None, :].repeat(height, 0)
    y = np.linspace(0.0, 1.0, height)[:, None].repeat(width, 1)
    yy, xx = np.mgrid[0:height, 0:width]

    def ramp(t: np.ndarray) -> np.ndarray:
        return 60 + 140 * t  # the 60 -> 200

    def grain(sigma: float) -> np.ndarray:
        return rng.normal(0.0, sigma, (height, width))

    blob = np.exp(-(((xx - 0.4 * width) / (0.18 * width)) ** 2 + ((yy - 0.45 * height) / (0.25 * height)) ** 2))
    sky = np.where(y < 0.45, 190 + 25 * (0.45 - y), 55 + 20 * (y - 0.45)) + grain(2.0)
    frames = {
        "ramp left-right": ramp(x),
        "ramp right-left": ramp(1 - x),
        "ramp top-bottom": ramp(y),
        "ramp bottom-top": ramp(1 - y),
        "flat gray with grain": 128 + grain(4.0),
        "mid-gray noise": 128 + grain(30.0),
        "bright blur on dark": 25 + 200 * blob,
        "bright sky over dark ground": sky,
    }
    return {k: np.clip(np.rint(v), 0, 255).astype(np.uint8) for k, v in frames.items()}


def luma_clip(luma: np.ndarray) -> "vs.VideoNode":
    """A one-frame GRAY8 clip of an (h, w) uint8 luma: a black-and-white frame as the filter receives it."""
    import vapoursynth as vs

    core = vs.core
    h, w = luma.shape
    blank = core.std.BlankClip(format=vs.GRAY8, width=w, height=h, length=1)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        np.copyto(np.asarray(out[0]), luma)
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def colorize_frame(luma: np.ndarray, **colorize_options) -> np.ndarray:
    """(h, w, 3) uint8 RGB of one luma frame coloured by ``vs_colorgan.colorize`` (``colorize_options``
    passed on; none given: the filter's defaults and the bundled model)."""
    import vapoursynth as vs

    import vs_colorgan

    out = vs_colorgan.colorize(luma_clip(luma), **colorize_options)
    f = vs.core.resize.Bicubic(out, format=vs.RGB24).get_frame(0)
    return np.dstack([np.asarray(f[p]) for p in range(3)])


def filter_rainbow(model: str, frames: dict[str, np.ndarray] | None = None) -> dict[str, float]:
    """``name -> rainbow share`` (:func:`vs_colorgan.evaluate.metrics.rainbow_share`) of each frame (default:
    :func:`flat_frames`) coloured through the filter by ``model`` (a generator file, its own calibration and
    render size): issue 17's rule on what a user sees, for ``colorgan-calibrate``'s check of its choice."""
    from .metrics import rainbow_share

    frames = flat_frames() if frames is None else frames
    return {name: rainbow_share(colorize_frame(luma, model=model)) for name, luma in frames.items()}
