"""Edge-aware chroma upsampling: the fast guided filter, and luma brought onto the chroma grid.

The network predicts chroma at render size (e.g. 256 px short side). Bilinear upsampling of that
chroma bleeds colour across edges by a few output pixels. Instead we use the guided filter
(K. He, J. Sun, X. Tang, "Guided Image Filtering", TPAMI 2013, Algorithm 1) in its fast form
(K. He, J. Sun, "Fast Guided Filter", arXiv:1505.00996, 2015, Algorithm 2): the local linear model
``q = a * I + b`` is fitted on the work grid (half the render size: the subsampling step ``s = 2`` of
Algorithm 2) with the luma there as guide ``I`` and the predicted chroma as input ``p``; the smoothed coefficients are upsampled bilinearly and applied to the
full-resolution luma, so chroma edges snap to the luma edges of the full-size frame.

For subsampled formats the full-resolution guide is the luma reduced onto the chroma sample grid,
respecting ``_ChromaLocation`` (:func:`luma_to_chroma_grid`).
"""
from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .scratch import Scratch, take

# VapourSynth ChromaLocation -> (horizontal, vertical) siting, each "cosited" (first luma sample),
# "center" (between samples) or "bottom" (last luma sample of the group).
_SITING: dict[int, tuple[str, str]] = {
    0: ("cosited", "center"),  # left (MPEG-2, H.264 default)
    1: ("center", "center"),  # center (MPEG-1, JPEG)
    2: ("cosited", "cosited"),  # top-left (BT.2020 / UHD)
    3: ("center", "cosited"),  # top
    4: ("cosited", "bottom"),  # bottom-left
    5: ("center", "bottom"),  # bottom
}


def chroma_siting(chroma_location: int) -> tuple[str, str]:
    """VapourSynth's ``_ChromaLocation`` -> the (horizontal, vertical) siting; unknown values read as 0 (left)."""
    return _SITING.get(int(chroma_location), _SITING[0])


def _window_counts(n: int, radius: int, like: torch.Tensor) -> torch.Tensor:
    """How many of the 2r+1 window positions around each index 0..n-1 fall inside 0..n-1."""
    j = torch.arange(n, device=like.device)
    return ((j + radius).clamp(max=n - 1) - (j - radius).clamp(min=0) + 1).to(like.dtype)


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, normalised by the pixels inside the image (He et al.'s ``f_mean``).

    Separable, one axis at a time. Radius <= 2: shifted sums; larger: O(1) per pixel with running sums
    (cumulative sums, differenced) as He et al. suggest (section 3.5), whose float32 error stays below 3e-5
    for rows up to 2048 values in [0, 1], far below the regulariser ``eps`` it feeds. Deterministic.
    """
    if radius == 0:
        return x
    k = 2 * radius + 1
    h, w = x.shape[-2:]
    counts = _window_counts(h, radius, x)[:, None] * _window_counts(w, radius, x)
    if radius <= 2:  # small windows: shifted sums of a zero-padded copy are cheaper than running sums
        p = F.pad(x, (radius, radius, radius, radius))
        rows = p[..., :, 0:w].clone()
        for i in range(1, k):
            rows += p[..., :, i:i + w]
        s = rows[..., 0:h, :].clone()
        for i in range(1, k):
            s += rows[..., i:i + h, :]
        return s / counts
    c = F.pad(x, (radius + 1, radius)).cumsum(-1)
    s = c[..., k:] - c[..., :-k]
    c = F.pad(s, (0, 0, radius + 1, radius)).cumsum(-2)
    s = c[..., k:, :] - c[..., :-k, :]
    return s / counts


@functools.lru_cache(maxsize=64)
def _window_counts_array(n: int, radius: int) -> np.ndarray:
    j = np.arange(n)
    return (np.minimum(j + radius, n - 1) - np.maximum(j - radius, 0) + 1).astype(np.float32)


def box_mean_array(x: np.ndarray, radius: int) -> np.ndarray:
    """:func:`box_mean` of a float32 array (C, h, w) or (h, w) on the CPU: OpenCV's box filter (sums over the
    zero-padded window) divided by the pixel counts inside the image. The same means to float32 rounding
    (~1e-7: another order of additions). Why: on the work grid (64x114 at render 128) torch's dispatch of the
    shifted sums cost ~0.1 ms per call, OpenCV's C++ a few microseconds per plane."""
    if radius == 0:
        return x
    k = 2 * radius + 1
    h, w = x.shape[-2:]
    counts = _window_counts_array(h, radius)[:, None] * _window_counts_array(w, radius)
    planes = x.reshape(-1, h, w)
    out = np.empty_like(planes)
    for c in range(planes.shape[0]):
        cv2.boxFilter(planes[c], -1, (k, k), dst=out[c], normalize=False, borderType=cv2.BORDER_CONSTANT)
    out /= counts
    return out.reshape(x.shape)


