"""evaluate.metrics against hand-computed cases and reference implementations."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from vs_colorgan.evaluate import metrics
from vs_colorgan.evaluate.scoring import SequenceScorer

LN2 = math.log(2.0)


def solid(rgb: tuple[int, int, int], h: int = 32, w: int = 48) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (h, w, 3)).copy()


def texture(h: int = 64, w: int = 96, seed: int = 0) -> np.ndarray:
    """Smooth random gray texture (uint8), good for optical flow."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 1, (h, w)).astype(np.float32)
    t = cv2.GaussianBlur(noise, (0, 0), 2.0)
    t = (t - t.min()) / (t.max() - t.min())
    return (t * 200 + 25).astype(np.uint8)


# ---------------------------------------------------------------- PSNR / SSIM


def test_psnr_known_values():
    a = solid((100, 50, 200))
    # MSE 1 -> 10 log10(255^2) = 20 log10(255) = 48.1308 dB
    assert metrics.psnr(a, a + 1) == pytest.approx(48.1308, abs=1e-4)
    # MSE 4 -> 20 log10(255 / 2) = 42.1102 dB
    assert metrics.psnr(a, a - 2) == pytest.approx(42.1102, abs=1e-4)
    # one channel off by 3 -> MSE 3 -> 10 log10(65025 / 3) = 43.3596 dB
    b = a.copy()
    b[..., 1] += 3
    assert metrics.psnr(a, b) == pytest.approx(43.3596, abs=1e-4)
    assert metrics.psnr(a, a) == math.inf


def test_psnr_symmetric_and_shape_checked():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert metrics.psnr(a, b) == metrics.psnr(b, a)
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(a, b[:10])


def test_ssim_identical_is_one_and_matches_scikit_image():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    assert metrics.ssim(a, a) == 1.0
    for sigma in (5, 25, 60):
        b = np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).astype(np.uint8)
        ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=255, channel_axis=2)
        assert metrics.ssim(a, b) == pytest.approx(ref, abs=1e-6)


def test_ssim_falls_with_noise():
    rng = np.random.default_rng(3)
    a = cv2.cvtColor(texture(), cv2.COLOR_GRAY2RGB)
    scores = [metrics.ssim(a, np.clip(a + rng.normal(0, s, a.shape), 0, 255).astype(np.uint8)) for s in (2, 10, 40)]
    assert scores[0] > scores[1] > scores[2]


def test_ssim_rejects_tiny_images():
    a = solid((1, 2, 3), 8, 8)
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(a, a)


# ---------------------------------------------------------------- colourfulness


def test_colorfulness_of_gray_is_zero():
    assert metrics.colorfulness(solid((128, 128, 128))) == 0.0
    g = texture()
    assert metrics.colorfulness(np.dstack([g, g, g])) == 0.0


def test_colorfulness_hand_computed():
    # Uniform pure red: rg = 255, yb = 127.5, both with std 0 -> M = 0.3 * sqrt(255^2 + 127.5^2) = 85.5296
    assert metrics.colorfulness(solid((255, 0, 0))) == pytest.approx(0.3 * math.hypot(255, 127.5), abs=1e-9)
    assert metrics.colorfulness(solid((255, 0, 0))) == pytest.approx(85.5296, abs=1e-4)
    # Half pure red, half pure blue: rg in {255, 0}, yb in {127.5, -255}.
    # mean rg = 127.5, std rg = 127.5; mean yb = -63.75, std yb = 191.25
    # M = sqrt(127.5^2 + 191.25^2) + 0.3 sqrt(127.5^2 + 63.75^2) = 229.8539 + 42.7648 = 272.6187
    img = solid((255, 0, 0))
    img[:, 24:] = (0, 0, 255)
    assert metrics.colorfulness(img) == pytest.approx(272.6187, abs=1e-3)
    # pyimagesearch / DDColor variant (absolute opponents): |yb| in {127.5, 255}: mean 191.25, std 63.75
    # M = sqrt(127.5^2 + 63.75^2) + 0.3 sqrt(127.5^2 + 191.25^2) = 142.5496 + 68.9562 = 211.5058
    assert metrics.colorfulness(img, absolute=True) == pytest.approx(211.5058, abs=1e-3)


# ---------------------------------------------------------------- JS divergence and CDC


