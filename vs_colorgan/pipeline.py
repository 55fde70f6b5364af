"""The colour path as plain functions on arrays, free of VapourSynth: the four stages the filter runs per frame.

1. :meth:`Colorizer.preprocess` - render-size luma (Y' in [0, 1]) -> :class:`RenderLuma` (``L_norm`` for
   the network, and Y', L at the half-size *work grid*); :meth:`Colorizer.luma_guide` - a frame's luma
   plane -> Y' on the chroma grid (the upsampling guide).
2. :meth:`Colorizer.predict` - ``L_norm`` -> generator (:meth:`Colorizer.infer`, see
   :mod:`vs_colorgan.backends`) -> ``ab_norm`` shrunk to the work grid (:meth:`Colorizer.shrink`).
3. :meth:`Colorizer.window_length` + :meth:`Colorizer.combine` - scene cuts and temporal smoothing.
4. :meth:`Colorizer.postprocess` - (L, ab) -> sRGB -> Cb, Cr of the output matrix -> guided upsampling
   -> gamut limit (chroma shrunk where Y' + chroma would decode outside R'G'B' [0, 1]) -> quantised
   planes in the output sample type.

The work grid is half the render size. The generator's chroma is smooth, and its detail comes back from
the full-size luma in the guided upsampling anyway, so stages 3 and 4 run on a quarter of the pixels:
the subsampling step of the Fast Guided Filter (He & Sun 2015, arXiv:1505.00996, Algorithm 2, s = 2).

Tensors are (N=1, C, H, W) float32 on :attr:`Colorizer.device` (the backend's device), so on CUDA the
glue runs on the GPU too. On the CPU the full-size steps run in numpy and OpenCV, and every stage method but
inference runs torch on the calling thread alone (:mod:`vs_colorgan.threads`: the glue's operations are too
small to gain from a second thread, and lost a time slice waiting for one while inference held the core). Example, one frame without VapourSynth::

    c = Colorizer.load("generator.safetensors", device="cpu")
    r = c.preprocess(y_small)                      # (h, w) float32 Y' in [0, 1] at render size
    ab = c.predict(r)                              # stage 2: infer + shrink
    guide = c.luma_guide(y_plane, bits=8, full_range=False)
    cb, cr = c.postprocess(r, ab, guide, matrix=1, bits=8, full_range=False)   # uint8 planes
    # what the filter calls: stage 4 from the luma plane as stored, fused on the CPU (vs_colorgan.chroma_kernel)
    cb, cr = c.finish(r, ab, y_plane, matrix=1, bits=8, full_range=False, subsampling_w=1, subsampling_h=1)
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import color
from .backends import Runner, choose_backend, load_runner
from .color import MATRIX_COEFFICIENTS
from .errors import ColorizeError
from .model_io import MAX_RENDER_SIZE, MIN_RENDER_SIZE
from . import chroma_kernel
from .formats import code_to_unit, plane_to_tensor, quantize_chroma
from .scratch import Scratch
from .temporal import combine, window_length
from .threads import glue_threads, inference_threads, single_threaded
from .upsample import (fast_guided_upsample, guided_coefficients, integer_luma_to_chroma_grid, limit_to_gamut,
                       luma_to_chroma_grid, one_cpu_frame)



# The render grid's long side at most: a 1:16 panorama at render size 256 is 256x4096; beyond that the short
# side shrinks instead, so an extreme aspect ratio (a 10000x16 strip) cannot ask for a gigapixel grid.
MAX_RENDER_LONG_SIDE = 2 * MAX_RENDER_SIZE


def render_shape(width: int, height: int, render_size: int, multiple: int) -> tuple[int, int]:
    """(width, height) at render size: the short side is ``render_size``, the long side keeps the aspect
    ratio, rounded to the nearest multiple of ``multiple`` (at least one multiple). When that long side would
    pass :data:`MAX_RENDER_LONG_SIDE`, it is that bound and the short side keeps the aspect ratio instead."""
    short_in, long_in = min(width, height), max(width, height)
    short = render_size
    long = max(multiple, round(long_in * render_size / short_in / multiple) * multiple)
    cap = MAX_RENDER_LONG_SIDE // multiple * multiple
    if long > cap:
        short = max(multiple, round(short_in * cap / long_in / multiple) * multiple)
        long = cap
    return (short, long) if width <= height else (long, short)


_SCRATCH = Scratch()  # stage 4's full-size planes, per thread (vs_colorgan.scratch)
WORK_SHRINK = 2  # the work grid of stages 3 and 4 is the render size / 2


@dataclass(frozen=True)
class RenderLuma:
    """One frame's luma: ``l_norm`` (1, 1, h, w) at render size, the network input; ``l_work`` and ``y_work``
    (1, 1, h/2, w/2): L_norm and Y' in [0, 1] on the work grid (temporal weights, colour conversion, guide)."""

    l_norm: torch.Tensor
    l_work: torch.Tensor
    y_work: torch.Tensor


