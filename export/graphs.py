"""The modules that get traced into ONNX: one per interface, built around a generator.

* :class:`NativeGraph` - ``l`` = L_norm (N, 1, H, W) -> ``ab`` = ab_norm (N, 2, H, W). H and W must be
  multiples of the architecture's ``size_multiple``; the caller (vs_colorgan's ORT backend) resizes.
* :class:`VsmlrtGraph` - ``gray`` in [0, 1] (1, 1, H, W) -> ``rgb`` sRGB (1, 3, H, W), any H and W: the
  whole per-frame pipeline of the filter in one graph, so that vs-mlrt's
  ``core.ort.Model(clip, network_path=...)`` runs it on a GRAYS clip and returns RGBS.

Colour maths comes from :mod:`vs_colorgan.color` (one source of truth); these modules only trace it.

Both take an optional half-precision core (``fp16=True``): the generator runs in float16 while the
graph's inputs and outputs stay float32 (vs-mlrt refuses any other IO type, "expects network IO
with type fp32", vsort/vs_onnxruntime.cpp) and the colour and size arithmetic stays float32
(``1080 * 256`` overflows float16).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vs_colorgan.color import MATRIX_COEFFICIENTS, gray_to_l, merge_lab, normalize_l, rgb_to_ycbcr, ycbcr_to_rgb
from vs_colorgan.model_io import ModelConfig
from vs_colorgan.pipeline import MAX_RENDER_LONG_SIDE
from vs_colorgan.upsample import limit_to_gamut  # the filter's gamut limit: one source of truth


class _Core(nn.Module):
    """The generator, optionally in float16 behind float32 casts."""

    def __init__(self, model: nn.Module, *, fp16: bool) -> None:
        super().__init__()
        self.fp16 = fp16
        self.model = model.eval().half() if fp16 else model.eval().float()

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        if self.fp16:
            return self.model(l_norm.half()).float()
        return self.model(l_norm)


class NativeGraph(nn.Module):
    """L_norm (N, 1, H, W) -> ab_norm (N, 2, H, W); what vs_colorgan's ORT backend feeds."""

    input_names = ("l",)
    output_names = ("ab",)

    def __init__(self, model: nn.Module, *, fp16: bool = False) -> None:
        super().__init__()
        self.core = _Core(model, fp16=fp16)

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.core(l_norm)


