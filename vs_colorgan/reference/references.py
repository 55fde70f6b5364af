"""Reference images for ``colorize(references=...)``: what the user may pass, reading and validating it.

Accepted forms (checked in full before the graph is built, every problem a :class:`ColorizeError` naming the
frame and the file):

* a dict ``{frame_number: image}``, ``image`` one of: a path to a PNG/JPEG (anything OpenCV reads), an RGB
  array (H, W, 3) or RGBA array (H, W, 4) - uint8, uint16 or float in [0, 1], gamma-encoded R'G'B' in that
  order - or a one-frame RGB or YUV VapourSynth clip;
* a folder holding ``ref_NNNNNN.png`` / ``.jpg`` files named by frame number (the layout HAVC's exemplar
  modes read, so existing reference folders work; ``colorgan-keyframes`` writes it).

An image with an alpha channel that is not fully opaque is *partial*: only its painted pixels (alpha > 0)
carry colour, and the rest of the keyframe's chroma is filled from them (:mod:`vs_colorgan.reference.scribble`).
Images of another size are resized to the clip's (area averaging when shrinking, bicubic when enlarging),
as long as their aspect ratio is within :data:`ASPECT_TOLERANCE` of the clip's.

Files are read here once to validate them, then dropped: :meth:`Reference.load` reads them again when the
filter needs them, so a folder of hundreds of references does not sit in memory.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import vapoursynth as vs

from ..errors import ColorizeError
from ..formats import default_matrix
from ..media import decode_image

REF_NAME = re.compile(r"^ref_(\d+)\.(png|jpe?g)$", re.IGNORECASE)
ASPECT_TOLERANCE = 0.05  # relative aspect-ratio difference still resized to fit (rounding of odd sizes, overscan)
GRAY_TOLERANCE = 2.0 / 255.0  # max(R', G', B') - min(R', G', B') below this everywhere: a gray image, not a colour one

ReferenceImage = Union[str, os.PathLike, np.ndarray, vs.VideoNode]
ReferenceSpec = Union[Mapping[int, ReferenceImage], str, os.PathLike]

ACCEPTED = ("a dict {frame number: image path, RGB(A) array or one-frame colour clip}, or a folder of "
            "ref_NNNNNN.png/.jpg files")


@dataclass(frozen=True)
class Reference:
    """One validated reference: the frame it colours and where its pixels come from."""

    frame: int
    origin: str  # for messages: the file path, or "an array" / "a clip"
    path: Path | None = None  # read again by load()
    array: np.ndarray | None = field(default=None, repr=False)  # (h, w, 3|4) float32 in [0, 1], in-memory forms
    partial: bool = False  # has painted strokes only (alpha), to be filled

    def describe(self) -> str:
        return f"frame {self.frame} ({self.origin})"

    def load(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The image at the clip's size: R'G'B' (height, width, 3) float32 in [0, 1] and, for a partial
        reference, its alpha (height, width) float32 in [0, 1] (None for a complete one)."""
        pixels = self.array if self.array is not None else read_image(self.path, self.frame)
        return fit_to_clip(pixels, width, height, self.describe())


def read_image(path: Path, frame: int) -> np.ndarray:
    """An image file -> (h, w, 3|4) float32 R'G'B'(A) in [0, 1]; raises ColorizeError when it cannot be used.
    Decoded by :func:`vs_colorgan.media.decode_image`, which keeps alpha (strokes) and 16-bit samples."""
    where = f"\"references\": frame {frame} ({path})"
    if not Path(path).is_file():
        raise ColorizeError(f"{where}: no such file")
    data = decode_image(path)
    if data is None:
        raise ColorizeError(f"{where}: cannot be read as an image (PNG or JPEG expected)")
    if data.ndim == 2 or data.shape[2] not in (3, 4):
        raise ColorizeError(f"{where}: is a single-channel (gray) image; a reference must be a colour image "
                            f"(RGB, or RGBA with strokes)")
    scale = 65535.0 if data.dtype == np.uint16 else 255.0
    return data.astype(np.float32) / np.float32(scale)


