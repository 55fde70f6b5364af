"""Encoding with PyAV: the pieces the single render and the clustered one (:mod:`vs_colorgan.render.cluster`)
share. Codec and container choice, the pixel format and colour tags the encoder gets, the source's audio,
a job's frames encoded into a file (:func:`write`) and chunk files remuxed into one (:func:`stitch`).

FFmpeg's libraries come in the ``av`` wheel: no system ffmpeg. ``av`` and VapourSynth are imported inside
the functions that need them, so that the command line answers ``--help`` and bad arguments quickly.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from .arguments import PROG, RenderError, raise_pending_signal

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


@dataclass(frozen=True, kw_only=True)
class EncodeFormat:
    """What is handed to the encoder: the VapourSynth format to convert to (or None) and FFmpeg's pix_fmt."""

    convert_to: int | None  # a vs.PresetVideoFormat id, or None when the filter's output goes as it is
    pix_fmt: str
    note: str = ""  # said on stderr when the output format differs from the filter's


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


# -- a job's frames into a file ------------------------------------------------------------------------------

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
    with contextlib.ExitStack() as closing:  # the audio source is closed however the block ends
        with av.open(str(path), mode="w", format=job.muxer, options=muxer_options(job.codec)) as out:
            out.metadata[START_KEY] = str(job.start)
            stream = add_video_stream(out, job, args)
            if audio:
                copy = AudioCopy(job.input, out, Fraction(job.start) / fps, Fraction(job.end + 1) / fps)
                closing.callback(copy.close)
            print(f"{PROG}: {job.input} -> {args.output}: frames {job.start}-{job.end} of {job.source_frames}, "
                  f"{job.clip.width}x{job.clip.height} {job.codec} {job.enc.pix_fmt}, {job.tags}, "
                  f"{copy.description if copy else 'audio not copied'}"
                  + (f"; {job.enc.note}" if job.enc.note else ""), file=sys.stderr)
            with tqdm(total=job.clip.num_frames, unit="frame", desc="colorize", file=sys.stderr,
                      disable=not bar) as progress:
                for i, frame in enumerate(job.clip.frames(close=True)):
                    raise_pending_signal()
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
    return written


def count_frames(path: Path) -> int:
    """Video packets (= frames) in ``path``, read without decoding."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return sum(1 for p in c.demux(stream) if p.size)


@dataclass(frozen=True)
class Part:
    """A file of consecutive frames for :func:`stitch`: ``frames`` frames, the first at ``offset`` (counted from
    the first frame of the stitched file)."""

    path: Path
    offset: int
    frames: int


def stitch(parts: Sequence[Part], path: Path, *, source: Path | None, start: int, end: int, muxer: str, codec: str,
           fps: Fraction) -> int:
    """Remux ``parts`` in order into ``path``: the video packets as they are, timestamps from the global frame
    index, then (``source`` given) the source's audio for frames ``start``..``end``, interleaved as
    :func:`write` does. Returns the number of video frames written."""
    import av

    copy = None
    frames = 0
    with contextlib.ExitStack() as closing:  # the audio source is closed however the block ends
        with av.open(str(path), mode="w", format=muxer, options=muxer_options(codec)) as out:
            out.metadata[START_KEY] = str(start)
            with av.open(str(parts[0].path)) as first:
                stream = out.add_stream_from_template(first.streams.video[0])
            stream.codec_context.framerate = fps  # as add_stream(rate=fps) sets it (Matroska: the default duration)
            if source is not None:
                copy = AudioCopy(source, out, Fraction(start) / fps, Fraction(end + 1) / fps)
                closing.callback(copy.close)
            for part in parts:
                frames = _remux_part(part, out, stream, codec=codec, fps=fps, copy=copy, frames=frames)
                if copy is not None and codec != "ffv1":
                    copy.write_until(Fraction(part.offset + part.frames) / fps)
            if copy is not None:
                copy.write_until(None)
    return frames


def _remux_part(part: Part, out: Any, stream: Any, *, codec: str, fps: Fraction, copy: AudioCopy | None,
                frames: int) -> int:
    """One part's video packets into ``stream`` of ``out``; returns the frame count so far."""
    import av

    tb = 1 / fps
    with av.open(str(part.path)) as c:
        src = c.streams.video[0]
        for packet in c.demux(src):
            if not packet.size:
                continue
            pts = int(round(packet.pts * src.time_base * fps)) + part.offset
            dts = pts if packet.dts is None or codec == "ffv1" else \
                int(round(packet.dts * src.time_base * fps)) + part.offset
            packet.pts, packet.dts, packet.duration = pts, dts, 0
            packet.time_base = tb
            packet.stream = stream
            out.mux(packet)
            frames += 1
            if copy is not None and codec == "ffv1":  # intra-only: audio interleaved frame by frame
                copy.write_until(Fraction(frames) / fps)
    return frames
