"""``vs_colorgan.colorize``: the VapourSynth filter. Validation, graph wiring and the per-frame callback;
the colour path itself lives in :mod:`vs_colorgan.pipeline` (VapourSynth-free, one method per stage).

Graph (YUV input; GRAY is first made YUV444 by sharing its plane, RGB is converted to YUV444PS and back)::

    clip ──ShufflePlanes(Y)──resize.Bicubic(render size, 16 bit)──GRAYS──┬─ shifted by 0 .. r frames ─┐
      └───────────────────────────────────────────────────────────┴──> ModifyFrame(callback) ──> out

The callback gets frame ``n`` of the clip and the render-size luma of frames ``n, n-1, ..., n-r`` (the first
frame repeated before the start), finds the scene cut in that window, infers the missing predictions
(cached, each frame once in a sequential render), blends them, upsamples the chroma guided by the
full-size luma and writes Cb and Cr into a copy of the source frame, whose Y plane is left untouched.
"""
from __future__ import annotations

import ctypes
import itertools
import logging
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import vapoursynth as vs

from .errors import ColorizeError
from .formats import FrameColorimetry, check_matrix, quantize_chroma, resolve_colorimetry
from .lookahead import FramesAhead, Lookahead
from .model_io import ModelFileError, check_render_size, read_config
from .pipeline import ColorOptions, Colorizer, RenderLuma, render_shape
from .backends import choose_backend, get_runner
from .color import MATRIX_COEFFICIENTS
from .reference.propagate import FrameLuma, ReferencePropagator
from .reference.references import Reference, ReferenceSpec, load_references
from .temporal import PredictionCache, cut_flag
from .threads import glue_threads

__all__ = ["colorize"]

FUNC = "vs_colorgan.colorize"
MIN_SIDE = 16
MAX_TEMPORAL_RADIUS = 16
MAX_UPSAMPLE_RADIUS = 8
MAX_SATURATION = 4.0
TRIM_EVERY = 64  # frames between two malloc_trim(0) calls (see _heap_trimmer)
log = logging.getLogger("vs_colorgan")


