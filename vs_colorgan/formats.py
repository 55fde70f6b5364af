"""Frame properties and sample formats: which matrix and range a frame is coded in, and the conversion
between plane samples and normalised values (Y' in [0, 1], Cb/Cr in [-0.5, 0.5]).

Quantisation follows ITU-R BT.601-7 / BT.709-6 section 4 (limited range: Y' = 219 Y + 16, C = 224 C + 128,
times 2^(bits-8)) and ITU-T H.273 (full range: Y' = (2^bits - 1) Y, C = (2^bits - 1) C + 2^(bits-1));
these are also zimg's (``core.resize``) conventions, so values we compute agree with what ``core.resize``
does to the same frame. Float planes are always full scale (VapourSynth's convention).

Property names are VapourSynth's: ``_Matrix``, ``_Transfer``, ``_Primaries`` hold ITU-T H.273 code points.
VapourSynth R81 renamed ``_ColorRange`` (0 = full, 1 = limited) to ``_Range`` (1 = full, 0 = limited, as
``core.resize``'s ``range`` argument); setting the old name stores the new one, so only ``_Range`` is read
and written.

Defaults when a frame says nothing (documented in docs/filter.md):

* ``_Matrix`` missing or 2 (unspecified): the ``matrix=`` option if given, else BT.709 (1) for HD and
  SMPTE 170M (6) for SD (width <= 1024 and height <= 576), the rule vs-tools and mpv use.
* ``_Range`` missing: limited for integer YUV and GRAY, full for float (always).
* ``_Transfer`` / ``_Primaries`` missing or unspecified: the usual companions of the matrix in use
  (:data:`MATRIX_COMPANIONS`), written on the output so players get a fully tagged clip.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .color import MATRIX_COEFFICIENTS
from .errors import ColorizeError
from .scratch import Scratch, take

UNSPECIFIED = 2
MATRIX_NAMES = {0: "RGB", 1: "BT.709", 2: "unspecified", 4: "FCC", 5: "BT.470BG", 6: "SMPTE 170M",
                7: "SMPTE 240M", 8: "YCgCo", 9: "BT.2020 NCL", 10: "BT.2020 CL", 11: "SMPTE 2085",
                12: "chromaticity-derived NCL", 13: "chromaticity-derived CL", 14: "ICtCp"}
# zimg's / vspipe's names for the matrices the colour path supports (``matrix_s`` values), for command lines
MATRIX_ALIASES: dict[str, int] = {"709": 1, "fcc": 4, "470bg": 5, "170m": 6, "601": 6, "240m": 7, "2020": 9, "2020ncl": 9}
# matrix -> (_Transfer, _Primaries) written when the input leaves them unspecified (ITU-T H.273 code points).
MATRIX_COMPANIONS: dict[int, tuple[int, int]] = {1: (1, 1), 4: (6, 4), 5: (6, 5), 6: (6, 6), 7: (7, 7), 9: (14, 9)}


def default_matrix(width: int, height: int) -> int:
    """BT.709 for HD, SMPTE 170M for SD (width <= 1024 and height <= 576)."""
    return 6 if width <= 1024 and height <= 576 else 1


def supported_matrices() -> str:
    return ", ".join(f"{m} ({MATRIX_NAMES[m]})" for m in sorted(MATRIX_COEFFICIENTS))


def check_matrix(matrix: int, what: str) -> int:
    if isinstance(matrix, bool) or not isinstance(matrix, int) or matrix not in MATRIX_COEFFICIENTS:
        name = f" ({MATRIX_NAMES[matrix]})" if isinstance(matrix, int) and matrix in MATRIX_NAMES else ""
        raise ColorizeError(f"{what} must be one of {supported_matrices()}, not {matrix!r}{name}")
    return matrix


def frame_range_is_full(props: Mapping[str, Any], is_float: bool) -> bool:
    """True for full range. Float is always full; integer: ``_Range`` (1 = full), limited when missing."""
    if is_float:
        return True
    return int(props.get("_Range", 0)) == 1


@dataclass(frozen=True, kw_only=True)
class FrameColorimetry:
    """How one frame is coded: what the callback needs to quantise and what it writes back."""

    matrix: int
    full_range: bool
    transfer: int
    primaries: int

    def output_props(self) -> dict[str, int]:
        return {"_Matrix": self.matrix, "_Range": int(self.full_range), "_Transfer": self.transfer,
                "_Primaries": self.primaries}


def resolve_colorimetry(props: Mapping[str, Any], *, width: int, height: int, is_float: bool,
                        fallback_matrix: int | None = None, gray: bool = False) -> FrameColorimetry:
    """Read (and default) a YUV or GRAY frame's colorimetry. Raises :class:`ColorizeError` for matrices
    the colour path cannot use (RGB-as-YUV, YCgCo, constant-luminance, ICtCp ...). For a GRAY source
    (``gray=True``) a ``_Matrix`` of 0 (left by a plane taken from an RGB clip) means unspecified."""
    matrix = int(props.get("_Matrix", UNSPECIFIED))
    if matrix == UNSPECIFIED or (gray and matrix == 0):
        matrix = fallback_matrix if fallback_matrix is not None else default_matrix(width, height)
    if matrix not in MATRIX_COEFFICIENTS:
        raise ColorizeError(
            f"frame property _Matrix must be one of {supported_matrices()} or 2 (unspecified), not {matrix} "
            f"({MATRIX_NAMES.get(matrix, 'unknown')}); set it with core.std.SetFrameProps(clip, _Matrix=...)"
        )
    companion = MATRIX_COMPANIONS[matrix]
    transfer = int(props.get("_Transfer", UNSPECIFIED))
    primaries = int(props.get("_Primaries", UNSPECIFIED))
    return FrameColorimetry(
        matrix=matrix,
        full_range=frame_range_is_full(props, is_float),
        transfer=companion[0] if transfer == UNSPECIFIED else transfer,
        primaries=companion[1] if primaries == UNSPECIFIED else primaries,
    )


def plane_to_tensor(plane: np.ndarray | torch.Tensor, *, device: torch.device | str = "cpu") -> torch.Tensor:
    """A plane as stored (H, W) -> float32 sample values (1, 1, H, W), unscaled (a copy: frames are read-only)."""
    if isinstance(plane, np.ndarray):
        plane = torch.from_numpy(plane.astype(np.float32))
    return plane.to(device=device, dtype=torch.float32)[None, None]


def unit_scale(bits: int, full_range: bool) -> tuple[float, float]:
    """Y' = (code - offset) * mul for integer luma: (offset, mul) of H.273 full range, BT.601/709 limited range."""
    if full_range:
        return 0.0, 1.0 / ((1 << bits) - 1)
    s = float(1 << (bits - 8))
    return 16.0 * s, 1.0 / (219.0 * s)