def test_js_divergence_bounds_symmetry_and_natural_log():
    assert metrics.js_divergence([1, 0], [0, 1]) == pytest.approx(LN2)  # disjoint: maximum, ln 2
    assert metrics.js_divergence([0.2, 0.8], [0.2, 0.8]) == 0.0
    rng = np.random.default_rng(4)
    p, q = rng.random(256), rng.random(256)
    assert metrics.js_divergence(p, q) == pytest.approx(metrics.js_divergence(q, p), abs=1e-15)
    assert 0 < metrics.js_divergence(p, q) < LN2
    # Hand-computed: p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4)
    # JS = 1/2 ln(4/3) + 1/2 (1/2 ln(2/3) + 1/2 ln 2) = 0.215762
    want = 0.5 * math.log(4 / 3) + 0.5 * (0.5 * math.log(2 / 3) + 0.5 * math.log(2))
    assert metrics.js_divergence([1, 0], [0.5, 0.5]) == pytest.approx(want, abs=1e-12)
    assert want == pytest.approx(0.215762, abs=1e-6)


def test_js_divergence_matches_scipy_entropy_form():
    """TCVC's code: JS = entropy(p, m) / 2 + entropy(q, m) / 2 with scipy.stats.entropy (natural log)."""
    from scipy.stats import entropy

    rng = np.random.default_rng(5)
    for _ in range(3):
        p, q = rng.random(256) ** 4, rng.random(256) ** 4
        p /= p.sum()
        q /= q.sum()
        m = (p + q) / 2
        assert metrics.js_divergence(p, q) == pytest.approx(0.5 * entropy(p, m) + 0.5 * entropy(q, m), abs=1e-12)


def test_channel_histograms_normalised_by_pixel_count():
    img = solid((10, 20, 30), 4, 5)
    img[0, 0] = (11, 20, 30)
    h = metrics.channel_histograms(img)
    assert h.shape == (3, 256)
    np.testing.assert_allclose(h.sum(axis=1), 1.0)
    assert h[0, 10] == pytest.approx(19 / 20) and h[0, 11] == pytest.approx(1 / 20)
    assert h[1, 20] == 1.0 and h[2, 30] == 1.0


def test_cdc_identical_frames_is_zero():
    f = cv2.cvtColor(texture(), cv2.COLOR_GRAY2RGB)
    assert metrics.cdc([f] * 6) == 0.0


def test_cdc_hand_computed_dilations_and_weights():
    black, white = solid((0, 0, 0)), solid((255, 255, 255))
    # Alternating black / white, 5 frames: every d = 1 pair is disjoint (JS = ln 2), every d = 2 and
    # the d = 4 pair are identical (0): CDC = 1/3 ln 2 + 1/3 * 0 + 1/3 * 0.
    seq = [black, white, black, white, black]
    assert metrics.cdc(seq) == pytest.approx(LN2 / 3, abs=1e-12)
    # Two frames: only d = 1 has a pair; its weight is rescaled to 1.
    assert metrics.cdc([black, white]) == pytest.approx(LN2, abs=1e-12)
    assert metrics.cdc([black]) is None
    # Only one channel changes: the mean over channels divides by 3.
    red = solid((255, 0, 0))
    assert metrics.cdc([black, red]) == pytest.approx(LN2 / 3, abs=1e-12)


def test_cdc_independent_of_channel_order():
    rng = np.random.default_rng(6)
    frames = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(6)]
    assert metrics.cdc(frames) == pytest.approx(metrics.cdc([f[..., ::-1] for f in frames]), abs=1e-15)


# ---------------------------------------------------------------- flow, mask, warp error


def test_warp_integer_shift_and_border_clamp():
    img = np.arange(5 * 6, dtype=np.float32).reshape(5, 6)
    flow = np.zeros((5, 6, 2), np.float32)
    flow[..., 0] = 1.0  # out(x, y) = img(x + 1, y)
    out = metrics.warp(img, flow)
    np.testing.assert_array_equal(out[:, :-1], img[:, 1:])
    np.testing.assert_array_equal(out[:, -1], img[:, -1])  # clamped to the border