def render_dims(height: torch.Tensor, width: torch.Tensor, render_size: int, multiple: int) -> torch.Tensor:
    """Network input size (float tensor [h, w]) for a frame of ``height`` x ``width`` (0-d float tensors).

    The short side becomes ``render_size``, the long side keeps the aspect ratio, and both are
    rounded to the nearest multiple of ``multiple`` (at least one multiple). Written in tensor ops so
    it traces into the graph (Shape -> Div -> Round -> Mul) instead of freezing one clip's size.
    """
    # Same operation order as the filter's ``round(side * render_size / short / multiple)``: the
    # product is exact in float32 and a quotient that is exactly k + 0.5 stays exact, so ONNX Round
    # (half to even, like Python's round) picks the same multiple as the filter.
    hw = torch.stack([height, width])
    short, long = torch.minimum(height, width), torch.maximum(height, width)
    dims = torch.clamp(torch.round(hw * render_size / short / multiple), min=1.0) * multiple
    # the filter's bound on the long side (pipeline.render_shape): past it, the long side is the bound and
    # the short side keeps the aspect ratio
    cap = float(MAX_RENDER_LONG_SIDE // multiple * multiple)
    capped_short = torch.clamp(torch.round(short * cap / long / multiple), min=1.0) * multiple
    capped = torch.where(hw >= long, torch.full_like(hw, cap), capped_short)
    return torch.where(dims.max() > cap, capped, dims)


def catmull_rom(x: torch.Tensor) -> torch.Tensor:
    """Bicubic kernel with b = 0, c = 0.5 (Mitchell & Netravali 1988 family; Catmull-Rom), support 2.

    ``core.resize.Bicubic``'s default (VapourSynth: filter_param_a = b = 0, filter_param_b = c = 0.5),
    the polynomials of zimg's ``BicubicFilter`` for those b, c, factored:
    ``(t - 1)(1.5 t^2 - t - 1)`` on [0, 1) and ``-0.5 (t - 1)(t - 2)^2`` on [1, 2). Both pieces vanish
    at t = 1 and the outer one at t = 2, so clamping t into each interval and adding selects the right
    piece without ``Where`` (slow in ONNX Runtime) or ``Pow``.
    """
    t = x.abs()
    near = torch.clamp(t, max=1.0)
    far = torch.clamp(t, min=1.0, max=2.0)
    return (near - 1.0) * (1.5 * near * near - near - 1.0) - 0.5 * (far - 1.0) * (far - 2.0) * (far - 2.0)


def resample_matrix(n_in: torch.Tensor, n_out: torch.Tensor) -> torch.Tensor:
    """(n_out, n_in) weights that resize one axis like ``core.resize.Bicubic`` (zimg) does.

    zimg's ``compute_filter`` (src/zimg/resize/filter.cpp): output sample ``i`` sits at
    ``pos = (i + 0.5) * n_in / n_out`` on the input grid (pixel ``k`` centred at ``k + 0.5``); when
    shrinking, the kernel is widened by the ratio (``step = min(n_out / n_in, 1)``: anti-aliasing, so a
    1080p frame going to 256 lines does not alias); taps beyond the edges are mirrored back
    (``-x`` and ``2 n - x``), and each row is normalised to sum to 1. The three evaluations below are
    the in-range tap and its two mirror images. This is what the filter's render-size luma is made with
    (``core.resize.Bicubic(luma, w, h, format=vs.GRAYS)``), so the network sees the same input here.

    A matrix rather than ONNX ``Resize``: Resize has no anti-aliasing before opset 18 (the default
    opset is 17), and the matrix needs only Range, Clip, arithmetic, ReduceSum and MatMul.
    """
    step = torch.clamp(n_out / n_in, max=1.0)
    pos = (torch.arange(n_out.to(torch.int64), dtype=torch.float32) + 0.5) * (n_in / n_out)
    centre = torch.arange(n_in.to(torch.int64), dtype=torch.float32) + 0.5
    pos, centre = pos.unsqueeze(1), centre.unsqueeze(0)
    w = (catmull_rom((centre - pos) * step) + catmull_rom((-centre - pos) * step)
         + catmull_rom((2.0 * n_in - centre - pos) * step))
    return w / w.sum(dim=1, keepdim=True)


def resize(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Resize (N, C, H, W) with the (H', H) and (W', W) matrices of :func:`resample_matrix`."""
    return rows @ x @ cols.transpose(0, 1)


class VsmlrtGraph(nn.Module):
    """Gray in [0, 1] (1, 1, H, W) -> sRGB (1, 3, H, W), any H and W.

    Per frame, as vs_colorgan.colorize does it: shrink the gray to the render size (short side
    ``render_size``, sides multiples of ``size_multiple``), take its L* (``gray_to_l``), predict ab.
    Then, with ``matrix=None`` (the default), enlarge ab bilinearly to the frame and convert the
    full-resolution L* of the gray with it to sRGB (``merge_lab``, clipped to [0, 1]): the output keeps
    the input's L*. With ``matrix`` (an ITU-T H.273 code, e.g. 1 = BT.709, 6 = SMPTE 170M), do what the
    filter does with the source luma: sRGB at render size (``merge_lab``) -> Cb, Cr of that matrix
    (``rgb_to_ycbcr``) -> enlarged bilinearly -> shrunk towards gray where Y' + chroma would leave
    R'G'B' [0, 1] (the filter's ``limit_to_gamut``) -> R'G'B' from the *input* Y' (``ycbcr_to_rgb``): the
    output's Y' in that matrix is the input gray exactly (no clipping; super-whites stay above 1).

    The output's height and width are those of the input by broadcasting with a full-resolution
    tensor derived from the input, which is what lets ONNX shape inference (run by vs-mlrt after it
    fixes the input shape, common/onnx_utils.cpp) find a static output shape for its frame buffers.
    vs-mlrt feeds a batch of 1; the graph itself takes any batch.
    """

    input_names = ("gray",)
    output_names = ("rgb",)

    def __init__(self, model: nn.Module, config: ModelConfig, *, fp16: bool = False, render_size: int | None = None,
                 matrix: int | None = None) -> None:
        super().__init__()
        self.core = _Core(model, fp16=fp16)
        self.render_size = int(render_size if render_size is not None else config.render_size)
        self.multiple = config.size_multiple
        if matrix is not None and matrix not in MATRIX_COEFFICIENTS:
            raise ValueError(f"VsmlrtGraph: \"matrix\" must be one of {sorted(MATRIX_COEFFICIENTS)} or None, not {matrix!r}")
        self.matrix = matrix

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        shape = torch._shape_as_tensor(gray).to(torch.float32)
        height, width = shape[2], shape[3]
        small = render_dims(height, width, self.render_size, self.multiple)
        gray_small = resize(gray, resample_matrix(height, small[0]), resample_matrix(width, small[1]))
        l_small = normalize_l(gray_to_l(gray_small))
        ab_small = self.core(l_small)
        # Enlarging needs no anti-aliasing: a plain bilinear Resize, sized from the input's shape
        # (traced as Shape -> Slice -> Resize), 6x cheaper in ORT than the two matrix products.
        size = gray.shape[-2:]
        if self.matrix is None:
            ab = F.interpolate(ab_small, size=size, mode="bilinear", align_corners=False)
            return merge_lab(normalize_l(gray_to_l(gray)), ab)
        kr, kb = MATRIX_COEFFICIENTS[self.matrix]
        _, cb, cr = rgb_to_ycbcr(merge_lab(l_small, ab_small), kr, kb)  # the new Y' is dropped
        cbcr = F.interpolate(torch.cat([cb, cr], dim=1), size=size, mode="bilinear", align_corners=False)
        cbcr = limit_to_gamut(gray, cbcr, kr, kb)
        return ycbcr_to_rgb(gray, cbcr[:, 0:1], cbcr[:, 1:2], kr, kb)