def shrink(x: torch.Tensor) -> torch.Tensor:
    """Render size -> work grid: the mean of each 2x2 block."""
    return F.avg_pool2d(x, WORK_SHRINK)


def render_luma(y: torch.Tensor | np.ndarray) -> RenderLuma:
    """Y' (1, 1, h, w) at render size (or an (h, w) float32 array) -> :class:`RenderLuma` (stage 1; also the
    scene-cut measure's input, shared with ``colorgan-keyframes``)."""
    if isinstance(y, np.ndarray) or (y.device.type == "cpu" and not y.requires_grad and not torch.jit.is_tracing()):
        return _render_luma_cpu(y if isinstance(y, np.ndarray) else y.reshape(y.shape[-2:]).numpy())
    # float sources may hold NaN/inf samples (the resize spreads them to their neighbours): the network and
    # the box filters downstream would carry one over the whole frame, so read them as black / white
    y = torch.nan_to_num(y, nan=0.0, posinf=1.0, neginf=0.0)
    l_norm = color.normalize_l(color.gray_to_l(y))
    return RenderLuma(l_norm, shrink(l_norm), shrink(y))


def _render_luma_cpu(y: np.ndarray) -> RenderLuma:
    """:func:`render_luma` on the CPU in numpy (see :func:`vs_colorgan.color.gray_to_l_array` for why): the same
    steps; the 2x2 means add in avg_pool2d's order (the same bits)."""
    y = np.nan_to_num(np.asarray(y, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)  # a copy: frames are read-only
    l_norm = color.gray_to_l_array(y)
    l_norm /= np.float32(color.L_SCALE)
    l_norm -= np.float32(1.0)
    return RenderLuma(*(torch.from_numpy(a)[None, None] for a in (l_norm, _shrink_array(l_norm), _shrink_array(y))))


def _shrink_array(x: np.ndarray) -> np.ndarray:
    """:func:`shrink` of an (h, w) array: (a00 + a01 + a10 + a11) / 4, avg_pool2d's order, odd edges dropped."""
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    top, bottom = x[0:h:2], x[1:h:2]
    s = top[:, 0:w:2] + top[:, 1:w:2]
    s += bottom[:, 0:w:2]
    s += bottom[:, 1:w:2]
    s /= np.float32(4.0)
    return s


def lab_to_cbcr(l_norm: torch.Tensor, ab_norm: torch.Tensor, kr: float, kb: float, *,
                saturation: float = 1.0) -> torch.Tensor:
    """The model's colour (``L_norm``, ``ab_norm``) -> Cb, Cr (1, 2, h, w) in [-0.5, 0.5] of the matrix (Kr, Kb),
    with the ``saturation`` gain on ab: the one conversion of the automatic path and of the keyframe mode's
    automatic fallback, so that the gain reaches both."""
    if saturation == 0.0:  # exactly neutral: Lab -> RGB -> YCbCr of a=b=0 leaves ~1e-8 of rounding in Cb/Cr
        return torch.zeros((1, 2, *l_norm.shape[-2:]), dtype=l_norm.dtype, device=l_norm.device)
    if saturation != 1.0:
        ab_norm = ab_norm * saturation
    if one_cpu_frame(l_norm, ab_norm):
        return torch.from_numpy(color.lab_to_cbcr_array(l_norm[0, 0].numpy(), ab_norm[0].numpy(), kr, kb))[None]
    rgb = color.merge_lab(l_norm, ab_norm)  # sRGB in [0, 1]
    _, cb, cr = color.rgb_to_ycbcr(rgb, kr, kb)  # the new Y' is dropped: the source's luma is kept
    return torch.cat([cb, cr], dim=1)


@dataclass(frozen=True, kw_only=True)
class ColorOptions:
    """The non-backend options of the colour path (see docs/filter.md for the choice of defaults)."""

    temporal_radius: int = 3  # frames before n whose predictions are blended in (0 = per-frame colour)
    temporal_sigma: float = 3.0  # L* difference at which a neighbour's weight falls to 1/e
    scene_threshold: float = 10.0  # mean |delta L*| between consecutive frames above which there is a cut
    upsample_radius: int = 1  # guided-filter window radius, on the work grid (half the render size)
    upsample_eps: float = 1e-3  # guided-filter regulariser, (Y' units)^2
    saturation: float = 1.0  # chroma gain applied after the temporal blend (0 = exactly neutral chroma)


class Colorizer:
    """A loaded generator plus the options of the colour path; each stage is a method that can be timed alone."""

    def __init__(self, runner: Runner, options: ColorOptions = ColorOptions()) -> None:
        cfg = runner.config
        if (cfg.l_scale, cfg.ab_scale) != (color.L_SCALE, color.AB_SCALE):
            raise ColorizeError(f"\"model\" normalises L by {cfg.l_scale} and ab by {cfg.ab_scale}; this version of "
                                f"vs_colorgan runs models with {color.L_SCALE} and {color.AB_SCALE} only")
        self.runner = runner
        self.options = options
        self.config = runner.config
        self.device = runner.device

    @classmethod
    def load(cls, model: str | os.PathLike | None = None, *, backend: str = "auto", device: str = "auto",
             fp16: bool = False, num_streams: int = 1, tensorrt: bool = False,
             options: ColorOptions = ColorOptions()) -> Colorizer:
        """Pick a backend like ``colorize`` does and load the model (raises ColorizeError / ModelFileError)."""
        settings, path = choose_backend(model=model, backend=backend, device=device, fp16=fp16,
                                        num_streams=num_streams, tensorrt=tensorrt)
        return cls(load_runner(settings, path), options)

    # -- stage 1: arrays in, pre-processing -------------------------------------------------------------
    @single_threaded  # the glue's small operations: see vs_colorgan.threads
    def preprocess(self, luma_render: np.ndarray | torch.Tensor) -> RenderLuma:
        """Render-size luma (h, w), Y' in [0, 1] (a GRAYS plane) -> Y' and ``L_norm`` (1, 1, h, w).

        The gamma-encoded luma is read as the gray level of an sRGB image (what the network was trained on).
        """
        if isinstance(luma_render, np.ndarray):
            if self.device.type == "cpu":
                return render_luma(luma_render)  # numpy all the way (it copies: frames are read-only)
            y = torch.from_numpy(np.array(luma_render, dtype=np.float32, copy=True))
        else:
            y = luma_render.float()
        return render_luma(y.to(self.device).reshape(1, 1, *y.shape[-2:]))

    @single_threaded  # the glue's small operations: see vs_colorgan.threads
    def luma_guide(self, luma_plane: np.ndarray | torch.Tensor, *, bits: int, full_range: bool,
                   is_float: bool = False, subsampling_w: int = 0, subsampling_h: int = 0,
                   chroma_location: int = 0) -> torch.Tensor:
        """A frame's full-resolution luma plane (H, W) as stored -> Y' on the chroma grid (1, 1, Hc, Wc)."""
        # the reduction is linear and normalised: run it on the raw samples, scale the smaller result; integer
        # planes summed as stored where that form applies (the same values, one read of the plane)
        y = None
        if isinstance(luma_plane, np.ndarray) and not is_float:
            y = integer_luma_to_chroma_grid(luma_plane, subsampling_w=subsampling_w, subsampling_h=subsampling_h,
                                            chroma_location=chroma_location)
        if y is None:
            y = luma_to_chroma_grid(plane_to_tensor(luma_plane), subsampling_w=subsampling_w,
                                    subsampling_h=subsampling_h, chroma_location=chroma_location)
        # a plane summed here is this call's own: scaled in place (a fresh full-size result costs page faults)
        y = code_to_unit(y.to(self.device), bits=bits, full_range=full_range, is_float=is_float,
                         in_place=not is_float and isinstance(luma_plane, np.ndarray))
        # non-finite float samples: see preprocess (integer planes cannot hold them: no cost there)
        return torch.nan_to_num(y, nan=0.0, posinf=1.0, neginf=0.0) if is_float else y

    # -- stage 2: inference -------------------------------------------------------------------------------
    def infer(self, l_norm: torch.Tensor) -> torch.Tensor:
        """``L_norm`` (1, 1, h, w) -> ``ab_norm`` (1, 2, h, w); h and w multiples of ``config.size_multiple``."""
        with inference_threads():  # the backend's own threads, also when called from inside a glue block
            return self.runner.infer(l_norm)

    def predict(self, render: RenderLuma) -> torch.Tensor:
        """The generator's ``ab_norm`` for this frame on the work grid (what the filter caches per frame)."""
        ab = self.infer(render.l_norm)  # the backend's own threads
        with glue_threads():
            return shrink(ab)

    shrink = staticmethod(shrink)

    # -- stage 3: temporal combination -------------------------------------------------------------------
    @single_threaded  # the glue's small operations: see vs_colorgan.threads
    def window_length(self, window: Sequence[RenderLuma], cut_flags: Sequence[bool | None] = ()) -> int:
        """Frames of the window (newest first) in the current scene; see :func:`vs_colorgan.temporal.window_length`."""
        return window_length([r.l_work for r in window], cut_flags, scene_threshold=self.options.scene_threshold)

    @single_threaded  # the glue's small operations: see vs_colorgan.threads
    def combine(self, ab_window: Sequence[torch.Tensor], window: Sequence[RenderLuma]) -> torch.Tensor:
        """Blend the predictions of the window (index 0 = current frame) by luma similarity."""
        l_window = [r.l_work for r in window[: len(ab_window)]]
        return combine(ab_window, l_window, sigma=self.options.temporal_sigma)

    # -- stage 4: chroma upsampling, recombination, quantisation ------------------------------------------
    @single_threaded  # the glue's small operations: see vs_colorgan.threads
    def chroma(self, render: RenderLuma, ab_norm: torch.Tensor, guide: torch.Tensor, *, matrix: int,
               scratch: Scratch | None = None) -> torch.Tensor:
        """(L, ab) on the work grid -> Cb, Cr (1, 2, Hc, Wc) in [-0.5, 0.5] at the size of ``guide`` (with
        ``scratch``, on the CPU, a view of the calling thread's planes: see :mod:`vs_colorgan.scratch`)."""
        kr, kb = MATRIX_COEFFICIENTS[matrix]
        if self.options.saturation == 0.0:  # gray: skip the upsampling of zeros
            return torch.zeros((1, 2, *guide.shape[-2:]), dtype=guide.dtype, device=guide.device)
        cbcr = lab_to_cbcr(render.l_work, ab_norm, kr, kb, saturation=self.options.saturation)
        # low-resolution guide: the luma the network saw (the same signal as the full-size guide)
        return self.upsample(cbcr, render.y_work, guide, matrix=matrix, scratch=scratch)

    def upsample(self, cbcr: torch.Tensor, y_low: torch.Tensor, guide: torch.Tensor, *, matrix: int,
                 radius: int | None = None, scratch: Scratch | None = None) -> torch.Tensor:
        """Cb, Cr (1, 2, h, w) guided by ``y_low`` (1, 1, h, w) -> the grid of ``guide`` (its Y', (1, 1, Hc, Wc)),
        gamut-limited (fast guided upsampling with the options' eps, and their radius unless ``radius`` is given:
        the options' is on the work grid; see :meth:`chroma`)."""
        kr, kb = MATRIX_COEFFICIENTS[matrix]
        radius = self.options.upsample_radius if radius is None else radius
        with glue_threads():
            cbcr = fast_guided_upsample(cbcr, y_low, guide, radius=radius,
                                        eps=self.options.upsample_eps, scratch=scratch)
            return limit_to_gamut(guide, cbcr, kr, kb, scratch=scratch)

    @single_threaded  # the glue's small operations: see vs_colorgan.threads
    def postprocess(self, render: RenderLuma, ab_norm: torch.Tensor, guide: torch.Tensor, *, matrix: int,
                    bits: int, full_range: bool, is_float: bool = False,
                    out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Stage 4 up to numpy: the Cb and Cr planes (Hc, Wc) in the output sample type; with ``out`` (two
        writable planes, e.g. a new frame's) written there instead (see :func:`quantize_chroma`), returning None."""
        # written into `out` at once: the full-size steps may use this thread's reused planes (vs_colorgan.scratch)
        scratch = _SCRATCH if out is not None else None
        cbcr = self.chroma(render, ab_norm, guide, matrix=matrix, scratch=scratch)
        planes = quantize_chroma(cbcr[0], bits=bits, full_range=full_range, is_float=is_float, out=out,
                                 scratch=scratch)  # both at once
        return None if planes is None else (planes[0], planes[1])

    @single_threaded  # the glue's small operations: see vs_colorgan.threads
    def finish(self, render: RenderLuma, ab_norm: torch.Tensor, luma_plane: np.ndarray, *, matrix: int, bits: int,
               full_range: bool, is_float: bool = False, subsampling_w: int = 0, subsampling_h: int = 0,
               chroma_location: int = 0,
               out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Stage 4 from the frame's luma plane as stored (H, W) to the Cb and Cr planes (Hc, Wc) in its sample
        type (written into ``out`` where given, and returned): :meth:`luma_guide` + :meth:`postprocess`, in one
        pass per row on the CPU where :mod:`vs_colorgan.chroma_kernel` takes the frame (8-16 bit integer
        luma, the usual subsamplings), the same arithmetic but for the coefficients' interpolation order."""
        kr, kb = MATRIX_COEFFICIENTS[matrix]
        cbcr = lab_to_cbcr(render.l_work, ab_norm, kr, kb, saturation=self.options.saturation)
        return self.finish_cbcr(cbcr, render.y_work, luma_plane, matrix=matrix, bits=bits, full_range=full_range,
                                is_float=is_float, subsampling_w=subsampling_w, subsampling_h=subsampling_h,
                                chroma_location=chroma_location, out=out)

    @single_threaded  # the glue's small operations: see vs_colorgan.threads
    def finish_cbcr(self, cbcr: torch.Tensor, y_low: torch.Tensor, luma_plane: np.ndarray, *, matrix: int,
                    bits: int, full_range: bool, is_float: bool = False, subsampling_w: int = 0,
                    subsampling_h: int = 0, chroma_location: int = 0, radius: int | None = None,
                    out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`finish` from low-resolution Cb, Cr (1, 2, h, w) and their guide ``y_low`` (1, 1, h, w), e.g. the
        keyframe mode's chroma on the render grid (with its own guided-filter ``radius``; default the options',
        on the work grid): guided upsampling by the frame's luma plane, gamut limit, quantisation into ``out``
        (or new planes), returned."""
        radius = self.options.upsample_radius if radius is None else radius
        hc, wc = luma_plane.shape[0] >> subsampling_h, luma_plane.shape[1] >> subsampling_w
        if out is None:
            dtype = np.float32 if is_float else np.uint8 if bits <= 8 else np.uint16
            out = (np.empty((hc, wc), dtype=dtype), np.empty((hc, wc), dtype=dtype))
        kr, kb = MATRIX_COEFFICIENTS[matrix]
        if (self.device.type != "cpu" or is_float
                or not chroma_kernel.handles(luma_plane, subsampling_w=subsampling_w, subsampling_h=subsampling_h)):
            guide = self.luma_guide(luma_plane, bits=bits, full_range=full_range, is_float=is_float,
                                    subsampling_w=subsampling_w, subsampling_h=subsampling_h,
                                    chroma_location=chroma_location)
            # written into `out` at once: the full-size steps use this thread's reused planes (vs_colorgan.scratch)
            q = self.upsample(cbcr, y_low, guide, matrix=matrix, radius=radius, scratch=_SCRATCH)
            quantize_chroma(q[0], bits=bits, full_range=full_range, is_float=is_float, out=out, scratch=_SCRATCH)
            return out
        coef = guided_coefficients(cbcr.float(), y_low.float(), radius=radius, eps=self.options.upsample_eps)
        chroma_kernel.finish(coef[0].numpy(), luma_plane, out, subsampling_w=subsampling_w,
                             subsampling_h=subsampling_h, chroma_location=chroma_location, bits=bits,
                             full_range=full_range, kr=kr, kb=kb)
        return out[0], out[1]