def test_occlusion_mask_hand_built_flows():
    h, w = 12, 16
    fw = np.zeros((h, w, 2), np.float32)
    fw[..., 0] = 3.0
    bw = -fw
    # Consistent forward/backward, constant flow: nothing occluded, no motion boundary.
    assert not metrics.occlusion_mask(fw, bw).any()
    # Backward flow zero: |fw + bw_w|^2 = 9 > 0.01 * 9 + 0.5 everywhere.
    assert metrics.occlusion_mask(fw, np.zeros_like(fw)).all()
    # A step in the forward flow between columns 7 and 8: a motion boundary on column 7 only
    # (forward differences), where |grad|^2 = 9 > 0.01 * 9 + 0.002. bw is made consistent.
    fw2 = np.zeros((h, w, 2), np.float32)
    fw2[:, 8:, 1] = 3.0
    mask = metrics.occlusion_mask(fw2, -fw2)
    assert mask[:, 7].all()
    assert not mask[:, :7].any() and not mask[:, 8:].any()


def test_dis_flow_recovers_a_shift():
    g = texture(96, 128)
    shifted = np.roll(g, 3, axis=1)  # second(p + (3, 0)) = first(p)
    flow = metrics.dis_flow(g, shifted)
    inner = flow[16:-16, 16:-16]
    assert np.median(inner[..., 0]) == pytest.approx(3.0, abs=0.25)
    assert np.median(inner[..., 1]) == pytest.approx(0.0, abs=0.25)


def test_warp_error_identical_frames_is_zero():
    g = texture()
    f = cv2.cvtColor(g, cv2.COLOR_GRAY2RGB)
    assert metrics.warp_error([f, f, f], [g, g, g]) == 0.0
    assert metrics.warp_error([f], [g]) is None


def test_warp_error_hand_computed_colour_flicker():
    # Static gray input (flow 0, nothing masked); the colourization of frame 1 adds 10 to R:
    # error = (10 / 255)^2 / 3 (mean over the three channels).
    g = texture()
    a = solid((100, 120, 140), *g.shape)
    b = a.copy()
    b[..., 0] += 10
    want = (10 / 255) ** 2 / 3
    assert metrics.warp_error([a, b], [g, g]) == pytest.approx(want, rel=1e-5)
    assert metrics.warp_error([a, b, b], [g, g, g]) == pytest.approx(want / 2, rel=1e-5)


def test_warp_error_follows_motion():
    """Colour frames that move with the gray input: the warp error is far below the plain MSE."""
    g0 = texture(96, 128, seed=7)
    g1 = np.roll(g0, 2, axis=1)
    c0 = cv2.applyColorMap(g0, cv2.COLORMAP_JET)[..., ::-1].copy()
    c1 = np.roll(c0, 2, axis=1)
    err = metrics.warp_error([c0, c1], [g0, g1])
    plain = metrics.mse(c0, c1) / 255**2
    assert err < 0.1 * plain


