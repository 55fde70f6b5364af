"""``colorgan-render``: one command from a black-and-white film to a colourized one.

    colorgan-render INPUT OUTPUT [--model M] [--references DIR [--adapt]] [--start N --end M] [--codec h264|h265|ffv1]
                    [--crf N] [--preset P] [colorize options: --render-size, --temporal-radius, --backend ...]
                    [--workers N | --cluster ADDRESS] [--chunk-frames K] [--allow-mixed-hardware]

INPUT is decoded by VapourSynth's BestSource (``core.bs.VideoSource``), colourized by
:func:`vs_colorgan.colorize` and encoded with PyAV (FFmpeg's libraries, bundled in the ``av`` wheel: no
system ffmpeg needed). The codec follows OUTPUT's extension (``.mp4``/``.mov``/``.m4v``: H.264,
``.mkv``: FFV1, lossless) unless ``--codec`` names one. The colour tags of the output stream (matrix,
primaries, transfer, range) are those the filter writes on its frames; the source's first audio stream is
copied (transcoded to AAC only when the output container cannot hold its codec).

The file is written under a hidden temporary name in OUTPUT's folder (``.NAME.PID.XXXX.tmp``) and renamed
to OUTPUT only when complete: Ctrl-C, SIGTERM or an error remove it, and a SIGKILL's leftover is removed
by the next run (its writer's process id is gone). OUTPUT never exists half-written.

``--start N --end M`` (inclusive, like ``vspipe -s/-e``) render frames N..M of the colourized clip; the
filter is deterministic per frame, so chunks equal the same frames of a whole render, and with a lossless
codec (FFV1) the decoded chunks concatenate to the decoded whole exactly. Each chunk file starts at
timestamp 0, has only intra frames (FFV1) or starts with a key frame (H.264/H.265), and records its first
source frame in the container metadata (``vs_colorgan_start``), so chunks can be remuxed into one file.

``--workers N`` / ``--cluster ADDRESS`` render the film in chunks on Ray (:mod:`vs_colorgan.cluster`), each
chunk through :func:`render_range`, and stitch them; FFV1 output equals the single render's byte for byte.

Exit status: 0 written; 1 rendering or encoding failed; 2 bad arguments; 130 interrupted.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

PROG = "colorgan-render"

# codec choice -> (FFmpeg encoder, display name)
CODECS: dict[str, str] = {"h264": "libx264", "h265": "libx265", "ffv1": "ffv1"}
# output extension -> (FFmpeg muxer, default codec)
CONTAINERS: dict[str, tuple[str, str]] = {
    ".mp4": ("mp4", "h264"), ".m4v": ("mp4", "h264"), ".mov": ("mov", "h264"), ".mkv": ("matroska", "ffv1"),
}
# which codecs each muxer takes (FFV1 in MP4 is not a standard mapping: players would not read it)
CONTAINER_CODECS: dict[str, tuple[str, ...]] = {"mp4": ("h264", "h265"), "mov": ("h264", "h265", "ffv1"),
                                                "matroska": ("h264", "h265", "ffv1")}
DEFAULT_CRF = {"h264": 18, "h265": 20}
START_KEY = "vs_colorgan_start"  # container metadata: the chunk's first frame in the source


class RenderError(Exception):
    """A bad argument or input, with a message for the user as it stands (exit status 2)."""


@dataclass(frozen=True, kw_only=True)
class EncodeFormat:
    """What is handed to the encoder: the VapourSynth format to convert to (or None) and FFmpeg's pix_fmt."""

    convert_to: int | None  # a vs.PresetVideoFormat id, or None when the filter's output goes as it is
    pix_fmt: str
    note: str = ""  # said on stderr when the output format differs from the filter's


# -- arguments -----------------------------------------------------------------------------------------------

