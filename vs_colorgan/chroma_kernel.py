"""Stage 4's full-size steps on the CPU in one pass per chroma row (numba): the luma guide, steps 6-7 of the
fast guided filter, the gamut limit and the quantisation, written straight into the output frame's planes.

Why: done as numpy and OpenCV passes (:mod:`vs_colorgan.upsample`, :mod:`vs_colorgan.formats`), the same
arithmetic made about 30 passes over 960x540 float32 planes at 1080p, each a trip through memory: with
reused planes (:mod:`vs_colorgan.scratch`) ~5 ms per frame on the 2-core machine of README "Speed", about
half the network's inference (issue 15's goal is a third). Here each chroma sample is read and written
once, from the luma plane as stored (8-16 bit) and the low-resolution coefficients, and the kernel releases
the GIL, so the look-ahead thread's Python work runs beside it.

The arithmetic is that of the numpy path, operation for operation in float32 (the guide's integer sums and
scaling, ``q = a I + b``, :func:`vs_colorgan.upsample.limit_to_gamut`, :func:`vs_colorgan.formats.quantize_chroma`),
except the bilinear interpolation of the coefficients: OpenCV's ``cv2.resize`` (INTER_LINEAR, half-pixel
centres) computes the same weights, but rounds in its own order, so a coefficient differs by ~1e-7
relative and a chroma code by one in a few samples per million (tests/test_chroma_kernel.py).

Where numba is missing, or a frame's form is not handled here (float or 4:1:1 luma, odd subsampled sizes,
CUDA), :func:`available` is False and the numpy path runs.
"""
from __future__ import annotations

import functools
import logging

import numpy as np

log = logging.getLogger("vs_colorgan")

from .formats import code_scale, unit_scale
from .jit import available, jit
from .upsample import chroma_siting

# VapourSynth's chroma siting per axis (vs_colorgan.upsample.chroma_siting) -> the kernel's code
SITING_CODE = {"cosited": 0, "center": 1, "bottom": 2}