def array_pixels(value: np.ndarray, where: str) -> np.ndarray:
    """An RGB(A) array as given -> (h, w, 3|4) float32 in [0, 1]."""
    if value.ndim != 3 or value.shape[2] not in (3, 4):
        raise ColorizeError(f"{where}: an array must be RGB (height, width, 3) or RGBA (height, width, 4), "
                            f"not of shape {value.shape}")
    if value.dtype == np.uint8:
        return value.astype(np.float32) / np.float32(255.0)
    if value.dtype == np.uint16:
        return value.astype(np.float32) / np.float32(65535.0)
    if np.issubdtype(value.dtype, np.floating):
        pixels = value.astype(np.float32)
        if not np.isfinite(pixels).all() or pixels.min() < 0.0 or pixels.max() > 1.0:
            raise ColorizeError(f"{where}: a float array must hold values in [0, 1], not "
                                f"[{np.nanmin(pixels):g}, {np.nanmax(pixels):g}]")
        return pixels
    raise ColorizeError(f"{where}: an array must be uint8, uint16 or float in [0, 1], not {value.dtype}")


def clip_pixels(value: vs.VideoNode, where: str) -> np.ndarray:
    """A one-frame RGB or YUV clip -> (h, w, 3) float32 R'G'B' in [0, 1]."""
    fmt = value.format
    if value.num_frames != 1:
        raise ColorizeError(f"{where}: a clip must have exactly one frame, not {value.num_frames}")
    if fmt is None or fmt.id == 0 or value.width == 0 or value.height == 0:
        raise ColorizeError(f"{where}: a clip must have a constant format and size")
    if fmt.color_family not in (vs.RGB, vs.YUV):
        raise ColorizeError(f"{where}: a clip must be RGB or YUV (a colour image), not {fmt.name}")
    if fmt.color_family == vs.YUV:
        matrix = int(value.get_frame(0).props.get("_Matrix", 2))
        if matrix == 2:
            matrix = default_matrix(value.width, value.height)
        value = vs.core.resize.Bicubic(value, format=vs.RGBS, matrix_in=matrix)
    else:
        value = vs.core.resize.Point(value, format=vs.RGBS)
    f = value.get_frame(0)
    return np.clip(np.dstack([np.asarray(f[p]) for p in range(3)]), 0.0, 1.0).astype(np.float32)


