"""The filter's stages on plain arrays: quantisation, chroma siting, guided upsampling, temporal blending,
the prediction cache, and the stage methods of ``Colorizer`` reproducing the VapourSynth filter exactly."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import vapoursynth as vs

from vs_colorgan.color import L_SCALE
from vs_colorgan.formats import (
    FrameColorimetry,
    default_matrix,
    frame_range_is_full,
    luma_to_unit,
    plane_to_tensor,
    quantize_chroma,
    resolve_colorimetry,
)
from vs_colorgan.errors import ColorizeError
from vs_colorgan.pipeline import render_shape
from vs_colorgan.temporal import Abandoned, PredictionCache, combine, mean_abs_l_difference, window_length
from vs_colorgan.color import MATRIX_COEFFICIENTS, ycbcr_to_rgb
from vs_colorgan.upsample import (
    box_mean,
    fast_guided_upsample,
    integer_luma_to_chroma_grid,
    limit_to_gamut,
    luma_to_chroma_grid,
)

torch.set_num_threads(1)
core = vs.core


def _float_yuv_clip(arrays: list[np.ndarray]) -> vs.VideoNode:
    """A one-frame YUV444PS clip holding the three given (H, W) float32 planes."""
    h, w = arrays[0].shape
    blank = core.std.BlankClip(format=vs.YUV444PS, width=w, height=h, length=1)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p, a in enumerate(arrays):
            np.copyto(np.asarray(out[p]), a)
        return out

    return core.std.ModifyFrame(blank, blank, fill)


@pytest.mark.parametrize("bits", [8, 10, 16])
@pytest.mark.parametrize("full", [False, True])
def test_quantisation_matches_zimg(bits: int, full: bool) -> None:
    rng = np.random.default_rng(1)
    y = rng.uniform(0, 1, (32, 48)).astype(np.float32)
    cb = rng.uniform(-0.5, 0.5, (32, 48)).astype(np.float32)
    src = _float_yuv_clip([y, cb, cb])
    fmt = core.query_video_format(vs.YUV, vs.INTEGER, bits, 0, 0)
    ref = core.resize.Point(src, format=fmt.id, range=int(full)).get_frame(0)
    mine = quantize_chroma(torch.from_numpy(cb), bits=bits, full_range=full, is_float=False)
    assert mine.dtype == (np.uint8 if bits == 8 else np.uint16)
    # zimg's float arithmetic may land on the other side of a rounding tie: at most 1 code value
    assert np.abs(mine.astype(np.int64) - np.asarray(ref[1]).astype(np.int64)).max() <= 1
    back = luma_to_unit(np.asarray(ref[0]), bits=bits, full_range=full, is_float=False)[0, 0].numpy()
    step = 1.0 / ((1 << bits) - 1) if full else 1.0 / (219 << (bits - 8))
    assert np.abs(back - y).max() <= 0.5 * step + 1e-6


def test_quantisation_clips_and_keeps_float() -> None:
    c = torch.tensor([[-0.9, -0.5, 0.0, 0.5, 0.9]])
    assert quantize_chroma(c, bits=8, full_range=False, is_float=False).tolist() == [[16, 16, 128, 240, 240]]
    assert quantize_chroma(c, bits=8, full_range=True, is_float=False).tolist() == [[1, 1, 128, 255, 255]]  # H.273: round(255 C + 128)
    out = quantize_chroma(c, bits=32, full_range=True, is_float=True)
    assert out.dtype == np.float32 and out.tolist() == [[-0.5, -0.5, 0.0, 0.5, 0.5]]


def test_colorimetry_defaults_and_props() -> None:
    assert default_matrix(720, 480) == 6 and default_matrix(1024, 576) == 6 and default_matrix(1280, 720) == 1
    cm = resolve_colorimetry({}, width=720, height=576, is_float=False)
    assert cm == FrameColorimetry(matrix=6, full_range=False, transfer=6, primaries=6)
    cm = resolve_colorimetry({"_Matrix": 2}, width=1920, height=1080, is_float=False, fallback_matrix=9)
    assert (cm.matrix, cm.transfer, cm.primaries) == (9, 14, 9)
    cm = resolve_colorimetry({"_Matrix": 5, "_Transfer": 4, "_Range": 1}, width=1920, height=1080, is_float=False)
    assert (cm.matrix, cm.full_range, cm.transfer, cm.primaries) == (5, True, 4, 5)
    assert frame_range_is_full({"_Range": 0}, is_float=True)  # float is always full scale
    assert not frame_range_is_full({}, is_float=False)
    with pytest.raises(ColorizeError, match=r"_Matrix must be one of .* not 8 \(YCgCo\)"):
        resolve_colorimetry({"_Matrix": 8}, width=64, height=64, is_float=False)


def test_render_shape_keeps_aspect_on_the_multiple() -> None:
    assert render_shape(721, 403, 256, 32) == (448, 256)
    assert render_shape(403, 721, 256, 32) == (256, 448)
    assert render_shape(1920, 1080, 256, 32) == (448, 256)
    assert render_shape(16, 16, 64, 32) == (64, 64)
    # 250:1: the long side would be 16000; it is bounded (pipeline.MAX_RENDER_LONG_SIDE) and the short side gives way
    assert render_shape(4000, 16, 64, 32) == (4096, 32)


def test_chroma_grid_siting() -> None:
    # a horizontal ramp: co-sited (left) chroma must see the luma at x = 2i, centred chroma at x = 2i + 0.5
    w, h = 16, 8
    ramp = torch.arange(w, dtype=torch.float32).expand(h, w)[None, None].clone()
    left = luma_to_chroma_grid(ramp, subsampling_w=1, subsampling_h=1, chroma_location=0)
    center = luma_to_chroma_grid(ramp, subsampling_w=1, subsampling_h=1, chroma_location=1)
    assert left.shape == center.shape == (1, 1, h // 2, w // 2)
    assert torch.allclose(left[0, 0, :, 1:], torch.arange(2, w, 2, dtype=torch.float32).expand(h // 2, -1))
    assert torch.allclose(center[0, 0], (torch.arange(0, w, 2) + 0.5).float().expand(h // 2, -1))
    # a vertical ramp with top siting (2) sees y = 2j, bottom siting (4) y = 2j + 1, 4:1:0 keeps the shape rule
    vramp = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)[None, None].clone()
    top = luma_to_chroma_grid(vramp, subsampling_w=1, subsampling_h=1, chroma_location=2)
    bottom = luma_to_chroma_grid(vramp, subsampling_w=1, subsampling_h=1, chroma_location=4)
    assert torch.allclose(top[0, 0, 1:, 0], torch.arange(2, h, 2, dtype=torch.float32))
    assert torch.allclose(bottom[0, 0, :-1, 0], torch.arange(1, h - 1, 2, dtype=torch.float32))
    assert luma_to_chroma_grid(ramp, subsampling_w=2, subsampling_h=2).shape == (1, 1, 2, 4)
    assert luma_to_chroma_grid(ramp).shape == ramp.shape


@pytest.mark.parametrize("dtype, top", [(np.uint8, 255), (np.uint16, 1023), (np.uint16, 65535)])
def test_integer_chroma_grid_equals_the_float_path(dtype, top) -> None:
    # the integer sums give the float path's float32 values bit for bit, for every siting and subsampling it
    # takes; the forms it does not take (odd sizes, 4:1:1, 4:4:4) are declined, not approximated
    rng = np.random.default_rng(3)
    for h, w in ((8, 12), (6, 10)):
        plane = rng.integers(0, top + 1, (h, w)).astype(dtype)
        for ss_w, ss_h in ((1, 1), (1, 0), (0, 1)):
            for loc in range(6):
                fast = integer_luma_to_chroma_grid(plane, subsampling_w=ss_w, subsampling_h=ss_h, chroma_location=loc)
                slow = luma_to_chroma_grid(plane_to_tensor(plane), subsampling_w=ss_w, subsampling_h=ss_h,
                                           chroma_location=loc)
                assert fast is not None and fast.dtype == torch.float32 and torch.equal(fast, slow)
    plane = rng.integers(0, top + 1, (7, 9)).astype(dtype)
    assert integer_luma_to_chroma_grid(plane, subsampling_w=1, subsampling_h=1) is None
    assert integer_luma_to_chroma_grid(plane[:6, :8], subsampling_w=2, subsampling_h=0) is None
    assert integer_luma_to_chroma_grid(plane[:6, :8]) is None


def _edge_scene(size: int = 256, low: int = 64):
    x = torch.arange(size, dtype=torch.float32)
    edge = 101
    y = torch.where(x < edge, 0.2, 0.8).expand(size, size)[None, None].clone()
    cb = torch.where(x < edge, -0.2, 0.2).expand(size, size)[None, None].clone()
    y_low = F.interpolate(y, size=(low, low), mode="area")
    # a network's chroma is softer than the truth: blur it at low resolution
    cb_low = F.avg_pool2d(F.interpolate(cb, size=(low, low), mode="area"), 3, 1, 1, count_include_pad=False)
    return y, cb, y_low, cb_low, edge


@pytest.mark.parametrize("radius", [1, 2, 3, 5])
def test_box_mean_matches_average_pooling(radius: int) -> None:
    x = torch.rand(1, 3, 37, 53, dtype=torch.float64)
    ref = F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)
    assert torch.allclose(box_mean(x.float(), radius).double(), ref, atol=1e-5)


def test_guided_upsampling_does_not_bleed_over_luma_edges() -> None:
    y, cb, y_low, cb_low, edge = _edge_scene()
    bilinear = F.interpolate(cb_low, size=y.shape[-2:], mode="bilinear", align_corners=False)
    guided = fast_guided_upsample(cb_low, y_low, y, radius=1, eps=1e-3)  # the filter's defaults
    near = slice(edge - 6, edge + 6)
    err_bilinear = (bilinear - cb).abs()[..., near].mean()
    err_guided = (guided - cb).abs()[..., near].mean()
    assert err_guided < 0.5 * err_bilinear
    # the colour right next to the edge has the sign of its own side
    assert guided[0, 0, 50, edge - 1] < -0.1 and guided[0, 0, 50, edge] > 0.1


def test_guided_upsampling_keeps_flat_chroma_and_ignores_uncorrelated_texture() -> None:
    torch.manual_seed(0)
    y = 0.5 + 0.02 * torch.randn(1, 1, 128, 128)  # grain in the luma only
    y_low = F.interpolate(y, size=(32, 32), mode="area")
    p = torch.full((1, 2, 32, 32), 0.1)
    q = fast_guided_upsample(p, y_low, y, radius=2, eps=1e-3)
    assert q.shape == (1, 2, 128, 128)
    assert (q - 0.1).abs().max() < 1e-5


@pytest.mark.parametrize("matrix", [1, 6, 9])
def test_gamut_limit_keeps_luma_and_hue_and_only_shrinks_what_is_out(matrix: int) -> None:
    kr, kb = MATRIX_COEFFICIENTS[matrix]
    torch.manual_seed(matrix)
    y = torch.rand(1, 1, 32, 32)
    cbcr = torch.rand(1, 2, 32, 32) - 0.5
    limited = limit_to_gamut(y, cbcr, kr, kb)
    rgb = ycbcr_to_rgb(y, limited[:, :1], limited[:, 1:], kr, kb)
    assert rgb.min() > -1e-5 and rgb.max() < 1 + 1e-5
    ratio = limited / cbcr  # one factor per pixel for Cb and Cr: the hue angle is kept
    assert torch.allclose(ratio[:, 0], ratio[:, 1], atol=1e-4) and ratio.max() <= 1 + 1e-6
    inside = ycbcr_to_rgb(y, cbcr[:, :1], cbcr[:, 1:], kr, kb)
    legal = ((inside >= 0) & (inside <= 1)).all(dim=1, keepdim=True).expand_as(cbcr)
    assert legal.any() and torch.equal(limited[legal], cbcr[legal])


def test_gamut_limit_traced_and_filter_paths_agree_bit_for_bit() -> None:
    """limit_to_gamut writes into buffers in the filter and uses plain expressions under autograd / export."""
    kr, kb = MATRIX_COEFFICIENTS[1]
    torch.manual_seed(3)
    y = torch.rand(1, 1, 48, 64) * 1.2 - 0.1
    cbcr = torch.rand(1, 2, 48, 64) - 0.5
    with torch.no_grad():
        fast = limit_to_gamut(y, cbcr, kr, kb)
    plain = limit_to_gamut(y, cbcr.clone().requires_grad_(), kr, kb).detach()
    assert torch.equal(fast, plain)


def test_combine_weights_by_luma_similarity() -> None:
    l_n = torch.zeros(1, 1, 8, 8)
    ab_n, ab_k = torch.zeros(1, 2, 8, 8), torch.ones(1, 2, 8, 8)
    same = combine([ab_n, ab_k], [l_n, l_n.clone()], sigma=3.0)
    assert torch.allclose(same, torch.full_like(same, 0.5))
    moved = l_n.clone()
    moved[..., :4, :] = 60.0 / L_SCALE  # 60 L* apart in the top half
    out = combine([ab_n, ab_k], [l_n, moved], sigma=3.0)
    assert out[..., :3, :].abs().max() < 1e-6  # changed pixels keep frame n's prediction
    assert torch.allclose(out[..., 5:, :], torch.full_like(out[..., 5:, :], 0.5))  # unchanged ones are averaged
    # grain (independent per pixel) is mostly averaged out by the 3x3 patch: weights stay high
    torch.manual_seed(0)
    grainy = l_n + torch.randn_like(l_n) * (2.0 / L_SCALE)  # 2 L* of grain
    assert combine([ab_n, ab_k], [l_n, grainy], sigma=3.0)[..., 1:-1, 1:-1].mean() > 0.35
    assert combine([ab_k], [l_n], sigma=3.0) is ab_k


def test_window_length_from_props_or_luma_difference() -> None:
    a, b = torch.zeros(1, 1, 8, 8), torch.full((1, 1, 8, 8), 0.5)  # 25 L* apart
    assert mean_abs_l_difference(a, b) == pytest.approx(25.0)
    # newest first: frames n, n-1, n-2, n-3
    assert window_length([a, a, a, a], [None, None, None], scene_threshold=10) == 4
    assert window_length([a, a, b, b], [None, None, None], scene_threshold=10) == 2
    assert window_length([a, a, b, b], [None, None, None], scene_threshold=30) == 4
    assert window_length([a, a, a, a], [None, True, None], scene_threshold=10) == 2  # a property cut
    assert window_length([a, b, b, b], [False, None, None], scene_threshold=10) == 4  # props say no cut
    assert window_length([a], [], scene_threshold=10) == 1


def test_prediction_cache_is_bounded_and_computes_each_key_once() -> None:
    cache: PredictionCache[int] = PredictionCache(3)
    calls: list[int] = []

    def slow(k: int) -> int:
        calls.append(k)
        time.sleep(0.02)
        return k * k

    threads = [threading.Thread(target=lambda: cache.get_or_compute(7, lambda: slow(7))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [7]
    for k in range(10):
        assert cache.get_or_compute(k, lambda k=k: k * k) == k * k
    assert len(cache) == 3
    with pytest.raises(RuntimeError):
        cache.get_or_compute(99, lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    assert cache.get_or_compute(99, lambda: 1) == 1  # a failure is not cached


def test_an_abandoned_computation_is_computed_by_its_waiter() -> None:
    """A look-ahead that gives up (Abandoned) hands the key to the thread waiting on it, which computes it:
    no error reaches the waiter, and the value is cached once."""
    cache: PredictionCache[int] = PredictionCache(4)
    started, release = threading.Event(), threading.Event()

    def giving_up() -> int:
        started.set()
        release.wait(5)
        raise Abandoned

    def owner() -> None:
        with pytest.raises(Abandoned):
            cache.get_or_compute(1, giving_up)

    t = threading.Thread(target=owner)
    t.start()
    started.wait(5)
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(cache.get_or_compute(1, lambda: 42)))
    waiter.start()
    time.sleep(0.05)  # the waiter is waiting on the owner's entry now
    release.set()
    t.join(5)
    waiter.join(5)
    assert got == [42] and cache.peek(1) == 42


def test_numpy_luma_conversion_matches_the_torch_one() -> None:
    # the filter's CPU preprocessing (numpy) against the formula in float64: within 2e-5 L*, as torch's float32;
    # its 2x2 means are avg_pool2d's bit for bit, and NaN/inf samples read as black/white as on the torch path
    from vs_colorgan.color import gray_to_l, gray_to_l_array
    from vs_colorgan.pipeline import render_luma, shrink

    y = np.random.default_rng(5).random((64, 96), dtype=np.float32) * 1.2 - 0.1
    exact = gray_to_l(torch.from_numpy(y).double()).numpy()
    assert np.abs(gray_to_l_array(y) - exact).max() < 2e-5
    y[3, 4], y[5, 6], y[7, 8] = np.nan, np.inf, -np.inf
    r = render_luma(y)
    assert r.l_norm.shape == (1, 1, 64, 96) and r.l_work.shape == r.y_work.shape == (1, 1, 32, 48)
    assert torch.isfinite(r.l_norm).all()
    assert torch.equal(r.l_work, shrink(r.l_norm))
    assert r.l_norm[0, 0, 3, 4] == -1.0 and r.l_norm[0, 0, 5, 6] == 1.0 and r.l_norm[0, 0, 7, 8] == -1.0


def test_glue_threads_are_per_thread_and_restored() -> None:
    # the glue's torch operations run on the calling thread alone inside the block; the thread count is back
    # after it, inference inside it gets the outer count, and another thread's count is never touched
    import threading

    from vs_colorgan.threads import _openmp, glue_threads, inference_threads

    if _openmp() is None:
        pytest.skip("torch without a findable OpenMP runtime: glue_threads does nothing here")
    torch.set_num_threads(2)
    seen: dict[str, int] = {}
    inside = threading.Event()
    release = threading.Event()

    def other() -> None:
        inside.wait(5)
        seen["other"] = torch.get_num_threads()
        release.set()

    t = threading.Thread(target=other)
    t.start()
    with glue_threads():
        seen["glue"] = torch.get_num_threads()
        with inference_threads():
            seen["inference"] = torch.get_num_threads()
        seen["glue again"] = torch.get_num_threads()
        inside.set()
        release.wait(5)
    t.join()
    seen["after"] = torch.get_num_threads()
    torch.set_num_threads(1)  # this module's setting
    assert seen == {"glue": 1, "inference": 2, "glue again": 1, "other": 2, "after": 2}