def test_chroma_change():
    g = texture()
    gray = np.dstack([g, g, g])
    assert metrics.chroma_change(gray, gray[::-1].copy()) == 0.0  # gray frames have no chroma
    a, b = solid((200, 60, 60)), solid((60, 200, 60))
    lab = [cv2.cvtColor(x[:1, :1].astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[0, 0] for x in (a, b)]
    want = math.hypot(lab[1][1] - lab[0][1], lab[1][2] - lab[0][2])
    assert metrics.chroma_change(a, b) == pytest.approx(want, abs=1.0)  # 8-bit Lab: a*, b* within 0.5
    assert metrics.chroma_change(a, a) == 0.0


# ---------------------------------------------------------------- streaming scorer


def test_sequence_scorer_matches_batch_metrics():
    rng = np.random.default_rng(8)
    grays = [np.roll(texture(64, 96, seed=9), 2 * t, axis=1) for t in range(6)]
    truth = [cv2.applyColorMap(g, cv2.COLORMAP_JET)[..., ::-1].copy() for g in grays]
    ours = [np.clip(t + rng.normal(0, 8, t.shape), 0, 255).astype(np.uint8) for t in truth]
    s, ref = SequenceScorer(), SequenceScorer(is_reference=True)
    for t in range(6):
        pair = metrics.flow_pair(grays[t - 1], grays[t]) if t else None
        s.add(ours[t], truth[t], pair)
        ref.add(truth[t], truth[t], pair)
    ref_sum = ref.summary(ref.summary(None)["colorfulness"])
    got = s.summary(ref_sum["colorfulness"])
    assert got["cdc"] == pytest.approx(metrics.cdc(ours), abs=1e-12)
    assert got["warp_error"] == pytest.approx(metrics.warp_error(ours, grays), abs=1e-9)
    assert got["psnr"] == pytest.approx(np.mean([metrics.psnr(o, t) for o, t in zip(ours, truth)]))
    assert got["ssim"] == pytest.approx(np.mean([metrics.ssim(o, t) for o, t in zip(ours, truth)]))
    cf = np.mean([metrics.colorfulness(o) for o in ours])
    assert got["colorfulness"] == pytest.approx(cf)
    assert got["colorfulness_ratio"] == pytest.approx(cf / np.mean([metrics.colorfulness(t) for t in truth]))
    assert ref_sum["psnr"] is None and ref_sum["ssim"] == 1.0 and ref_sum["colorfulness_ratio"] == 1.0
    assert ref_sum["cdc"] == pytest.approx(metrics.cdc(truth), abs=1e-12)
    with pytest.raises(ValueError, match="flow pair"):
        s.add(ours[0], truth[0], None)


# ---- CIEDE2000 and the false-colour rate (issue 8)

def _uniform(rgb: tuple[int, int, int], h: int = 8, w: int = 8) -> np.ndarray:
    return np.tile(np.array(rgb, np.uint8), (h, w, 1))


def test_ciede2000_zero_for_identical_and_sharma_pair():
    img = _uniform((120, 80, 40))
    assert metrics.ciede2000(img, img) == 0.0
    # Sharma, Wu & Dalal (2005), Table 1, pair 1: Lab (50, 2.6772, -79.7751) vs (50, 0, -82.7485) -> 2.0425,
    # through the same scikit-image routine the metric uses (its Lab inputs given directly)
    from skimage.color import deltaE_ciede2000

    assert abs(float(deltaE_ciede2000(np.array([50, 2.6772, -79.7751]), np.array([50, 0, -82.7485]))) - 2.0425) < 1e-4
    # a gray picture against a saturated red one: the mean over pixels of a large difference
    red, gray = _uniform((200, 30, 30)), _uniform((110, 110, 110))
    d = metrics.ciede2000(red, gray)
    assert 20 < d < 80 and abs(d - metrics.ciede2000(gray, red)) < 1e-9
    # half the picture changed: half the mean
    half = gray.copy()
    half[:, :4] = red[:, :4]
    assert abs(metrics.ciede2000(half, gray) - d / 2) < 1e-9
    with pytest.raises(ValueError):
        metrics.ciede2000(red, _uniform((1, 2, 3), 4, 4))


def test_false_colour_rate_hand_made():
    truth = _uniform((128, 128, 128))
    truth[:, 4:] = (30, 160, 40)  # left half neutral, right half green
    ours = truth.copy()
    assert metrics.false_colour_rate(ours, truth) == 0.0
    ours[:2, :4] = (200, 40, 40)  # paint a quarter of the neutral half red: clearly coloured
    assert metrics.false_colour_rate(ours, truth) == pytest.approx(2 * 4 / 32)
    ours[2:4, :4] = (134, 128, 124)  # a faint tint (chroma < 20) is not false colour
    assert metrics.false_colour_rate(ours, truth) == pytest.approx(8 / 32)
    gray_out = _uniform((128, 128, 128))
    assert metrics.false_colour_rate(gray_out, truth) == 0.0  # gray output never paints false colour
    assert metrics.false_colour_rate(truth, _uniform((30, 160, 40))) is None  # no neutral pixel in the truth


def test_colorfulness_batch_is_colorfulness_of_the_8bit_picture():
    """colorgan-calibrate's batched torch form gives evaluate's figure, picture by picture."""
    import torch

    rng = np.random.default_rng(3)
    batch = torch.from_numpy(rng.random((3, 3, 20, 30))).float()
    batch[1] = batch[1].mean(0, keepdim=True)  # a gray picture: 0
    got = metrics.colorfulness_batch(batch)
    for i in range(3):
        u8 = (batch[i].permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
        assert got[i].item() == pytest.approx(metrics.colorfulness(u8), rel=1e-9, abs=1e-9)
    assert got[1].item() == 0.0