def code_to_unit(y: torch.Tensor, *, bits: int, full_range: bool, is_float: bool,
                 in_place: bool = False) -> torch.Tensor:
    """Luma sample values (float tensor) -> Y' in [0, 1] (not clipped); ``in_place``: into ``y`` (the same bits)."""
    if is_float:
        return y
    offset, mul = unit_scale(bits, full_range)
    if full_range:  # no subtraction of 0: one pass fewer
        return y.mul_(mul) if in_place else y * mul
    return (y.sub_(offset) if in_place else y - offset).mul_(mul)


def luma_to_unit(plane: np.ndarray | torch.Tensor, *, bits: int, full_range: bool, is_float: bool,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """Luma samples (H, W) of any VapourSynth sample type -> float32 Y' in [0, 1] (not clipped), (1, 1, H, W)."""
    return code_to_unit(plane_to_tensor(plane, device=device), bits=bits, full_range=full_range, is_float=is_float)


def quantize_chroma(c: torch.Tensor, *, bits: int, full_range: bool, is_float: bool,
                    out: tuple[np.ndarray, ...] | None = None, scratch: Scratch | None = None) -> np.ndarray | None:
    """Cb and/or Cr in [-0.5, 0.5] (clipped here), shape (H, W) or (2, H, W) -> numpy of the frame's sample type.

    Rounds half up (floor(x + 0.5)), as zimg does without dithering. With ``out`` (one writable (H, W) array
    per plane of ``c``, e.g. the planes of a VapourSynth frame, strided) the codes are written there, converted
    to the arrays' sample type in the same pass, and None is returned: no intermediate planes, no copy after;
    its work plane then comes from ``scratch`` where given (see :mod:`vs_colorgan.scratch`).
    """
    if c.device.type == "cpu" and not c.requires_grad:
        # numpy on the CPU: the same operations (the same bits), single-threaded SIMD passes; torch's two
        # intra-op threads waited for the core that ORT's inference held (see upsample._limit_to_gamut_cpu)
        x = c.numpy()
        x = np.clip(x, np.float32(-0.5), np.float32(0.5),
                    out=take(scratch if out is not None else None, "quantize", x.shape))
        if not is_float:
            scale, offset = code_scale(bits, full_range)
            x *= np.float32(scale)
            x += np.float32(offset)
            x += np.float32(0.5)
            np.floor(x, out=x)
            np.clip(x, np.float32(0.0), np.float32((1 << bits) - 1), out=x)
        if out is not None:
            for plane, dst in zip(x if x.ndim == 3 else x[None], out, strict=True):
                np.copyto(dst, plane, casting="unsafe")  # integral floats -> uint8/uint16 exactly
            return None
        return x if is_float else x.astype(np.uint8 if bits <= 8 else np.uint16)
    c = c.clamp(-0.5, 0.5)
    if not is_float:
        # in place on the clamped copy, the operations in the order of code = C * scale + offset; floor(code + 0.5)
        scale, offset = code_scale(bits, full_range)
        c = c.mul_(scale).add_(offset).add_(0.5).floor_().clamp_(0.0, float((1 << bits) - 1))
    if out is not None:
        planes = c if c.dim() == 3 else c[None]
        for plane, dst in zip(planes, out, strict=True):
            torch.from_numpy(dst).copy_(plane)  # integral floats -> uint8/uint16 exactly; float32 as is
        return None
    if is_float:
        return c.to(dtype=torch.float32).cpu().numpy()
    if bits <= 8:
        return c.to(torch.uint8).cpu().numpy()
    return c.to(torch.int32).cpu().numpy().astype(np.uint16)


def code_scale(bits: int, full_range: bool) -> tuple[float, float]:
    """code = C * scale + offset: H.273 full range, BT.601/709 limited range (module docstring)."""
    if full_range:
        return float((1 << bits) - 1), float(1 << (bits - 1))
    s = float(1 << (bits - 8))
    return 224.0 * s, 128.0 * s