def _heap_trimmer() -> Callable[[], Any] | None:
    """glibc's ``malloc_trim(0)``, or None elsewhere (musl, macOS, Windows: nothing to do).

    Why: every frame allocates and frees a few render-size tensors (~0.4 MiB each at render size 256) on
    VapourSynth's worker threads. glibc raises its mmap threshold after the first such block is freed
    (mallopt(3), M_MMAP_THRESHOLD: "dynamic mmap threshold"), so later ones come from the threads' heaps,
    where the free space they leave is only returned to the system when it sits at the top of a heap.
    Measured (benchmarks/memory_probe.py, 160x96 clip, 2000 frames): RSS grew ~400 MiB although the
    filter's caches and VapourSynth's frame cache stayed bounded, and trimming every 100 frames kept it flat
    (the filter trims every TRIM_EVERY = 64 frames). ``malloc_trim(0)`` hands the free pages of every arena back (it frees nothing that is in use).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the process already has loaded
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def check_clip(clip: Any) -> None:
    """Raise :class:`ColorizeError` unless ``clip`` is a constant-format, constant-size clip we can colour."""
    if not isinstance(clip, vs.VideoNode):
        raise ColorizeError(f"\"clip\" must be a vs.VideoNode (a video clip), not {type(clip).__name__}")
    fmt = clip.format
    if fmt is None or fmt.id == 0 or fmt.color_family == vs.UNDEFINED:
        raise ColorizeError("\"clip\" must have a constant format, not a variable one; convert it first, "
                            "e.g. core.resize.Bicubic(clip, format=vs.YUV420P8)")
    if clip.width == 0 or clip.height == 0:
        raise ColorizeError("\"clip\" must have a constant frame size, not a variable one; resize it first")
    if fmt.color_family not in (vs.GRAY, vs.YUV, vs.RGB):
        raise ColorizeError(f"\"clip\" must be GRAY, YUV or RGB, not {fmt.name}")
    integer_ok = fmt.sample_type == vs.INTEGER and 8 <= fmt.bits_per_sample <= 16
    float_ok = fmt.sample_type == vs.FLOAT and fmt.bits_per_sample == 32
    if not (integer_ok or float_ok):
        kind = "half float" if fmt.sample_type == vs.FLOAT else f"{fmt.bits_per_sample}-bit integer"
        raise ColorizeError(f"\"clip\" must have 8 to 16-bit integer or 32-bit float samples, not {fmt.name} ({kind})")
    if clip.width < MIN_SIDE or clip.height < MIN_SIDE:
        raise ColorizeError(f"\"clip\" must be at least {MIN_SIDE}x{MIN_SIDE} pixels, not {clip.width}x{clip.height}")


def check_options(*, temporal_radius: Any, temporal_sigma: Any, scene_threshold: Any, upsample_radius: Any,
                  upsample_eps: Any, matrix: Any, render_size: Any, saturation: Any = 1.0) -> ColorOptions:
    """Validate the colour-path options (render_size only for its type; its range needs the model)."""
    if not _is_int(temporal_radius) or not 0 <= temporal_radius <= MAX_TEMPORAL_RADIUS:
        raise ColorizeError(f"\"temporal_radius\" must be an integer between 0 and {MAX_TEMPORAL_RADIUS}, not {temporal_radius!r}")
    if not _is_real(temporal_sigma) or not 0 < temporal_sigma < math.inf:
        raise ColorizeError(f"\"temporal_sigma\" must be a positive number (L* units), not {temporal_sigma!r}")
    if not _is_real(scene_threshold) or not scene_threshold > 0:
        raise ColorizeError(f"\"scene_threshold\" must be a positive number (mean |delta L*|; math.inf disables "
                            f"detection), not {scene_threshold!r}")
    if not _is_int(upsample_radius) or not 0 <= upsample_radius <= MAX_UPSAMPLE_RADIUS:
        raise ColorizeError(f"\"upsample_radius\" must be an integer between 0 and {MAX_UPSAMPLE_RADIUS}, not {upsample_radius!r}")
    if not _is_real(upsample_eps) or not 0 < upsample_eps < math.inf:
        raise ColorizeError(f"\"upsample_eps\" must be a positive number, not {upsample_eps!r}")
    if not _is_real(saturation) or not 0 <= saturation <= MAX_SATURATION:
        raise ColorizeError(f"\"saturation\" must be a number between 0 (gray) and {MAX_SATURATION:g}, not {saturation!r}")
    if matrix is not None:
        check_matrix(matrix, "\"matrix\"")
    if render_size is not None and not _is_int(render_size):
        raise ColorizeError(f"\"render_size\" must be an integer or None, not {render_size!r}")
    return ColorOptions(temporal_radius=temporal_radius, temporal_sigma=float(temporal_sigma),
                        scene_threshold=float(scene_threshold), upsample_radius=upsample_radius,
                        upsample_eps=float(upsample_eps), saturation=float(saturation))


@dataclass(frozen=True, kw_only=True)
class _PlaneFormat:
    bits: int
    is_float: bool
    gray: bool  # the source is GRAY (its _Matrix says nothing about the output's)
    subsampling_w: int
    subsampling_h: int
    width: int
    height: int


class AutomaticColour:
    """Stages 1-3 of the automatic path for one ``colorize`` call: the render-size luma and the generator's
    prediction of each frame, cached per frame number, temporally combined; and the look-ahead that starts the
    next frame's inference in a sequential render."""

    def __init__(self, colorizer: Colorizer, *, small: vs.VideoNode, cache_size: int) -> None:
        self.colorizer = colorizer
        self.small = small  # the render-size luma (GRAYS): the callback's window, and what the look-ahead reads
        self.radius = colorizer.options.temporal_radius
        self.lumas: PredictionCache[RenderLuma] = PredictionCache(cache_size)
        self.predictions: PredictionCache[torch.Tensor] = PredictionCache(cache_size)
        self.lookahead: Lookahead | None = None  # set by build (see ahead())
        self.frames_ahead = FramesAhead(small)  # frames of `small` asked for early, for every look-ahead

    def __call__(self, n: int, window: list[vs.VideoFrame]) -> tuple[RenderLuma, torch.Tensor]:
        """Stages 1-3 for frame ``n``: its render-size luma and the temporally combined prediction."""
        c = self.colorizer
        count = min(self.radius, n) + 1  # window[k] is frame n - k for k < count
        # stage 1: render-size luma -> Y', L_norm (cached per frame number)
        lumas = [self.lumas.get_or_compute(n - k, lambda k=k: c.preprocess(np.asarray(window[k][0])))
                 for k in range(count)]
        length = c.window_length(lumas, [cut_flag(window[k].props, window[k + 1].props) for k in range(count - 1)])
        # stage 2: the predictions of the frames of this scene, each inferred once
        ab_window = [self.predictions.get_or_compute(n - k, lambda k=k: c.predict(lumas[k])) for k in range(length)]
        # stage 3: temporal combination
        return lumas[0], c.combine(ab_window, lumas)

    def ahead(self, n: int, *, wanted: bool = True) -> None:
        """In a sequential render, start frame ``n + 1``'s inference on the look-ahead thread, so that it runs
        while this callback does frame ``n``'s glue (vs_colorgan.lookahead; 480p on 2 cores: README, Speed).
        The caches make each value computed once, by whichever side asks first. Called for every frame (it
        records the order of the callbacks); ``wanted=False`` records without starting."""
        la, small = self.lookahead, self.small
        if la is None or not la.in_order(n) or not wanted or n + 1 >= small.num_frames:
            return
        c, i = self.colorizer, n + 1
        # frames n + 1 and n + 2 of the render-size luma are asked for a frame early, so that VapourSynth's
        # threads decode and resize them while the look-ahead infers frame n; and frame n + 1's luma is
        # prepared here, on the callback's thread, when its frame is there. Fetched and prepared inside the
        # job, the inference thread sat idle between two frames for both (480p: ~2 ms of every ~12)
        pending = self.frames_ahead.get(i)
        ready = None
        if pending.done() and pending.exception() is None:  # no wait on VapourSynth here (see job)
            ready = self.lumas.get_or_compute(i, lambda: c.preprocess(np.asarray(pending.result()[0])))

        def job() -> None:
            if la.passed(i):  # stale: the callbacks got there first (tiny frames, or a slow look-ahead thread)
                return
            luma = ready
            if luma is None:
                # the frame first, outside the caches: it may wait for a VapourSynth thread, and a callback must
                # never wait on a cache entry whose owner waits on VapourSynth (with one thread, or all of them
                # inside callbacks, that is a deadlock). Past this line the job only computes, so a callback
                # waiting on its entries always gets them; the job may also wait on the callback's, which compute.
                mine = c.preprocess(np.asarray(pending.result()[0]))
                luma = self.lumas.get_or_compute(i, lambda: mine)
            self.predictions.get_or_compute(i, lambda: c.predict(luma))

        la.submit(job)