def guided_coefficients(p_low: torch.Tensor, i_low: torch.Tensor, *, radius: int, eps: float) -> torch.Tensor:
    """The box-filtered linear coefficients (N, 2C, h, w) of the guided filter, ``a`` then ``b`` per channel of
    ``p_low`` (N, C, h, w), guided by ``i_low`` (N, 1, h, w): He & Sun 2015, Algorithm 2, steps 2-5, all at low
    resolution (all box means in one pass). Steps 6 (bilinear) and 7 (q = a I + b at full size) follow in
    :func:`fast_guided_upsample`, or in :mod:`vs_colorgan.chroma_kernel`."""
    c = p_low.shape[1]
    if one_cpu_frame(p_low, i_low):
        return torch.from_numpy(_guided_coefficients_cpu(p_low[0].numpy(), i_low[0, 0].numpy(), radius, eps))[None]
    means = box_mean(torch.cat([i_low, p_low, i_low * i_low, i_low * p_low], dim=1), radius)
    mean_i, mean_p = means[:, :1], means[:, 1:1 + c]
    var_i = means[:, 1 + c:2 + c] - mean_i * mean_i
    cov_ip = means[:, 2 + c:] - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(torch.cat([a, b], dim=1), radius)


def _guided_coefficients_cpu(p: np.ndarray, i: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """:func:`guided_coefficients` of one frame in numpy and OpenCV (p (C, h, w), i (h, w)): the same steps."""
    c = p.shape[0]
    means = box_mean_array(np.concatenate([i[None], p, (i * i)[None], i * p]), radius)
    mean_i, mean_p = means[0], means[1:1 + c]
    var_i = means[1 + c] - mean_i * mean_i
    cov_ip = means[2 + c:] - mean_i * mean_p
    a = cov_ip / (var_i + np.float32(eps))
    b = mean_p - a * mean_i
    return box_mean_array(np.concatenate([a, b]), radius)


def fast_guided_upsample(p_low: torch.Tensor, i_low: torch.Tensor, i_high: torch.Tensor, *,
                         radius: int = 2, eps: float = 1e-3, scratch: Scratch | None = None) -> torch.Tensor:
    """Upsample ``p_low`` (N, C, h, w) to the size of ``i_high`` (N, 1, H, W) guided by the luma.

    ``i_low`` (N, 1, h, w) is the guide at the size of ``p_low``; ``radius`` is in low-resolution pixels,
    ``eps`` (in guide units squared, Y' in [0, 1]) is the regulariser: where the luma varies less than
    about sqrt(eps) the chroma is smoothed, where it varies more the chroma follows its edges.

    >>> q = fast_guided_upsample(cbcr_256, y_256, y_1080, radius=2, eps=1e-3)

    With ``scratch`` the CPU result is a view of the calling thread's planes (see :mod:`vs_colorgan.scratch`).
    """
    c = p_low.shape[1]
    ab = guided_coefficients(p_low, i_low, radius=radius, eps=eps)
    if one_cpu_frame(ab, i_high):
        return _apply_coefficients_cpu(ab[0], i_high[0, 0], c, scratch)
    ab = F.interpolate(ab, size=i_high.shape[-2:], mode="bilinear", align_corners=False)
    return torch.addcmul(ab[:, c:], ab[:, :c], i_high)


def one_cpu_frame(*tensors: torch.Tensor) -> bool:
    """True where a step may run on numpy views of ``tensors``: one frame each (batch 1), on the CPU, not
    traced for export, no autograd. The filter's steps on the CPU take their numpy forms where this holds."""
    return not torch.jit.is_tracing() and all(t.device.type == "cpu" and not t.requires_grad and t.shape[0] == 1
                                              for t in tensors)


def _apply_coefficients_cpu(ab: torch.Tensor, guide: torch.Tensor, c: int, scratch: Scratch | None = None) -> torch.Tensor:
    """Steps 6-7 of Algorithm 2 on the CPU: ``ab`` (2c, h, w) bilinearly to the guide's size, q = a * I + b.

    OpenCV's ``cv2.resize`` (INTER_LINEAR: the same half-pixel-centre bilinear as ``F.interpolate`` with
    ``align_corners=False``) instead of torch, and numpy for the products, each single-threaded SIMD: at 1080p
    (4 planes to 960x540) resize 0.36 ms against 2.9 ms for torch's kernel on one thread, and torch's two
    threads were slower still while ORT's inference held the other core (the look-ahead's overlap). The
    coefficients differ from torch's by up to ~1e-5 (a different order of the same interpolation in float32),
    which moves a quantised chroma code by one in about 1 % of samples (docs/filter.md)."""
    h, w = guide.shape
    src = ab.numpy()
    up = take(scratch, "coefficients", (2 * c, h, w))
    for k in range(2 * c):
        cv2.resize(src[k], (w, h), dst=up[k], interpolation=cv2.INTER_LINEAR)
    a, b = up[:c], up[c:]
    np.multiply(a, guide.numpy(), out=a)
    b += a
    return torch.from_numpy(b)[None]


def _pairs(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Views of the even and the odd samples along ``dim`` (of even length): no copy, no padding."""
    pairs = x.unflatten(dim, (x.shape[dim] // 2, 2))
    return pairs.select(dim + 1, 0), pairs.select(dim + 1, 1)


def _reduce_axis(x: torch.Tensor, factor: int, siting: str, dim: int) -> torch.Tensor:
    if factor == 1:
        return x
    horizontal = dim == 3
    if factor == 2 and x.shape[dim] % 2 == 0:
        # the common case (4:2:0, 4:2:2) on even/odd views, two or three passes over the samples. The
        # arithmetic is that of the general path below: (a + b) / 2 for centred siting, and for co-sited
        # (a + c) * 0.25 + b * 0.5 around sample 2i + offset with the borders replicated
        even, odd = _pairs(x, dim)
        if siting == "center":
            return (even + odd).mul_(0.5)
        n = even.shape[dim]
        mid, side = (even, odd) if siting == "cosited" else (odd, even)
        out = side.clone(memory_format=torch.contiguous_format)
        if siting == "cosited":  # neighbours 2i - 1 and 2i + 1: odd[i - 1] (odd[-1] := even[0]) and odd[i]
            out.narrow(dim, 1, n - 1).add_(side.narrow(dim, 0, n - 1))
            out.narrow(dim, 0, 1).add_(mid.narrow(dim, 0, 1))
        else:  # neighbours 2i and 2i + 2: even[i] and even[i + 1] (even[n] := odd[n - 1])
            out.narrow(dim, 0, n - 1).add_(side.narrow(dim, 1, n - 1))
            out.narrow(dim, n - 1, 1).add_(mid.narrow(dim, n - 1, 1))
        return out.mul_(0.25).add_(mid, alpha=0.5)
    if siting == "center":
        # the chroma sample sits at the centre of its `factor` luma samples: their mean
        return F.avg_pool2d(x, (1, factor) if horizontal else (factor, 1))
    # co-sited with luma sample `offset` of its group: a triangle (linear) filter centred there,
    # replicate-padded at the borders; output length = input length / factor exactly.
    offset = 0 if siting == "cosited" else factor - 1
    taps = torch.tensor([factor - abs(d) for d in range(-(factor - 1), factor)], dtype=x.dtype, device=x.device)
    taps = taps / taps.sum()
    before, after = factor - 1 - offset, offset
    if horizontal:
        x = F.pad(x, (before, after, 0, 0), mode="replicate")
        kernel = taps.view(1, 1, 1, -1)
        return F.conv2d(x, kernel, stride=(1, factor))
    x = F.pad(x, (0, 0, before, after), mode="replicate")
    kernel = taps.view(1, 1, -1, 1)
    return F.conv2d(x, kernel, stride=(factor, 1))


def luma_to_chroma_grid(y: torch.Tensor, *, subsampling_w: int = 0, subsampling_h: int = 0,
                        chroma_location: int = 0) -> torch.Tensor:
    """Full-resolution luma (1, 1, H, W) -> luma sampled where the chroma samples sit (1, 1, H >> ss_h, W >> ss_w).

    A box mean for centred siting, a triangle filter centred on the co-sited luma sample otherwise.
    Unknown ``chroma_location`` values are treated as 0 (left), VapourSynth's default.
    """
    horizontal, vertical = chroma_siting(chroma_location)
    # vertical first: whole rows at a time on the full plane, the strided horizontal pass on half of it
    y = _reduce_axis(y, 1 << subsampling_h, vertical, 2)
    return _reduce_axis(y, 1 << subsampling_w, horizontal, 3)


def _sum_pairs(x: np.ndarray, siting: str, axis: int, wide: type) -> tuple[np.ndarray, int] | None:
    """The integer form of :func:`_reduce_axis` for factor 2 on an even axis: (sums in ``wide``, weight), the
    reduced samples being ``sums / weight``; None for an odd length."""
    n = x.shape[axis]
    if n % 2:
        return None
    even, odd = (x[::2], x[1::2]) if axis == 0 else (x[:, ::2], x[:, 1::2])
    if siting == "center":
        return np.add(even, odd, dtype=wide), 2
    mid, side = (even, odd) if siting == "cosited" else (odd, even)
    out = side.astype(wide)  # side + its neighbour + 2 mid: the weights of (a + c) / 4 + b / 2
    pick = (lambda i: np.s_[i]) if axis == 0 else (lambda i: np.s_[:, i])
    if siting == "cosited":  # as _reduce_axis: odd[i - 1] with odd[-1] := even[0]
        out[pick(np.s_[1:])] += side[pick(np.s_[:-1])]
        out[pick(np.s_[0:1])] += mid[pick(np.s_[0:1])]
    else:  # even[i + 1] with even[n] := odd[n - 1]
        out[pick(np.s_[:-1])] += side[pick(np.s_[1:])]
        out[pick(np.s_[-1:])] += mid[pick(np.s_[-1:])]
    out += mid
    out += mid
    return out, 4


def integer_luma_to_chroma_grid(plane: np.ndarray, *, subsampling_w: int = 0, subsampling_h: int = 0,
                                chroma_location: int = 0) -> torch.Tensor | None:
    """:func:`luma_to_chroma_grid` of an integer plane (H, W) as stored (uint8 or uint16), summed in integers:
    the same float32 values bit for bit, or None where this form does not apply (4:1:1, odd sizes, other
    sample types): then use the float path.

    Why: the float path first converts the whole plane to float32 (1080p: 8 MB written and read again
    twice); here the plane is read as stored and only the sums on the chroma grid become float. Exact: the
    float path's samples are sums of at most 8 samples times 1/2, 1/4 or 1/8, below 2^20, which float32
    holds exactly, so ``sums * (1 / weight)`` is the same number.
    """
    if plane.dtype not in (np.uint8, np.uint16) or subsampling_w > 1 or subsampling_h > 1 \
            or not (subsampling_w or subsampling_h):  # 4:4:4: nothing to reduce, the float path is the copy
        return None
    horizontal, vertical = chroma_siting(chroma_location)
    wide = np.uint16 if plane.dtype == np.uint8 else np.uint32  # room for 8 samples: 8 * 255, 8 * 65535
    x, weight = plane, 1
    if subsampling_h:
        if (step := _sum_pairs(x, vertical, 0, wide)) is None:
            return None
        x, weight = step[0], weight * step[1]
    if subsampling_w:
        if (step := _sum_pairs(x, horizontal, 1, wide)) is None:
            return None
        x, weight = step[0], weight * step[1]
    return torch.from_numpy(x.astype(np.float32)).mul_(1.0 / weight)[None, None]


def limit_to_gamut(y: torch.Tensor, cbcr: torch.Tensor, kr: float, kb: float, *,
                   scratch: Scratch | None = None) -> torch.Tensor:
    """Scale chroma (1, 2, H, W) towards gray per pixel so that Y' + chroma decodes to R'G'B' in [0, 1].

    New chroma on an untouched luma can ask for colours no display has (a saturated colour on a very dark
    or very bright luma); decoding then clips R', G' or B' and the luma the viewer sees changes. Shrinking
    the chroma by the largest factor s in [0, 1] that keeps all three channels legal keeps luma and hue
    and loses only saturation. ``y`` (1, 1, H, W) is Y' on the chroma grid; (Kr, Kb) the matrix. With
    ``scratch`` the CPU result is a view of the calling thread's planes (see :mod:`vs_colorgan.scratch`).
    """
    if one_cpu_frame(y, cbcr):  # the filter on the CPU (numpy: see _limit_to_gamut_cpu)
        return torch.from_numpy(_limit_to_gamut_cpu(y[0, 0].numpy(), cbcr[0].numpy(), kr, kb, scratch))[None]
    y = y.clamp(0.0, 1.0)
    cb, cr = cbcr[:, 0:1], cbcr[:, 1:2]
    # ITU-R BT.601/709 inverse: channel = Y' + d, with d linear in (Cb, Cr); since Kr d_r + Kg d_g + Kb d_b = 0,
    # the largest d is >= 0 and the smallest <= 0: only those two can leave [0, 1]
    d_r = cr * (2.0 * (1.0 - kr))
    d_b = cb * (2.0 * (1.0 - kb))
    if torch.jit.is_tracing() or (torch.is_grad_enabled() and (y.requires_grad or cbcr.requires_grad)):
        # exported graphs (export/onnx_export.py traces this) and autograd: plain expressions
        d_g = (kr * d_r + kb * d_b) * (-1.0 / (1.0 - kr - kb))
        up = torch.maximum(torch.maximum(d_r, d_g), d_b).clamp_(min=1e-12)
        down = torch.minimum(torch.minimum(d_r, d_g), d_b).neg_().clamp_(min=1e-12)
        scale = torch.minimum((1.0 - y) / up, y / down).clamp_(max=1.0)
        return cbcr * scale
    # the filter on CUDA: the same operations in the same order (the same bits), written into three buffers instead of
    # a fresh full-size temporary per operation, which costs an allocation and its page faults besides the pass
    d_g = d_r * kr
    d_g.add_(d_b * kb).mul_(-1.0 / (1.0 - kr - kb))
    up = torch.maximum(d_r, d_g)
    torch.maximum(up, d_b, out=up).clamp_(min=1e-12)
    down = torch.minimum(d_r, d_g, out=d_g)
    torch.minimum(down, d_b, out=down).neg_().clamp_(min=1e-12)
    scale = torch.neg(y, out=d_r).add_(1.0).div_(up)  # (1 - Y') / up
    torch.minimum(scale, y.div_(down), out=scale).clamp_(max=1.0)
    return cbcr * scale


def _limit_to_gamut_cpu(y: np.ndarray, cbcr: np.ndarray, kr: float, kb: float,
                        scratch: Scratch | None = None) -> np.ndarray:
    """:func:`limit_to_gamut`'s operations in the same order on numpy arrays (y (H, W) clamped here, cbcr
    (2, H, W)), the same float32 bits (IEEE-rounded elementwise operations, python scalars taken as float32 by
    both). Why numpy: single-threaded SIMD passes; torch's two intra-op threads waited for a core that ORT's
    inference (on the look-ahead thread) held, ~5x slower per pass at 1080p in the filter. Every
    temporary is written in place (into ``scratch`` where given): fresh full-size planes cost page faults."""
    shape = y.shape
    y = np.clip(y, 0.0, 1.0, out=take(scratch, "gamut_y", shape))
    cb, cr = cbcr[0], cbcr[1]
    d_r = np.multiply(cr, np.float32(2.0 * (1.0 - kr)), out=take(scratch, "gamut_r", shape))
    d_b = np.multiply(cb, np.float32(2.0 * (1.0 - kb)), out=take(scratch, "gamut_b", shape))
    d_g = np.multiply(d_r, np.float32(kr), out=take(scratch, "gamut_g", shape))
    up = np.multiply(d_b, np.float32(kb), out=take(scratch, "gamut_up", shape))
    d_g += up
    d_g *= np.float32(-1.0 / (1.0 - kr - kb))
    np.maximum(d_r, d_g, out=up)
    np.maximum(up, d_b, out=up)
    np.maximum(up, np.float32(1e-12), out=up)
    down = np.minimum(d_r, d_g, out=d_g)
    np.minimum(down, d_b, out=down)
    np.negative(down, out=down)
    np.maximum(down, np.float32(1e-12), out=down)
    scale = np.negative(y, out=d_r)
    scale += np.float32(1.0)
    scale /= up
    y /= down
    np.minimum(scale, y, out=scale)
    np.minimum(scale, np.float32(1.0), out=scale)
    return np.multiply(cbcr, scale, out=take(scratch, "gamut_out", cbcr.shape))
