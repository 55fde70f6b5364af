"""Image and video files outside VapourSynth: which suffixes are which, and the one image reader.

Training data, ``colorgan-gather``, ``colorgan-eval``'s image folders and the keyframe references all
read pictures through :func:`read_rgb` (Pillow, imported when first needed: the filter itself never
needs it), and decode training videos through :func:`video_frame_count` / :func:`read_video_frame`
(PyAV, the decoder ``colorgan-render`` uses).

>>> rgb = read_rgb("photo.jpg", min_short=256)      # (H, W, 3) uint8, or None if unreadable
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Literal

import numpy as np

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".gif"})
VIDEO_EXTS = frozenset({".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".y4m"})

Transparency = Literal["white", "reject", "cutout"]
CUTOUT_GRAY = 128  # neutral background a transparent cut-out is composited on


def read_rgb(source: str | Path | bytes, *, max_side: int | None = None, min_short: int | None = None,
             transparent: Transparency = "white") -> np.ndarray | None:
    """RGB uint8 ``(H, W, 3)`` of an image file (or its bytes), or ``None`` if it cannot be read.

    * ``max_side``: thumbnail to at most this side. ``min_short``: a JPEG may be decoded at 1/2, 1/4 or
      1/8 scale (DCT scaling, much faster) as long as its short side stays >= ``min_short``.
    * ``transparent``: what a picture with transparent pixels becomes: ``"white"`` composited on white;
      ``"reject"`` None (an icon or logo, not a photograph); ``"cutout"`` composited on neutral gray and
      cropped to the opaque object (photo cut-outs such as Tux Paint's stamps).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            if max_side:
                im.draft("RGB", (max_side, max_side))
            elif min_short:
                w, h = im.size
                short = min(w, h)
                if short > min_short:
                    im.draft("RGB", (math.ceil(w * min_short / short), math.ceil(h * min_short / short)))
            im.load()
            if im.mode in ("RGBA", "LA", "P", "PA"):
                im = im.convert("RGBA")
                if im.getextrema()[3][0] < 255:
                    if transparent == "reject":
                        return None
                    box = None
                    if transparent == "cutout":
                        box = im.getchannel("A").point(lambda a: 255 if a > 16 else 0).getbbox()
                        if box is None:
                            return None
                    level = CUTOUT_GRAY if transparent == "cutout" else 255
                    im = Image.alpha_composite(Image.new("RGBA", im.size, (level, level, level, 255)), im)
                    if box is not None:
                        im = im.crop(box)
            im = im.convert("RGB")
            if max_side and max(im.size) > max_side:
                im.thumbnail((max_side, max_side))
            return np.asarray(im)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError, EOFError):
        return None


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
