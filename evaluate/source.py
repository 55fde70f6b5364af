"""Ground truth as a VapourSynth clip, its black-and-white version, and frames as numpy arrays.

The evaluation takes the path users take: a video is opened with BestSource (``core.bs.VideoSource``),
made gray by setting its chroma to neutral (what a black-and-white film decodes to), and the gray
clip goes through ``vs_colorgan.colorize``. An image folder (e.g. the extracted frames of a DAVIS
sequence) becomes an RGB24 clip whose frames are read lazily, each image resized to cover one size
and centre-cropped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import vapoursynth as vs

from vs_colorgan.formats import default_matrix
from vs_colorgan.media import IMAGE_EXTS, read_rgb

core = vs.core

MATRIX_UNSPECIFIED = 2
MATRIX_RGB = 0


@dataclass(frozen=True, kw_only=True)
class Source:
    """Ground truth clip (its own format, ``_Matrix`` set) and how it was read."""

    clip: vs.VideoNode
    matrix: int  # YUV matrix (VapourSynth ``_Matrix``) used for every YUV <-> RGB conversion
    kind: str  # "video" or "images"
    path: Path


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` in natural order (``2.png`` before ``10.png``)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS]
    return sorted(files, key=_natural_key)


def cover_crop(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize ``img`` to cover ``width x height`` (keeping its aspect) and centre-crop to it."""
    h, w = img.shape[:2]
    if (w, h) == (width, height):
        return img
    scale = max(width / w, height / h)
    nw, nh = max(width, round(w * scale)), max(height, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    img = cv2.resize(img, (nw, nh), interpolation=interp)
    x0, y0 = (nw - width) // 2, (nh - height) // 2
    return img[y0 : y0 + height, x0 : x0 + width]


def _read_rgb(path: Path) -> np.ndarray:
    rgb = read_rgb(path)
    if rgb is None:
        raise vs.Error(f"colorgan-eval: cannot read image {str(path)!r}")
    return rgb


def image_folder_clip(folder: Path, *, size: tuple[int, int] | None = None, fps: int = 25) -> vs.VideoNode:
    """RGB24 clip of the images in ``folder``, read when a frame is asked for; every image is made
    ``size`` (width, height; default: the first image's) by :func:`cover_crop`."""
    files = list_images(folder)
    if not files:
        raise vs.Error(f"colorgan-eval: no images ({', '.join(sorted(IMAGE_EXTS))}) in folder {str(folder)!r}")
    if size is None:
        h, w = _read_rgb(files[0]).shape[:2]
        size = (w, h)
    width, height = size
    blank = core.std.BlankClip(format=vs.RGB24, width=width, height=height, length=len(files), fpsnum=fps, fpsden=1)

    def load(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        img = cover_crop(_read_rgb(files[n]), width, height)
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), img[..., p])
        return out

    clip = core.std.ModifyFrame(blank, blank, load)
    return core.std.SetFrameProps(clip, _Matrix=MATRIX_RGB)


def open_source(path: str | Path, *, frames: int | None = None, size: tuple[int, int] | None = None) -> Source:
    """Open a colour video (BestSource) or an image folder as the ground truth, first ``frames``
    frames only; a video whose ``_Matrix`` is unspecified gets :func:`default_matrix`."""
    path = Path(path)
    if path.is_dir():
        clip, kind = image_folder_clip(path, size=size), "images"
    elif path.is_file():
        clip, kind = core.bs.VideoSource(str(path)), "video"
        if size is not None:
            clip = clip.resize.Bicubic(width=size[0], height=size[1])
    else:
        raise vs.Error(f"colorgan-eval: {str(path)!r} is neither a video file nor a folder of images")
    if clip.format is None or clip.width == 0 or clip.height == 0:
        raise vs.Error(f"colorgan-eval: {str(path)!r} changes format or size between frames; not supported")
    if clip.format.sample_type != vs.INTEGER:
        raise vs.Error(f"colorgan-eval: {str(path)!r} is {clip.format.name}; an integer format is needed")
    if frames is not None:
        if frames < 1:
            raise vs.Error(f"colorgan-eval: --frames must be at least 1, not {frames}")
        clip = clip[: min(frames, clip.num_frames)]
    if clip.format.color_family == vs.RGB:
        matrix = default_matrix(clip.width, clip.height)
        clip = core.std.SetFrameProps(clip, _Matrix=MATRIX_RGB)
    else:
        matrix = clip.get_frame(0).props.get("_Matrix", MATRIX_UNSPECIFIED)
        if matrix in (MATRIX_UNSPECIFIED, MATRIX_RGB):
            matrix = default_matrix(clip.width, clip.height)
        clip = core.std.SetFrameProps(clip, _Matrix=matrix)
    return Source(clip=clip, matrix=int(matrix), kind=kind, path=path)


def gray_input(src: Source) -> vs.VideoNode:
    """The black-and-white version of the ground truth that the filter is given: the same YUV
    format with neutral chroma (an RGB source is first converted to YUV444P8 with ``src.matrix``).
    Its luma is exactly the ground truth's."""
    clip = src.clip
    if clip.format.color_family == vs.RGB:
        clip = clip.resize.Bicubic(format=vs.YUV444P8, matrix=src.matrix)
    if clip.format.color_family == vs.GRAY:
        return clip
    neutral = str(1 << (clip.format.bits_per_sample - 1))
    return core.std.Expr(clip, ["", neutral, neutral])


def luma8(clip: vs.VideoNode) -> vs.VideoNode:
    """Plane 0 as GRAY8 (for optical flow)."""
    y = clip if clip.format.color_family == vs.GRAY else core.std.ShufflePlanes(clip, 0, vs.GRAY)
    return y if y.format.id == vs.GRAY8 else y.resize.Point(format=vs.GRAY8)


def rgb24(clip: vs.VideoNode, matrix: int) -> vs.VideoNode:
    """``clip`` as RGB24 (bicubic chroma upsampling; ``matrix`` overrides the clip's own ``_Matrix``,
    which a filter's output may lack)."""
    if clip.format.color_family == vs.RGB:
        return clip if clip.format.id == vs.RGB24 else clip.resize.Point(format=vs.RGB24)
    if clip.format.color_family == vs.GRAY:
        g = clip if clip.format.id == vs.GRAY8 else clip.resize.Point(format=vs.GRAY8)
        return core.std.ShufflePlanes([g, g, g], [0, 0, 0], vs.RGB)
    return clip.resize.Bicubic(format=vs.RGB24, matrix_in=matrix)


def frame_array(frame: vs.VideoFrame) -> np.ndarray:
    """An RGB24 frame as ``(H, W, 3)`` uint8, or a GRAY8 one as ``(H, W)`` (copied)."""
    planes = [np.asarray(frame[p]) for p in range(frame.format.num_planes)]
    return planes[0].copy() if len(planes) == 1 else np.dstack(planes)