class FrameProcessor:
    """The ``ModifyFrame`` callback: one per ``colorize`` call, holding its caches (:attr:`auto`), the keyframe
    mode when references are given (:attr:`references`), and the heap trimming of long renders."""

    def __init__(self, colorizer: Colorizer, plane: _PlaneFormat, *, small: vs.VideoNode, fallback_matrix: int | None,
                 cache_size: int) -> None:
        self.colorizer = colorizer
        self.plane = plane
        self.fallback_matrix = fallback_matrix
        self.auto = AutomaticColour(colorizer, small=small, cache_size=cache_size)
        self.trim = _heap_trimmer()
        self.trims = 0
        self._frames = itertools.count(1)  # next() is atomic under the GIL: safe from several threads
        self.references: ReferencePropagator | None = None  # keyframe mode (see attach_references)
        self.reference_lookahead: Lookahead | None = None  # its propagation one frame ahead (ahead_references)
        self._needed_automatic = True  # whether the last keyframe-mode frame used the automatic prediction

    @torch.inference_mode()  # per thread: VapourSynth calls this from its worker threads
    def __call__(self, n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        try:
            out = self.process(n, f[0], f[1:])
            if self.trim is not None and next(self._frames) % TRIM_EVERY == 0:
                self.trim()  # bounded RSS on long clips (see _heap_trimmer); a few ms per call
                self.trims += 1
            return out
        except Exception as e:  # surface as this frame's error, never kill the host
            log.debug("frame %d failed", n, exc_info=True)
            message = str(e) if isinstance(e, (ColorizeError, vs.Error)) else f"{type(e).__name__}: {e}"
            raise vs.Error(f"{FUNC}: frame {n}: {message}") from e

    def process(self, n: int, frame: vs.VideoFrame, window: list[vs.VideoFrame]) -> vs.VideoFrame:
        if self.references is not None:
            return self.process_with_references(n, frame, window)
        c, p = self.colorizer, self.plane
        self.auto.ahead(n)
        render, ab = self.auto(n, window)
        # stage 4: guided upsampling, recombination with the source luma, quantisation
        cm = self.colorimetry(frame)
        out, planes = _output_frame(frame, cm)
        c.finish(render, ab, np.asarray(frame[0]), matrix=cm.matrix, bits=p.bits, full_range=cm.full_range,
                 is_float=p.is_float, subsampling_w=p.subsampling_w, subsampling_h=p.subsampling_h,
                 chroma_location=int(frame.props.get("_ChromaLocation", 0)), out=planes)
        return out

    def colorimetry(self, frame: vs.VideoFrame) -> FrameColorimetry:
        """The frame's colorimetry (tags read, defaults filled)."""
        p = self.plane
        return resolve_colorimetry(frame.props, width=p.width, height=p.height, is_float=p.is_float,
                                   fallback_matrix=self.fallback_matrix, gray=p.gray)

    def process_with_references(self, n: int, frame: vs.VideoFrame, window: list[vs.VideoFrame]) -> vs.VideoFrame:
        """Keyframe mode: chroma carried from the references (vs_colorgan.reference.propagate), the automatic path
        where no key reaches or confidence is low; ``_ColorRefConfidence`` / ``_ColorRefKeys`` say which."""
        c, p = self.colorizer, self.plane
        self.ahead_references(n)
        # where the frame before needed the automatic prediction (low confidence somewhere: picture entering a
        # pan, occlusions; or no key in the shot) the next one most likely will too: infer it on the look-ahead
        # thread from now on, beside this callback and the propagation's thread. Where the keys carry the
        # whole frame nothing is started, so no inference is spent that no frame uses.
        self.auto.ahead(n, wanted=self._needed_automatic)
        cm = self.colorimetry(frame)
        luma = np.asarray(frame[0])
        plane_args = dict(bits=p.bits, full_range=cm.full_range, is_float=p.is_float, subsampling_w=p.subsampling_w,
                          subsampling_h=p.subsampling_h, chroma_location=int(frame.props.get("_ChromaLocation", 0)))
        stage4 = dict(matrix=cm.matrix, **plane_args)
        used = []  # whether this frame needed the automatic prediction

        def automatic() -> tuple[torch.Tensor, torch.Tensor]:
            used.append(True)
            render, ab = self.auto(n, window)
            return render.l_work, ab

        def guide() -> torch.Tensor:  # a keyframe's own chroma only
            return c.luma_guide(luma, **plane_args)

        with glue_threads():  # the propagation's torch steps on this thread alone (vs_colorgan.threads)
            result = self.references.chroma(n, guide, automatic)
        out, planes = _output_frame(frame, cm)
        if result.cbcr is not None:  # a keyframe
            quantize_chroma(result.cbcr[0], bits=p.bits, full_range=cm.full_range, is_float=p.is_float, out=planes)
        elif result.low is not None:  # carried on the render grid: the automatic path's upsampling
            c.finish_cbcr(*result.low, luma, radius=self.references.upsample_radius, out=planes, **stage4)
        else:  # no keyframe in this shot: automatic colour
            used.append(True)
            render, ab = self.auto(n, window)
            c.finish(render, ab, luma, out=planes, **stage4)
        out.props["_ColorRefConfidence"] = result.confidence
        if result.keys:
            out.props["_ColorRefKeys"] = list(result.keys)
        if result.palette is not None:
            out.props["_ColorRefPalette"] = result.palette
        self._needed_automatic = bool(used)
        return out


    def ahead_references(self, n: int) -> None:
        """In a sequential render, carry the keys' colour to frame ``n + 1`` on a thread of its own
        (:meth:`ReferencePropagator.prepare`) while this callback finishes frame ``n``: the flows, warps and
        fill are most of the keyframe mode's time, and callbacks run one at a time. Frames ``n + 1`` and
        ``n + 2`` of the render-size luma are asked for a frame early, and read outside every cache."""
        la, auto = self.reference_lookahead, self.auto
        if la is None or not la.in_order(n) or n + 1 >= auto.small.num_frames:
            return
        i, propagator = n + 1, self.references
        frame = auto.frames_ahead.get(i)

        def job() -> None:
            if not la.passed(i):  # stale once the callback of i has started: it computes the value itself
                propagator.prepare(i, frame_luma(auto, i, frame.result()))

        la.submit(job)


def _output_frame(frame: vs.VideoFrame, cm: FrameColorimetry) -> tuple[vs.VideoFrame, tuple[np.ndarray, np.ndarray]]:
    """A copy of ``frame`` with the colorimetry tags written, and its Cb and Cr planes as writable arrays (views
    of the frame's memory, strided) for stage 4 to quantise into: no intermediate planes, no copy after."""
    out = frame.copy()  # shares the Y plane (it stays bit-exact); Cb/Cr are overwritten whole
    out.props.update(cm.output_props())
    return out, (np.asarray(out[1]), np.asarray(out[2]))


def attach_references(processor: FrameProcessor, refs: dict[int, Reference], work: vs.VideoNode) -> None:
    """Switch ``processor`` to keyframe mode with validated references (:func:`load_references`). Frames of
    ``processor.auto.small`` (the render-size luma, GRAYS, with the source's props) are read inside the callback,
    so any frame's result can be computed whatever was rendered before (see vs_colorgan.reference.propagate)."""
    c, p, small = processor.colorizer, processor.plane, processor.auto.small
    first = work.get_frame(min(refs))  # the matrix references are converted with (of the first keyframe)
    cm = resolve_colorimetry(first.props, width=p.width, height=p.height, is_float=p.is_float,
                             fallback_matrix=processor.fallback_matrix, gray=p.gray)

    propagator = ReferencePropagator(
        refs, luma=lambda i: frame_luma(processor.auto, i, small.get_frame(i)),
        size=(p.width, p.height), matrix=MATRIX_COEFFICIENTS[cm.matrix],
        scene_threshold=c.options.scene_threshold, upsample_radius=c.options.upsample_radius,
        upsample_eps=c.options.upsample_eps, saturation=c.options.saturation, cache_size=processor.auto.lumas.capacity)
    palette = propagator.classify()
    if palette:
        log.warning("%s: the references of frames %s do not match their frames' luma; they are used as palettes "
                    "for their shots only", FUNC, ", ".join(f"{k} ({refs[k].origin})" for k in palette))
    processor.references = propagator
    processor.reference_lookahead = Lookahead(name="vs_colorgan-references")


def frame_luma(auto: AutomaticColour, n: int, frame: vs.VideoFrame) -> FrameLuma:
    """Frame ``n`` of the render-size luma (GRAYS) as the keyframe mode reads it (:class:`FrameLuma`); its
    stage-1 result is the automatic path's, cached there (computed once for both)."""
    y = np.array(frame[0], dtype=np.float32, copy=True)
    props = {k: frame.props[k] for k in ("_SceneChangePrev", "_SceneChangeNext") if k in frame.props}
    render = auto.lumas.get_or_compute(n, lambda: auto.colorizer.preprocess(y))
    return FrameLuma(y, render.l_work.cpu(), props)


def render_luma_clip(luma: vs.VideoNode, width: int, height: int) -> vs.VideoNode:
    """A GRAY clip -> its luma at the render size as GRAYS, Y' in [0, 1] (zimg reads ``_ColorRange``, default
    limited): stage 1's input, the filter's and ``colorgan-keyframes``'s.

    Integer clips are resized at 16 bits and then made float: zimg's integer path, 0.02-0.06 ms against
    0.13-0.33 ms for its float path when a 1080p frame shrinks to 228x128 (one thread, issue 15), and 16-bit
    codes keep Y' to 1.5e-5 (limited range keeps bicubic's overshoot in its headroom; full range clips it at
    0 and 1, where stage 1 clamps anyway). Float clips go to GRAYS directly."""
    core = vs.core
    if luma.format.sample_type == vs.FLOAT:
        return core.resize.Bicubic(luma, width, height, format=vs.GRAYS)
    return core.resize.Point(core.resize.Bicubic(luma, width, height, format=vs.GRAY16), format=vs.GRAYS)


def build(clip: vs.VideoNode, colorizer: Colorizer, *, render_size: int, matrix: int | None = None,
          references: dict[int, Reference] | None = None) -> tuple[vs.VideoNode, FrameProcessor]:
    """Wire ``colorizer`` into a graph on a validated ``clip``; returns the output and its callback object."""
    core = vs.core
    fmt = clip.format
    if fmt.color_family == vs.RGB:
        # RGB: to YUV444 float with BT.709 (or `matrix`), colour it, back to the input format at the end
        work = core.resize.Point(clip, format=vs.YUV444PS, matrix=matrix or 1)
    elif fmt.color_family == vs.GRAY:
        # GRAY -> YUV444 of the same depth; its Y plane is the input plane, shared, not copied
        work = core.std.ShufflePlanes([clip, clip, clip], [0, 0, 0], vs.YUV)
    else:
        work = clip
    wfmt = work.format
    luma = core.std.ShufflePlanes(work, 0, vs.GRAY)
    rw, rh = render_shape(clip.width, clip.height, render_size, colorizer.config.size_multiple)
    small = render_luma_clip(luma, rw, rh)
    radius = colorizer.options.temporal_radius
    num = clip.num_frames
    shifted = [small] + [(small[0] * k + small)[:num] if k < num else small[0] * num for k in range(1, radius + 1)]
    plane = _PlaneFormat(bits=wfmt.bits_per_sample, is_float=wfmt.sample_type == vs.FLOAT,
                         gray=fmt.color_family == vs.GRAY,
                         subsampling_w=wfmt.subsampling_w, subsampling_h=wfmt.subsampling_h,
                         width=clip.width, height=clip.height)
    cache_size = radius + 1 + 2 * core.num_threads + 3  # frames in flight + the window + the look-ahead frame
    processor = FrameProcessor(colorizer, plane, small=small, fallback_matrix=matrix, cache_size=cache_size)
    if references:
        attach_references(processor, references, work)
    processor.auto.lookahead = Lookahead()
    out = core.std.ModifyFrame(work, [work, *shifted], processor)
    if fmt.color_family == vs.RGB:
        out = core.resize.Point(out, format=fmt.id)  # matrix from the frames' _Matrix
    log.info("%s: %dx%d %s, render %dx%d, temporal_radius %d", FUNC, clip.width, clip.height, fmt.name, rw, rh, radius)
    return out, processor


def colorize(
    clip: vs.VideoNode,
    *,
    model: str | os.PathLike | None = None,
    backend: Literal["auto", "torch", "ort"] = "auto",
    device: str = "auto",
    render_size: int | None = None,
    temporal_radius: int = 3,
    temporal_sigma: float = 3.0,
    scene_threshold: float = 10.0,
    upsample_radius: int = 1,
    upsample_eps: float = 1e-3,
    saturation: float = 1.0,
    matrix: int | None = None,
    fp16: bool = False,
    num_streams: int = 1,
    tensorrt: bool = False,
    references: ReferenceSpec | None = None,
) -> vs.VideoNode:
    """Colourize a black-and-white clip: new chroma predicted by a GAN generator, the luma kept bit for bit.

    >>> out = vs_colorgan.colorize(core.bs.VideoSource("film.mkv"), model="generator.safetensors")

    :param clip: GRAY, YUV (any subsampling) or RGB; 8-16 bit integer or 32-bit float; at least 16x16.
        YUV -> same format, Y plane untouched; GRAY -> YUV444 of the same depth; RGB -> RGB.
    :param model: ``.safetensors`` (torch backend) or ``.onnx`` (ort backend) generator file; a file of the
        other kind with the same stem next to it is used when the backend needs it. None: the bundled model.
    :param backend: "torch", "ort" (ONNX Runtime) or "auto" (CUDA torch, else ORT when an .onnx exists, else torch).
    :param device: "auto", "cpu", "cuda" or "cuda:N".
    :param render_size: short side the generator runs at (multiple of the model's size multiple, 64-2048);
        None: the size the model was trained for.
    :param temporal_radius: blend the predictions of up to this many previous frames of the same scene (0: off).
    :param temporal_sigma: luma difference (L*) at which a previous frame's per-pixel weight falls to 1/e.
    :param scene_threshold: mean absolute L* difference between consecutive frames that counts as a cut,
        used when frames carry no ``_SceneChangePrev``/``_SceneChangeNext`` (math.inf: never).
    :param upsample_radius: guided-filter radius on the work grid (half the render size; 0: plain bilinear).
    :param upsample_eps: guided-filter regulariser; smaller follows luma edges more closely.
    :param saturation: chroma gain on the model's (already calibrated) colour, 0-4: 0 gives gray (exactly
        neutral chroma), below 1 more restrained, above 1 more vivid.
    :param matrix: YCbCr matrix (1, 4, 5, 6, 7, 9) for frames whose ``_Matrix`` is missing or unspecified,
        and for RGB input; None: BT.709 for HD, SMPTE 170M for SD (RGB: BT.709).
    :param fp16: half precision (CUDA only; with ORT it needs tensorrt=True).
    :param num_streams: inference slots (CUDA: one stream each); VapourSynth runs this filter's callback
        one frame at a time, so values above 1 do not overlap frames (docs/filter.md).
    :param tensorrt: ORT on CUDA: use the TensorRT provider (engines cached on disk).
    :param references: colour from keyframes: ``{frame: image}`` (a path, an RGB(A) array or a one-frame colour
        clip) or a folder of ``ref_NNNNNN.png``/``.jpg``; PNGs with alpha are strokes, filled along the luma.
        Each shot takes its colour from its keyframes (see vs_colorgan.reference.propagate and README, "Colour from
        keyframes"); None: automatic colour only.
    """
    try:
        check_clip(clip)
        options = check_options(temporal_radius=temporal_radius, temporal_sigma=temporal_sigma,
                                scene_threshold=scene_threshold, upsample_radius=upsample_radius,
                                upsample_eps=upsample_eps, matrix=matrix, render_size=render_size,
                                saturation=saturation)
        refs = None if references is None else \
            load_references(references, num_frames=clip.num_frames, width=clip.width, height=clip.height)
        settings, path = choose_backend(model=model, backend=backend, device=device, fp16=fp16,
                                        num_streams=num_streams, tensorrt=tensorrt)
        config = read_config(path)
        size = config.render_size if render_size is None else render_size
        check_render_size(size, config.size_multiple)
        colorizer = Colorizer(get_runner(settings, path), options)
        out, _ = build(clip, colorizer, render_size=size, matrix=matrix, references=refs)
        return out
    except ColorizeError as e:
        raise vs.Error(f"{FUNC}: {e}") from None
    except ModelFileError as e:
        raise vs.Error(f"{FUNC}: \"model\" is not a usable generator file: {e}") from None
