"""Image and video files outside VapourSynth: which suffixes are which, and the one image decoder.

Every picture the project reads goes through :func:`decode_image` (OpenCV, the filter's own dependency: it
keeps alpha and 16-bit samples): the filter's keyframe references (:func:`vs_colorgan.reference.references.read_image`,
which keeps both), and, through :func:`read_rgb` (RGB uint8, transparency resolved), training data,
``colorgan-gather`` and ``colorgan-eval``'s image folders. Training videos are decoded through
:func:`video_frame_count` / :func:`read_video_frame` (PyAV, the decoder ``colorgan-render`` uses).

It sits beside the filter's core, not under :mod:`vs_colorgan.render`, because the filter, training and
evaluation all read it.

>>> rgb = read_rgb("photo.jpg", min_short=256)      # (H, W, 3) uint8, or None if unreadable
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".gif"})
VIDEO_EXTS = frozenset({".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".y4m"})

Transparency = Literal["white", "reject", "cutout"]
CUTOUT_GRAY = 128  # neutral background a transparent cut-out is composited on


JPEG_MAGIC = b"\xff\xd8\xff"
# OpenCV's reduced decodes (libjpeg's DCT scaling for JPEG): factor -> imread flag
_REDUCED = {8: "IMREAD_REDUCED_COLOR_8", 4: "IMREAD_REDUCED_COLOR_4", 2: "IMREAD_REDUCED_COLOR_2"}


def decode_image(source: str | Path | bytes, *, reduce: int = 1) -> np.ndarray | None:
    """The one image decoder: a file (or its bytes) -> its samples as stored, in RGB order: (h, w) gray,
    (h, w, 3) RGB or (h, w, 4) RGBA, uint8 or uint16; None when it cannot be read. ``reduce`` (2, 4 or 8)
    decodes at that fraction of the size (colour only, no alpha: for JPEGs, libjpeg's fast DCT scaling)."""
    import cv2  # the filter's dependency; imported here so that listing the module stays cheap

    flag = getattr(cv2, _REDUCED[reduce]) if reduce > 1 else cv2.IMREAD_UNCHANGED
    try:
        if isinstance(source, bytes):
            data = cv2.imdecode(np.frombuffer(source, np.uint8), flag)
        else:
            data = cv2.imread(str(source), flag)
    except cv2.error:
        return None
    if data is None or data.size == 0:
        return None
    if data.ndim == 3:
        data = data[..., [2, 1, 0, 3][: data.shape[2]]]  # OpenCV decodes BGR(A)
    return np.ascontiguousarray(data)


def _is_jpeg(source: str | Path | bytes) -> bool:
    if isinstance(source, bytes):
        return source[:3] == JPEG_MAGIC
    try:
        with open(source, "rb") as f:
            return f.read(3) == JPEG_MAGIC
    except OSError:
        return False


def _decode_at_least(source: str | Path | bytes, *, min_short: int | None, min_long: int | None) -> np.ndarray | None:
    """Decode ``source``; a JPEG at the smallest DCT scale (1/8, 1/4, 1/2) whose short side stays >= ``min_short``
    and long side >= ``min_long`` (what Pillow's ``draft`` did before this reader was OpenCV's)."""
    if (min_short or min_long) and _is_jpeg(source):
        for factor in sorted(_REDUCED, reverse=True):
            small = decode_image(source, reduce=factor)
            if small is not None and min(small.shape[:2]) >= (min_short or 0) \
                    and max(small.shape[:2]) >= (min_long or 0):
                return small
    return decode_image(source)


def read_rgb(source: str | Path | bytes, *, max_side: int | None = None, min_short: int | None = None,
             transparent: Transparency = "white") -> np.ndarray | None:
    """RGB uint8 ``(H, W, 3)`` of an image file (or its bytes), or ``None`` if it cannot be read.

    * ``max_side``: shrink (area average) to at most this side. ``min_short``: a JPEG may be decoded at 1/2,
      1/4 or 1/8 scale (DCT scaling, much faster) as long as its short side stays >= ``min_short``.
    * ``transparent``: what a picture with transparent pixels becomes: ``"white"`` composited on white;
      ``"reject"`` None (an icon or logo, not a photograph); ``"cutout"`` composited on neutral gray and
      cropped to the opaque object (photo cut-outs such as Tux Paint's stamps).
    """
    data = _decode_at_least(source, min_short=None if max_side else min_short, min_long=max_side)
    if data is None:
        return None
    if data.dtype == np.uint16:  # 16-bit samples: the nearest 8-bit value
        data = ((data.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif data.dtype != np.uint8:
        return None
    if data.ndim == 2:
        data = np.repeat(data[..., None], 3, axis=2)
    if data.shape[2] == 4:
        data = _resolve_alpha(data, transparent)
        if data is None:
            return None
    if max_side and max(data.shape[:2]) > max_side:
        import cv2

        h, w = data.shape[:2]
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        data = cv2.resize(data, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(data[..., :3])


def _resolve_alpha(rgba: np.ndarray, transparent: Transparency) -> np.ndarray | None:
    """RGBA uint8 -> RGB uint8 by the ``transparent`` rule of :func:`read_rgb`; None for a rejected picture."""
    alpha = rgba[..., 3]
    if alpha.min() == 255:
        return rgba[..., :3]
    if transparent == "reject":
        return None
    if transparent == "cutout":
        rows, cols = np.nonzero(alpha > 16)
        if rows.size == 0:
            return None
        rgba = rgba[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        alpha = rgba[..., 3]
    level = CUTOUT_GRAY if transparent == "cutout" else 255
    a = alpha[..., None].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * a + np.float32(level) * (1.0 - a)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def video_frame_count(path: str | Path) -> int:
    """Frames in a video (the container's count, else by decoding); 0 if unreadable."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.frames > 0:
                return int(stream.frames)
            return sum(1 for _ in container.decode(stream))
    except (av.error.FFmpegError, IndexError, OSError):
        return 0


def read_video_frame(path: str | Path, index: int) -> np.ndarray | None:
    """RGB uint8 frame ``index`` (0-based, decode order = display order for the constant-frame-rate clips
    this reads) of a video, or None. Seeks to the key frame before it, then decodes forward, placing each
    frame by its timestamp."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            tb = stream.time_base
            start = stream.start_time or 0
            if rate and tb and index > 0:
                target = start + int(round(index / float(rate) / float(tb)))
                container.seek(target, stream=stream, backward=True, any_frame=False)
                for frame in container.decode(stream):
                    if frame.pts is None:
                        break  # no timestamps: fall back to counting from the start
                    i = int(round((frame.pts - start) * float(tb) * float(rate)))
                    if i == index:
                        return frame.to_ndarray(format="rgb24")
                    if i > index:
                        return None
                container.seek(start, stream=stream, backward=True, any_frame=False)
            for i, frame in enumerate(container.decode(stream)):
                if i == index:
                    return frame.to_ndarray(format="rgb24")
            return None
    except (av.error.FFmpegError, IndexError, OSError):
        return None


def read_video_frames(path: str | Path, *, max_short: int | None = None) -> list[np.ndarray]:
    """Every frame of a video as RGB uint8, decoded in order ([] if unreadable), each reduced (area
    interpolation) to at most ``max_short`` on its short side when given, to keep a clip in memory.

    Decoding in order, not seeking by index: a container's frame count can be wrong (Debian's ``tree.avi``
    says 444 and holds 68), so :func:`read_video_frame` cannot reach every frame of such a file.
    """
    import av
    import cv2

    frames = []
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                rgb = frame.to_ndarray(format="rgb24")
                h, w = rgb.shape[:2]
                if max_short and min(h, w) > max_short:
                    s = max_short / min(h, w)
                    rgb = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
                frames.append(rgb)
    except (av.error.FFmpegError, IndexError, OSError):
        return []
    return frames