def fit_to_clip(pixels: np.ndarray, width: int, height: int, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize (h, w, 3|4) pixels to the clip's size; split off alpha (None when absent or fully opaque)."""
    import cv2

    check_shape(pixels, width, height, where)
    h, w = pixels.shape[:2]
    if (w, h) != (width, height):
        shrink = w * h > width * height
        pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
        pixels = np.clip(pixels, 0.0, 1.0)
    rgb = np.ascontiguousarray(pixels[..., :3])
    alpha = pixels[..., 3] if pixels.shape[2] == 4 else None
    if alpha is not None and alpha.min() >= 1.0:
        alpha = None
    return rgb, (np.ascontiguousarray(alpha) if alpha is not None else None)


def check_shape(pixels: np.ndarray, width: int, height: int, where: str) -> None:
    """Raise unless the image can be resized to the clip's size without distorting it."""
    h, w = pixels.shape[:2]
    if abs((w / h) / (width / height) - 1.0) > ASPECT_TOLERANCE:
        raise ColorizeError(f"\"references\": {where}: is {w}x{h}, whose shape does not match the clip's "
                            f"{width}x{height} (aspect ratios within {ASPECT_TOLERANCE:.0%} are resized); "
                            f"crop or pad it to the clip's shape")


def check_pixels(pixels: np.ndarray, where: str) -> bool:
    """Raise unless the image carries colour; returns whether it is partial (strokes on transparency)."""
    if pixels.shape[0] < 2 or pixels.shape[1] < 2:
        raise ColorizeError(f"\"references\": {where}: is {pixels.shape[1]}x{pixels.shape[0]}, too small")
    spread = pixels[..., :3].max(axis=2) - pixels[..., :3].min(axis=2)
    if pixels.shape[2] == 4 and pixels[..., 3].min() < 1.0:
        painted = pixels[..., 3] > 0.0
        if not painted.any():
            raise ColorizeError(f"\"references\": {where}: is fully transparent: no strokes to take colour from")
        return True
    if spread.max() < GRAY_TOLERANCE:
        raise ColorizeError(f"\"references\": {where}: has no colour (R = G = B everywhere); colour it, paint "
                            f"colour strokes on a transparent layer and save it as a PNG with alpha, or delete it")
    return False


def folder_entries(folder: Path) -> dict[int, Path]:
    """``ref_NNNNNN.png|jpg`` files of ``folder`` by frame number."""
    found: dict[int, Path] = {}
    for entry in sorted(folder.iterdir()):
        m = REF_NAME.match(entry.name)
        if m is None or not entry.is_file():
            continue
        frame = int(m.group(1))
        if frame in found:
            raise ColorizeError(f"\"references\": frame {frame} has two files in {folder}: {found[frame].name} and "
                                f"{entry.name}; keep one")
        found[frame] = entry
    if not found:
        raise ColorizeError(f"\"references\": the folder {folder} has no ref_NNNNNN.png or ref_NNNNNN.jpg files "
                            f"(NNNNNN the frame number, e.g. ref_000000.png)")
    return found


def load_references(references: Any, *, num_frames: int, width: int, height: int) -> dict[int, Reference]:
    """Validate ``references`` (see the module docstring) against a clip; returns them by frame, sorted.

    >>> refs = load_references("refs/", num_frames=clip.num_frames, width=clip.width, height=clip.height)
    """
    if isinstance(references, (str, os.PathLike)):
        folder = Path(references)
        if not folder.is_dir():
            raise ColorizeError(f"\"references\" must be {ACCEPTED}; {str(folder)!r} is not a folder")
        items: dict[Any, ReferenceImage] = dict(folder_entries(folder))
    elif isinstance(references, Mapping):
        if not references:
            raise ColorizeError(f"\"references\" must be {ACCEPTED}, not an empty dict")
        items = dict(references)
    else:
        raise ColorizeError(f"\"references\" must be {ACCEPTED}, not {type(references).__name__}")
    out: dict[int, Reference] = {}
    for frame in sorted(items, key=lambda k: (not isinstance(k, int), str(k) if not isinstance(k, int) else k)):
        value = items[frame]
        if not isinstance(frame, (int, np.integer)) or isinstance(frame, bool):
            raise ColorizeError(f"\"references\": keys must be frame numbers (int), not {frame!r}")
        frame = int(frame)
        if isinstance(value, (str, os.PathLike)):
            ref = Reference(frame, str(value), path=Path(value))
        elif isinstance(value, np.ndarray):
            ref = Reference(frame, "an array", array=array_pixels(value, f"\"references\": frame {frame} (an array)"))
        elif isinstance(value, vs.VideoNode):
            ref = Reference(frame, "a clip", array=clip_pixels(value, f"\"references\": frame {frame} (a clip)"))
        else:
            raise ColorizeError(f"\"references\": frame {frame}: the image must be a path, an RGB(A) array or a "
                                f"one-frame colour clip, not {type(value).__name__}")
        if not 0 <= frame < num_frames:
            raise ColorizeError(f"\"references\": {ref.describe()} is outside the clip (frames 0-{num_frames - 1})")
        pixels = ref.array if ref.array is not None else read_image(ref.path, frame)
        partial = check_pixels(pixels, ref.describe())
        check_shape(pixels, width, height, ref.describe())  # before any frame is rendered
        out[frame] = Reference(frame, ref.origin, path=ref.path, array=ref.array, partial=partial)
    return out