def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a frame number (0 or more), not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=PROG, description="Colourize a black-and-white video: BestSource -> vs_colorgan.colorize -> "
        "an encoded file (PyAV), with colour tags and the source's audio.",
        epilog="Codec by extension: .mp4/.mov/.m4v -> H.264, .mkv -> FFV1 (lossless). See README.md, "
               "section colorgan-render.")
    ap.add_argument("input", type=Path, help="the black-and-white video (anything FFmpeg decodes)")
    ap.add_argument("output", type=Path, help="the file to write (.mp4, .mov, .m4v or .mkv)")
    ap.add_argument("--model", default=None, help="generator .safetensors or .onnx (default: the bundled model)")
    ap.add_argument("--references", type=Path, default=None,
                    help="folder of colour reference images, passed to colorize(references=...)")
    ap.add_argument("--adapt", action="store_true",
                    help="first fine-tune the model on the --references keyframes (colorgan-adapt), kept as "
                         "OUTPUT.adapted.safetensors, then render with it")
    ap.add_argument("--adapt-steps", type=int, default=None, help="--adapt: colorgan-adapt's --steps")
    ap.add_argument("--start", type=_nonnegative_int, default=None, help="first frame to render (default 0)")
    ap.add_argument("--end", type=_nonnegative_int, default=None, help="last frame to render, inclusive (default: the last)")
    ap.add_argument("--codec", choices=tuple(CODECS), default=None, help="default: by the output's extension")
    ap.add_argument("--crf", type=int, default=None, help="H.264/H.265 quality, lower is better (default 18 / 20)")
    ap.add_argument("--preset", default="medium", help="x264/x265 speed preset (default medium)")
    ap.add_argument("--no-audio", action="store_true", help="do not copy the source's audio")
    ap.add_argument("--threads", type=int, default=0, help="VapourSynth threads (default: all cores)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    g = ap.add_argument_group("colorize options (see docs/filter.md)")
    g.add_argument("--backend", default="auto", help="auto, torch or ort")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    g.add_argument("--render-size", type=int, default=None, help="short side the generator runs at")
    g.add_argument("--temporal-radius", type=int, default=None)
    g.add_argument("--temporal-sigma", type=float, default=None)
    g.add_argument("--scene-threshold", type=float, default=None)
    g.add_argument("--upsample-radius", type=int, default=None)
    g.add_argument("--upsample-eps", type=float, default=None)
    g.add_argument("--matrix", type=int, default=None, help="YCbCr matrix for untagged frames (1, 5, 6, 9 ...)")
    g.add_argument("--fp16", action="store_true", help="half precision (CUDA)")
    g.add_argument("--num-streams", type=int, default=None)
    g.add_argument("--tensorrt", action="store_true", help="ORT on CUDA: TensorRT provider")
    from .cluster import add_arguments

    add_arguments(ap)
    return ap


def choose_codec(output: Path, codec: str | None) -> tuple[str, str]:
    """(FFmpeg muxer, codec key) for ``output`` and ``--codec``; raises :class:`RenderError`."""
    container = CONTAINERS.get(output.suffix.lower())
    if container is None:
        raise RenderError(f"OUTPUT must end in {', '.join(CONTAINERS)}, not {output.name!r}")
    muxer, default = container
    codec = codec or default
    if codec not in CONTAINER_CODECS[muxer]:
        raise RenderError(f"--codec {codec} cannot go into {output.suffix} (it takes {', '.join(CONTAINER_CODECS[muxer])}); "
                          f"use .mkv for {codec}")
    return muxer, codec


def colorize_options(args: argparse.Namespace) -> dict[str, Any]:
    """The colorize keyword arguments the command line gave (the rest keep the filter's defaults)."""
    options: dict[str, Any] = {"backend": args.backend, "device": args.device}
    for name in ("model", "render_size", "temporal_radius", "temporal_sigma", "scene_threshold",
                 "upsample_radius", "upsample_eps", "matrix", "num_streams"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    for name in ("fp16", "tensorrt"):
        if getattr(args, name):
            options[name] = True
    if args.references is not None:
        options["references"] = args.references
    return options


def check_references(references: Path | None) -> None:
    if references is None:
        return
    if not references.is_dir():
        raise RenderError(f"--references must be a folder of reference images, not {str(references)!r}")


# -- formats and tags ----------------------------------------------------------------------------------------

_SUBSAMPLING = {(1, 1): "420", (1, 0): "422", (0, 0): "444", (0, 1): "440", (2, 0): "411", (2, 2): "410"}


def _pix_fmt(subsampling: tuple[int, int], bits: int) -> str | None:
    name = _SUBSAMPLING.get(subsampling)
    if name is None:
        return None
    return f"yuv{name}p" + ("" if bits == 8 else f"{bits}le")


def encode_format(fmt: Any, codec: str, *, gray_source: bool = False) -> EncodeFormat:
    """The pix_fmt the encoder gets for the filter's output format ``fmt`` (a vs.VideoFormat).

    YUV goes as it is when the encoder takes it (the luma stays bit-exact), else to the same subsampling at
    the deepest depth the encoder has. RGB (the filter's output for RGB input) becomes YUV with BT.709:
    4:4:4 of the same depth for FFV1, 4:2:0 8-bit for H.264/H.265 (what players decode); float becomes integer.
    A GRAY source (which colorize turns into YUV 4:4:4) goes to H.264/H.265 as 4:2:0 of its depth, for the same
    reason: the 4:4:4 profiles are not what players decode.
    """
    import av
    import vapoursynth as vs

    supported = {f.name for f in av.codec.Codec(CODECS[codec], "w").video_formats}
    bits = fmt.bits_per_sample if fmt.sample_type == vs.INTEGER else 16
    if fmt.color_family == vs.RGB:
        subsampling, bits = ((0, 0), bits) if codec == "ffv1" else ((1, 1), 8)
        note = "RGB output encoded as YUV (BT.709 matrix)"
    elif gray_source and codec != "ffv1":
        subsampling, note = (1, 1), "gray source encoded as YUV 4:2:0"
    else:
        subsampling, note = (fmt.subsampling_w, fmt.subsampling_h), ""
        if fmt.sample_type == vs.FLOAT:
            note = "float output encoded as 16-bit integer"
    for depth in sorted({d for d in (8, 9, 10, 12, 14, 16) if d <= bits} | {bits}, reverse=True):
        name = _pix_fmt(subsampling, depth)
        if name in supported:
            break
    else:
        depth, subsampling, name = 8, (1, 1), "yuv420p"
    if fmt.color_family == vs.YUV and fmt.sample_type == vs.INTEGER and depth == fmt.bits_per_sample \
            and subsampling == (fmt.subsampling_w, fmt.subsampling_h):
        return EncodeFormat(convert_to=None, pix_fmt=name)
    target = vs.core.query_video_format(vs.YUV, vs.INTEGER, depth, subsampling[0], subsampling[1])
    if not note:
        note = f"{fmt.name} is not a format {codec} takes; encoded as {target.name}"
    return EncodeFormat(convert_to=target.id, pix_fmt=name, note=note)


def color_tags(props: Any) -> dict[str, int]:
    """FFmpeg's colour fields from a frame's properties (ITU-T H.273 codes both sides; range differs)."""
    tags: dict[str, int] = {}
    for prop, field in (("_Matrix", "colorspace"), ("_Primaries", "color_primaries"), ("_Transfer", "color_trc")):
        if prop in props and int(props[prop]) != 2:  # 2: unspecified, also FFmpeg's
            tags[field] = int(props[prop])
    if "_Range" in props:  # VapourSynth 0 limited / 1 full; FFmpeg AVCOL_RANGE_MPEG 1 / AVCOL_RANGE_JPEG 2
        tags["color_range"] = 2 if int(props["_Range"]) == 1 else 1
    return tags


# -- the temporary file --------------------------------------------------------------------------------------

def temporary_path(output: Path) -> Path:
    """A hidden, unique name next to ``output`` in the pattern ``model_io.clear_stale_temporaries`` knows."""
    from .model_io import _UMASK

    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.{os.getpid()}.", suffix=".tmp", dir=output.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would survive the rename: make it an ordinary file
    return Path(tmp)


class _Terminated(BaseException):
    """SIGTERM/SIGHUP, raised in the main thread so the temporary file is removed on the way out."""


def _raise_terminated(signum: int, _frame: Any) -> None:
    raise _Terminated(signum)


# -- audio ---------------------------------------------------------------------------------------------------

def can_copy(out: Any, codec: str) -> bool:
    """Whether the output container (an open ``av`` output) can hold a stream of ``codec`` as it is."""
    return codec in out.supported_codecs


class AudioCopy:
    """The source's first audio stream, copied packet by packet into ``out`` for the time range [t0, t1)
    (transcoded to AAC when the output container cannot hold the codec), shifted to start at 0."""

    def __init__(self, source: Path, out: Any, t0: Fraction, t1: Fraction) -> None:
        import av

        self.input = av.open(str(source))
        self.stream = next((s for s in self.input.streams if s.type == "audio"), None)
        # frame 0 is the first video frame: measure the range from the video stream's start, not from 0
        video = next((s for s in self.input.streams if s.type == "video"), None)
        base = Fraction(0)
        if video is not None and video.start_time is not None and video.time_base is not None:
            base = video.start_time * video.time_base
        t0, t1 = t0 + base, t1 + base
        self.t0, self.t1 = t0, t1
        self.out = out
        self.out_stream = None
        self._pending: Any = None
        self.transcoder: Any = None
        if self.stream is None:
            return
        name = self.stream.codec_context.name
        if can_copy(out, name):
            self.out_stream = out.add_stream_from_template(self.stream)
        else:  # e.g. PCM into MP4
            self.out_stream = out.add_stream("aac", rate=self.stream.codec_context.sample_rate)
            self.out_stream.layout = self.stream.codec_context.layout
            self.transcoder = av.AudioResampler(format="fltp", layout=self.stream.codec_context.layout,
                                                rate=self.stream.codec_context.sample_rate)
        self._packets = self.input.demux(self.stream)
        self._offset = int(round(t0 / self.stream.time_base)) if self.stream.time_base else 0

    @property
    def description(self) -> str:
        if self.stream is None:
            return "no audio in the source"
        name = self.stream.codec_context.name
        return f"audio {name} copied" if self.transcoder is None else f"audio {name} transcoded to AAC"

    def _next_in_range(self) -> Any:
        for packet in self._packets:
            if packet.pts is None or packet.size == 0:
                continue
            t = packet.pts * self.stream.time_base
            if t < self.t0:
                continue
            if t >= self.t1:
                return None
            return packet
        return None

    def write_until(self, t: Fraction | None) -> None:
        """Mux the packets that start before ``t`` (all that are left when None): keeps the file interleaved."""
        if self.out_stream is None:
            return
        while True:
            if self._pending is None:
                self._pending = self._next_in_range()
                if self._pending is None:
                    self.out_stream_done()
                    return
            packet = self._pending
            if t is not None and packet.pts * self.stream.time_base >= t:
                return
            self._pending = None
            if self.transcoder is None:
                packet.pts -= self._offset
                if packet.dts is not None:
                    packet.dts -= self._offset
                packet.stream = self.out_stream
                self.out.mux(packet)
            else:
                for frame in packet.decode():
                    frame.pts = None
                    for resampled in self.transcoder.resample(frame):
                        self.out.mux(self.out_stream.encode(resampled))

    def out_stream_done(self) -> None:
        if self.transcoder is not None and self.out_stream is not None:
            for resampled in self.transcoder.resample(None):  # what the resampler still holds
                self.out.mux(self.out_stream.encode(resampled))
            self.out.mux(self.out_stream.encode(None))
            self.transcoder = None
            self.out_stream = None

    def close(self) -> None:
        self.input.close()


# -- frames --------------------------------------------------------------------------------------------------

def to_av_frame(frame: Any, pix_fmt: str, tags: dict[str, int]) -> Any:
    """A VapourSynth YUV frame -> an ``av.VideoFrame`` (planes copied row by row: FFmpeg pads its lines)."""
    import av
    import numpy as np

    out = av.VideoFrame(frame.width, frame.height, pix_fmt)
    for p in range(frame.format.num_planes):
        src = np.asarray(frame[p])
        plane = out.planes[p]
        dst = np.frombuffer(plane, dtype=src.dtype).reshape(plane.height, plane.line_size // src.itemsize)
        dst[:, : src.shape[1]] = src
    for field, value in tags.items():
        setattr(out, field, value)
    return out


# -- the command ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Job:
    """A validated render: the colourized clip ready for the encoder and what the file is written with."""

    input: Path
    muxer: str
    codec: str
    enc: EncodeFormat
    clip: Any  # the frames start..end of the colourized clip (vs.VideoNode), in the encoder's format
    start: int
    end: int  # inclusive
    source_frames: int
    fps: Fraction
    tags: dict[str, int]


def prepare(args: argparse.Namespace) -> Job:
    """Check the arguments, open INPUT with BestSource and build the colourized clip (raises :class:`RenderError`).

    OUTPUT's extension and ``--codec`` choose the container and codec; nothing is written.
    """
    import vapoursynth as vs

    import vs_colorgan

    core = vs.core
    if not args.input.is_file():
        raise RenderError(f"INPUT {str(args.input)!r} is not a file")
    muxer, codec = choose_codec(args.output, args.codec)
    if args.output.exists() and args.output.resolve() == args.input.resolve():
        raise RenderError("OUTPUT must not be INPUT: the render reads INPUT while it writes")
    if args.output.is_dir():
        raise RenderError(f"OUTPUT {str(args.output)!r} is a folder; name the file to write")
    if not args.output.parent.is_dir():
        raise RenderError(f"OUTPUT's folder {str(args.output.parent)!r} does not exist")
    if args.crf is not None and codec == "ffv1":
        raise RenderError("--crf applies to h264/h265; FFV1 is lossless")
    if args.threads < 0:
        raise RenderError(f"--threads must be 0 (all cores) or more, not {args.threads}")
    check_references(args.references)
    if args.threads:
        core.num_threads = args.threads
    if not hasattr(core, "bs"):
        raise RenderError("VapourSynth's BestSource plugin is missing: pip install vapoursynth-bestsource")

    try:
        src = core.bs.VideoSource(str(args.input))
    except vs.Error as e:
        raise RenderError(f"BestSource cannot open {str(args.input)!r}: {e}") from None
    start = 0 if args.start is None else args.start
    end = src.num_frames - 1 if args.end is None else args.end
    if start > end:
        raise RenderError(f"--start ({start}) must not be after --end ({end})")
    if end >= src.num_frames:
        raise RenderError(f"--end must be a frame of the clip (0 to {src.num_frames - 1}), not {end}")
    try:
        colour = vs_colorgan.colorize(src, **colorize_options(args))
    except vs.Error as e:
        raise RenderError(str(e)) from None
    enc = encode_format(colour.format, codec, gray_source=src.format.color_family == vs.GRAY)
    if enc.convert_to is not None:
        if colour.format.color_family == vs.RGB:
            colour = core.resize.Bicubic(colour, format=enc.convert_to, matrix=1)
        else:  # depth or subsampling only: zimg leaves the matrix and range as they are
            colour = core.resize.Bicubic(colour, format=enc.convert_to)
    chunk = colour[start:end + 1]
    fps = Fraction(src.fps.numerator, src.fps.denominator) if src.fps.numerator else Fraction(25)
    first_props = chunk.get_frame(0).props
    return Job(input=args.input, muxer=muxer, codec=codec, enc=enc, clip=chunk, start=start, end=end,
               source_frames=src.num_frames, fps=fps, tags=color_tags(first_props))


def muxer_options(codec: str) -> dict[str, str]:
    """FFV1 files are muxed bit-exactly (no random segment/track ids, no library version): the same frames
    give the same bytes, which is what lets a clustered render equal a single one byte for byte."""
    return {"fflags": "+bitexact"} if codec == "ffv1" else {}


def add_video_stream(out: Any, job: Job, args: argparse.Namespace) -> Any:
    """The video stream of ``out`` (an open ``av`` output) as ``colorgan-render`` sets it up for ``job``."""
    stream = out.add_stream(CODECS[job.codec], rate=job.fps)
    stream.width, stream.height, stream.pix_fmt = job.clip.width, job.clip.height, job.enc.pix_fmt
    stream.codec_context.time_base = 1 / job.fps  # frames count in 1/fps; the muxer may give the stream another
    for field, value in job.tags.items():
        setattr(stream.codec_context, field, value)
    if job.codec == "ffv1":
        stream.codec_context.gop_size = 1  # every frame a key frame: chunks cut and join anywhere
        stream.options = {"level": "3", "slicecrc": "1"}
    else:
        crf = DEFAULT_CRF[job.codec] if args.crf is None else args.crf
        stream.options = {"crf": str(crf), "preset": args.preset}
        if job.codec == "h265":
            stream.options["x265-params"] = "log-level=warning"
    return stream


class Stopped(Exception):
    """``write``'s ``stop()`` asked it to end before the next frame (the cluster render's cooperative cancel)."""


def write(job: Job, args: argparse.Namespace, path: Path, *, audio: bool = True, bar: bool = True,
          stop: Callable[[], bool] | None = None) -> int:
    """Encode ``job``'s frames (and, with ``audio``, the source's audio over the same time range) into the file
    ``path`` (created or overwritten, as it goes); returns the number of video frames written. ``stop`` is asked
    before each frame; when it says True, Stopped is raised and ``path`` is left to the caller to remove."""
    import av
    from tqdm import tqdm

    fps, frame_tb = job.fps, 1 / job.fps
    copy = None
    written = 0
    try:
        with av.open(str(path), mode="w", format=job.muxer, options=muxer_options(job.codec)) as out:
            out.metadata[START_KEY] = str(job.start)
            stream = add_video_stream(out, job, args)
            if audio:
                copy = AudioCopy(job.input, out, Fraction(job.start) / fps, Fraction(job.end + 1) / fps)
            print(f"{PROG}: {job.input} -> {args.output}: frames {job.start}-{job.end} of {job.source_frames}, "
                  f"{job.clip.width}x{job.clip.height} {job.codec} {job.enc.pix_fmt}, {job.tags}, "
                  f"{copy.description if copy else 'audio not copied'}"
                  + (f"; {job.enc.note}" if job.enc.note else ""), file=sys.stderr)
            with tqdm(total=job.clip.num_frames, unit="frame", desc="colorize", file=sys.stderr,
                      disable=not bar) as progress:
                for i, frame in enumerate(job.clip.frames(close=True)):
                    if stop is not None and stop():
                        raise Stopped(f"stopped before frame {job.start + i}")
                    av_frame = to_av_frame(frame, job.enc.pix_fmt, job.tags)
                    av_frame.pts = i
                    av_frame.time_base = frame_tb
                    out.mux(stream.encode(av_frame))
                    written += 1
                    if copy is not None:
                        copy.write_until(Fraction(i + 1) / fps)
                    progress.update(1)
            out.mux(stream.encode(None))
            if copy is not None:
                copy.write_until(None)
    finally:
        if copy is not None:
            copy.close()
    return written


def render_range(args: argparse.Namespace, start: int, stop: int, path: Path,
                 should_stop: Callable[[], bool] | None = None) -> int:
    """Render frames [start, stop) of the colourized INPUT, without audio, into ``path`` exactly as a single
    ``colorgan-render --start start --end stop-1 --no-audio`` writes them (container and codec by
    ``args.output``'s extension and ``--codec``); returns the number of frames written. No temporary, no rename:
    the caller owns ``path`` (the cluster render writes its chunks this way). ``should_stop``: see ``write``."""
    chunk_args = argparse.Namespace(**{**vars(args), "start": start, "end": stop - 1, "no_audio": True})
    job = prepare(chunk_args)
    return write(job, chunk_args, path, audio=False, bar=False, stop=should_stop)


def render(args: argparse.Namespace) -> int:
    from .model_io import clear_stale_temporaries

    job = prepare(args)
    for stale in clear_stale_temporaries(args.output):
        print(f"{PROG}: removed {stale.name}, left by an interrupted render", file=sys.stderr)
    tmp = temporary_path(args.output)
    signals = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {s: signal.signal(s, _raise_terminated) for s in signals}
    try:
        write(job, args, tmp, audio=not args.no_audio, bar=not args.quiet)
        os.replace(tmp, args.output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    print(f"{PROG}: wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return 0


def adapted_path(output: Path) -> Path:
    """Where ``--adapt`` keeps the adapted model: next to OUTPUT, for reuse with ``--model``."""
    return output.with_name(output.name + ".adapted.safetensors")


def adapt_first(args: argparse.Namespace) -> int:
    """``--adapt``: run ``colorgan-adapt`` (through its console-script wrapper: the filter package does not import
    the training tools) and point ``args.model`` at its result; returns its exit status."""
    from .entry_points import adapt

    if args.references is None:
        raise RenderError("--adapt needs --references DIR (the painted keyframes to adapt to)")
    check_references(args.references)
    out = adapted_path(args.output)
    argv = [str(args.input), "--references", str(args.references), "--out", str(out)]
    argv += ["--base", str(args.model)] if args.model is not None else []
    argv += ["--steps", str(args.adapt_steps)] if args.adapt_steps is not None else []
    argv += ["--device", args.device] + (["-q"] if args.quiet else [])
    status = adapt(argv)
    if status == 0:
        args.model = str(out)
        print(f"{PROG}: rendering with the adapted model {out} (reuse it with --model)", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.adapt and (status := adapt_first(args)) != 0:
            return status
        if args.workers is not None or args.cluster is not None:
            from .cluster import render_cluster

            render_cluster(args)
            return 0
        return render(args)
    except RenderError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; {args.output} not written", file=sys.stderr)
        return 130
    except _Terminated as e:
        print(f"{PROG}: terminated; {args.output} not written", file=sys.stderr)
        return 128 + int(e.args[0])
    except Exception as e:  # decoding, inference or encoding failed mid-way: say what, keep the traceback short
        print(f"{PROG}: error: {type(e).__name__}: {e}; {args.output} not written", file=sys.stderr)
        return 1


if __name__ == "__main__":  # python -m vs_colorgan.render: run the imported module's main, whose RenderError is
    from vs_colorgan.render import main as _main  # the one vs_colorgan.cluster raises (not __main__'s copy)

    raise SystemExit(_main())