@functools.lru_cache(maxsize=32)
def bilinear_taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """For each output index: the lower input index and the weight of the upper one, for a half-pixel-centre
    bilinear resize of ``n_in`` samples to ``n_out`` (``cv2.resize`` INTER_LINEAR, ``F.interpolate``
    ``align_corners=False``): the source position clamped to the first and last sample."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    lo = np.floor(pos)
    frac = pos - lo
    frac[lo < 0] = 0.0
    lo[lo < 0] = 0
    frac[lo >= n_in - 1] = 0.0
    lo[lo >= n_in - 1] = n_in - 1
    return lo.astype(np.int64), frac.astype(np.float32)


def _guide_row(luma, r, ss_w, ss_h, site_w, site_h, col, dst):  # pragma: no cover - compiled
    """The integer sums of ``upsample.integer_luma_to_chroma_grid`` for chroma row ``r``, as float32, into dst
    (``col``: an int32 row of the luma's width to work in)."""
    h, w = luma.shape
    wc = dst.shape[0]
    if ss_h == 0:
        ra, rb, rc, wa, wb, wcc = r, r, r, 1, 0, 0
    elif site_h == 1:  # centre: rows 2r, 2r + 1
        ra, rb, rc, wa, wb, wcc = 2 * r, 2 * r + 1, 2 * r, 1, 1, 0
    elif site_h == 0:  # co-sited: 2r - 1 (row 0 for the first), 2r twice, 2r + 1
        ra, rb, rc, wa, wb, wcc = max(2 * r - 1, 0), 2 * r, 2 * r + 1, 1, 2, 1
    else:  # bottom: 2r, 2r + 1 twice, 2r + 2 (the last row for the last)
        ra, rb, rc, wa, wb, wcc = 2 * r, 2 * r + 1, min(2 * r + 2, h - 1), 1, 2, 1
    la, lb, lc = luma[ra], luma[rb], luma[rc]
    if ss_w == 0:
        for x in range(wc):
            dst[x] = np.float32(wa * np.int32(la[x]) + wb * np.int32(lb[x]) + wcc * np.int32(lc[x]))
        return
    # the vertical sums of the columns, then their horizontal pairs or 1-2-1 triples
    for x in range(w):
        col[x] = wa * np.int32(la[x]) + wb * np.int32(lb[x]) + wcc * np.int32(lc[x])
    if site_w == 1:
        for x in range(wc):
            dst[x] = np.float32(col[2 * x] + col[2 * x + 1])
    elif site_w == 0:
        dst[0] = np.float32(col[0] + 2 * col[0] + col[1])
        for x in range(1, wc):
            dst[x] = np.float32(col[2 * x - 1] + 2 * col[2 * x] + col[2 * x + 1])
    else:
        for x in range(wc - 1):
            dst[x] = np.float32(col[2 * x] + 2 * col[2 * x + 1] + col[2 * x + 2])
        dst[wc - 1] = np.float32(col[w - 2] + 2 * col[w - 1] + col[w - 1])


def _kernel(coef, luma, out_cb, out_cr, x_lo, x_frac, y_lo, y_frac, ss_w, ss_h, site_w, site_h,
            inv_weight, code_offset, code_mul, kr, kb, q_scale, q_offset, q_max):  # pragma: no cover
    """Fills ``out_cb``/``out_cr`` (Hc, Wc): see the module docstring. ``coef`` (4, h, w): a_Cb, a_Cr, b_Cb,
    b_Cr; ``luma`` (H, W) as stored; taps from :func:`bilinear_taps`; the constants float32. Row by row, each
    step a loop without branches (min/max as selects) that LLVM vectorises."""
    f32 = np.float32
    hc, wc = out_cb.shape
    n_low, w_low = coef.shape[1], coef.shape[2]
    y = np.empty(wc, dtype=np.float32)
    col = np.empty(luma.shape[1], dtype=np.int32)
    one, zero, half = f32(1.0), f32(0.0), f32(0.5)
    tiny = f32(1e-12)
    alpha_r = f32(2.0 * (1.0 - kr))
    alpha_b = f32(2.0 * (1.0 - kb))
    kr32, kb32 = f32(kr), f32(kb)
    g_mul = f32(-1.0 / (1.0 - kr - kb))
    # step 6, the horizontal half: each low-resolution row of the coefficients interpolated along the output
    # width once (OpenCV's order too); the vertical half is then a blend of two such rows per output row
    x_hi = np.minimum(x_lo + 1, w_low - 1)
    x_w0 = one - x_frac
    wide = np.empty((4, n_low, wc), dtype=np.float32)
    for k in range(4):
        for i in range(n_low):
            for x in range(wc):
                wide[k, i, x] = coef[k, i, x_lo[x]] * x_w0[x] + coef[k, i, x_hi[x]] * x_frac[x]
    for r in range(hc):
        y0 = y_lo[r]
        y1 = min(y0 + 1, n_low - 1)
        fy = y_frac[r]
        gy = one - fy
        w0, w1 = wide[:, y0], wide[:, y1]
        _guide_row(luma, r, ss_w, ss_h, site_w, site_h, col, y)
        o_cb, o_cr = out_cb[r], out_cr[r]
        for x in range(wc):
            g = (y[x] * inv_weight - code_offset) * code_mul  # formats.code_to_unit of the reduced sample
            a_cb = w0[0, x] * gy + w1[0, x] * fy
            a_cr = w0[1, x] * gy + w1[1, x] * fy
            b_cb = w0[2, x] * gy + w1[2, x] * fy
            b_cr = w0[3, x] * gy + w1[3, x] * fy
            cb = a_cb * g + b_cb  # step 7: q = a I + b
            cr = a_cr * g + b_cr
            # upsample.limit_to_gamut, its operations in its order
            yc = g if g > zero else zero
            yc = yc if yc < one else one
            d_r = cr * alpha_r
            d_b = cb * alpha_b
            d_g = (d_r * kr32 + d_b * kb32) * g_mul
            up = d_r if d_r > d_g else d_g
            up = up if up > d_b else d_b
            up = up if up > tiny else tiny
            down = d_r if d_r < d_g else d_g
            down = down if down < d_b else d_b
            down = -down
            down = down if down > tiny else tiny
            scale = (one - yc) / up
            other = yc / down
            scale = scale if scale < other else other
            scale = scale if scale < one else one
            cb = cb * scale
            cr = cr * scale
            # formats.quantize_chroma
            cb = cb if cb > -half else -half
            cb = cb if cb < half else half
            cr = cr if cr > -half else -half
            cr = cr if cr < half else half
            cb = np.floor(cb * q_scale + q_offset + half)
            cr = np.floor(cr * q_scale + q_offset + half)
            cb = cb if cb > zero else zero
            cb = cb if cb < q_max else q_max
            cr = cr if cr > zero else zero
            cr = cr if cr < q_max else q_max
            o_cb[x] = cb
            o_cr[x] = cr


_guide_row = jit(_guide_row)
_compiled = jit(_kernel)


def handles(luma: np.ndarray, *, subsampling_w: int, subsampling_h: int) -> bool:
    """True where :func:`finish` takes this luma plane: numba present, 8-16 bit integer samples, at most 2x
    subsampling per axis on an even side (the forms of ``upsample.integer_luma_to_chroma_grid``)."""
    if not available() or not isinstance(luma, np.ndarray) or luma.dtype not in (np.uint8, np.uint16):
        return False
    h, w = luma.shape
    return subsampling_w in (0, 1) and subsampling_h in (0, 1) and h % (1 << subsampling_h) == 0 \
        and w % (1 << subsampling_w) == 0


def finish(coef: np.ndarray, luma: np.ndarray, out: tuple[np.ndarray, np.ndarray], *, subsampling_w: int,
           subsampling_h: int, chroma_location: int, bits: int, full_range: bool, kr: float, kb: float) -> None:
    """Cb and Cr codes into ``out`` (two (Hc, Wc) integer planes, strided views allowed) from the guided
    filter's box-filtered coefficients ``coef`` (4, h, w: a_Cb, a_Cr, b_Cb, b_Cr) and the frame's luma plane
    as stored (see :func:`handles`), sited by ``_ChromaLocation``, in the matrix (Kr, Kb)."""
    hc, wc = out[0].shape
    x_lo, x_frac = bilinear_taps(wc, coef.shape[2])
    y_lo, y_frac = bilinear_taps(hc, coef.shape[1])
    siting_w, siting_h = chroma_siting(chroma_location)
    # the integer weights of the guide's sums: 1 per axis not subsampled, 2 for a centred pair, 4 for 1-2-1
    weight = 1
    for ss, siting in ((subsampling_w, siting_w), (subsampling_h, siting_h)):
        weight *= 1 if not ss else 2 if siting == "center" else 4
    code_offset, code_mul = unit_scale(bits, full_range)
    q_scale, q_offset = code_scale(bits, full_range)
    f32 = np.float32
    _compiled(np.ascontiguousarray(coef, dtype=np.float32), luma, out[0], out[1], x_lo, x_frac, y_lo, y_frac,
              subsampling_w, subsampling_h, SITING_CODE[siting_w], SITING_CODE[siting_h],
              f32(1.0 / weight), f32(code_offset), f32(code_mul),
              float(kr), float(kb), f32(q_scale), f32(q_offset), f32((1 << bits) - 1))
