"""The fused stage-4 kernel (vs_colorgan.chroma_kernel) against the numpy path it replaces: the luma guide,
q = a I + b, the gamut limit and the quantisation, for every subsampling, chroma siting, range and depth it
takes; the forms it does not take fall back; the filter's frames are the same either way."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import vapoursynth as vs

from vs_colorgan import chroma_kernel
from vs_colorgan.color import MATRIX_COEFFICIENTS
from vs_colorgan.formats import code_to_unit, plane_to_tensor, quantize_chroma
from vs_colorgan.upsample import (
    _apply_coefficients_cpu,
    integer_luma_to_chroma_grid,
    limit_to_gamut,
    luma_to_chroma_grid,
)

from conftest import frames_clip, gray_frames, model  # noqa: F401  (model: a fixture)

pytestmark = pytest.mark.skipif(not chroma_kernel.available(), reason="numba is not installed")
core = vs.core


@pytest.fixture(scope="module")
def gray8() -> vs.VideoNode:
    return frames_clip(gray_frames(3, 96, 64))


def numpy_path(coef: np.ndarray, luma: np.ndarray, *, ss_w: int, ss_h: int, loc: int, bits: int, full: bool,
               matrix: int) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """What Colorizer.luma_guide + postprocess compute, step by step; and the share of samples whose chroma
    the gamut limit shrank."""
    guide = integer_luma_to_chroma_grid(luma, subsampling_w=ss_w, subsampling_h=ss_h, chroma_location=loc)
    if guide is None:  # 4:4:4: the float path
        guide = luma_to_chroma_grid(plane_to_tensor(luma), subsampling_w=ss_w, subsampling_h=ss_h,
                                    chroma_location=loc)
    guide = code_to_unit(guide, bits=bits, full_range=full, is_float=False)
    kr, kb = MATRIX_COEFFICIENTS[matrix]
    q = _apply_coefficients_cpu(torch.from_numpy(coef), guide[0, 0], 2)
    limited = limit_to_gamut(guide, q, kr, kb)
    shrunk = float((limited.abs() < q.abs() * 0.999).any(dim=1).float().mean())
    planes = quantize_chroma(limited[0], bits=bits, full_range=full, is_float=False)
    return (planes[0], planes[1]), shrunk


def kernel(coef: np.ndarray, luma: np.ndarray, *, ss_w: int, ss_h: int, loc: int, bits: int, full: bool,
           matrix: int, strided: bool = False) -> tuple[np.ndarray, np.ndarray]:
    hc, wc = luma.shape[0] >> ss_h, luma.shape[1] >> ss_w
    # strided like a VapourSynth frame's plane: rows padded
    out = tuple(np.zeros((hc, wc + 13 * strided), dtype=luma.dtype)[:, :wc] for _ in range(2))
    kr, kb = MATRIX_COEFFICIENTS[matrix]
    chroma_kernel.finish(coef, luma, out, subsampling_w=ss_w, subsampling_h=ss_h, chroma_location=loc, bits=bits,
                         full_range=full, kr=kr, kb=kb)
    return out


def inputs(seed: int, h: int, w: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients loud enough that the gamut limit and the clipping act on many samples, and a luma with
    both code ends, flat areas and noise."""
    rng = np.random.default_rng(seed)
    coef = np.concatenate([rng.normal(0, 0.8, (2, 7, 11)), rng.normal(0, 0.3, (2, 7, 11))]).astype(np.float32)
    top = (1 << bits) - 1
    luma = rng.integers(0, top + 1, (h, w))
    luma[: h // 3] = top  # a blown-out band
    luma[h // 3: h // 2, : w // 2] = 0  # a black one
    return coef, luma.astype(np.uint8 if bits == 8 else np.uint16)


@pytest.mark.parametrize("ss", [(0, 0), (1, 0), (1, 1), (0, 1)])
@pytest.mark.parametrize("loc", range(6))
@pytest.mark.parametrize("bits,full", [(8, False), (8, True), (10, False), (16, True)])
def test_kernel_matches_the_numpy_path(ss: tuple[int, int], loc: int, bits: int, full: bool) -> None:
    ss_w, ss_h = ss
    coef, luma = inputs(loc + 10 * bits, 46, 70, bits)
    kw = dict(ss_w=ss_w, ss_h=ss_h, loc=loc, bits=bits, full=full, matrix=1 if loc % 2 else 6)
    want, shrunk = numpy_path(coef, luma, **kw)
    assert shrunk > 0.2  # the test data exercise the gamut limit
    got = kernel(coef, luma, strided=bool(loc % 2), **kw)
    for g, w in zip(got, want):
        diff = np.abs(g.astype(np.int64) - w.astype(np.int64))
        # the bilinear interpolation of the coefficients rounds in another order than cv2.resize (~1e-7
        # relative): a code may move by one where the value sits on a rounding boundary, nothing more; finer
        # codes sit on more boundaries
        assert diff.max() <= 1, diff.max()
        assert np.count_nonzero(diff) <= {8: 0.002, 10: 0.005, 16: 0.02}[bits] * diff.size, np.count_nonzero(diff)


def test_handles_says_which_frames_fall_back() -> None:
    even = np.zeros((4, 6), np.uint8)
    assert chroma_kernel.handles(even, subsampling_w=1, subsampling_h=1)
    assert chroma_kernel.handles(even.astype(np.uint16), subsampling_w=0, subsampling_h=0)
    assert not chroma_kernel.handles(even.astype(np.float32), subsampling_w=0, subsampling_h=0)  # float: numpy
    assert not chroma_kernel.handles(np.zeros((4, 7), np.uint8), subsampling_w=1, subsampling_h=0)  # odd width
    assert not chroma_kernel.handles(np.zeros((5, 6), np.uint8), subsampling_w=0, subsampling_h=1)  # odd height
    assert not chroma_kernel.handles(np.zeros((4, 8), np.uint8), subsampling_w=2, subsampling_h=0)  # 4:1:1


@pytest.mark.parametrize("fmt", [vs.YUV420P8, vs.YUV422P10, vs.YUV444P16])
def test_filter_frames_same_with_and_without_the_kernel(model, gray8: vs.VideoNode, fmt: int, monkeypatch) -> None:
    """colorize's frames with the kernel equal those of the numpy path (numba missing) within one code."""
    from vs_colorgan import colorize

    src = core.resize.Bicubic(gray8, format=fmt)
    fused = colorize(src, model=model, backend="torch")
    frames = [[np.asarray(fused.get_frame(n)[p]).copy() for p in (1, 2)] for n in range(src.num_frames)]
    monkeypatch.setattr(chroma_kernel, "available", lambda: False)
    plain = colorize(src, model=model, backend="torch")
    for n in range(src.num_frames):
        f = plain.get_frame(n)
        for p in (1, 2):
            diff = np.abs(frames[n][p - 1].astype(np.int64) - np.asarray(f[p]).astype(np.int64))
            assert diff.max() <= 1 and np.count_nonzero(diff) <= 0.002 * diff.size


def test_jit_without_a_writable_cache_still_compiles(monkeypatch) -> None:
    """Where numba finds no place for its disk cache it raises at decoration; vs_colorgan.jit then compiles
    without the cache instead of failing the import."""
    import numba

    from vs_colorgan import jit as jit_module

    real = numba.njit

    def no_cache_locator(*args, **kwargs):
        if kwargs.get("cache"):
            def decorate(fn):
                raise RuntimeError(f"cannot cache function {fn.__name__!r}: no locator available for file 'x'")
            return decorate
        return real(*args, **kwargs)

    monkeypatch.setattr(jit_module.numba, "njit", no_cache_locator)
    add_one = jit_module.jit(lambda x: x + 1)
    assert add_one(np.int64(41)) == 42 and hasattr(add_one, "py_func")  # compiled, not the plain function
