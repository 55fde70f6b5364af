"""Image and video metrics for colourization, in plain numpy + OpenCV.

Frames are ``(H, W, 3)`` ``uint8`` arrays in **RGB** order (8-bit, as a viewer would see them);
gray frames are ``(H, W)`` ``uint8``. Every function is pure and documented with the formula and
the source it follows, so the figures can be compared with published ones.

* :func:`psnr`, :func:`ssim` - fidelity to the ground truth (RGB, 8-bit, peak 255).
* :func:`colorfulness` - Hasler & Süsstrunk (2003), no reference needed.
* :func:`cdc` - colour distribution consistency (Liu et al. 2021, TCVC): Jensen-Shannon divergence
  of per-channel histograms between frames i and i+d.
* :func:`warp_error` - Lai et al. (2018): masked MSE between frame t-1 and frame t warped back by
  optical flow, with Lai's occlusion / motion-boundary mask.
* :func:`chroma_change` - mean CIE Lab chroma difference between consecutive frames (no motion
  compensation): the "picture of flicker" that the evaluation plot draws.

Both temporal metrics (CDC, warp error) reward flat, desaturated output - a gray video scores a
perfect warp error of 0 on a static camera - so always read them beside :func:`colorfulness`.

>>> import numpy as np
>>> a = np.full((32, 32, 3), 100, np.uint8)
>>> round(psnr(a, a + 1), 2)
48.13
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

PEAK = 255.0

# SSIM constants (Wang et al. 2004, "Image quality assessment: from error visibility to structural
# similarity", section III-C): 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = (0.01 * PEAK) ** 2
SSIM_C2 = (0.03 * PEAK) ** 2

# CDC (Liu et al. 2021, TCVC ``calculate_folders_multiple``): dilations 1, 2, 4 weighted 1/3 each.
CDC_DILATIONS = (1, 2, 4)
CDC_WEIGHTS = (1 / 3, 1 / 3, 1 / 3)

# Lai et al. 2018 (fast_blind_video_consistency ``utils.detect_occlusion``) thresholds, for flow in
# pixels: forward-backward check |fw + bw_w|^2 > OCC_ALPHA (|fw|^2 + |bw_w|^2) + OCC_BETA, and motion
# boundary |grad fw|^2 > MB_ALPHA |fw|^2 + MB_BETA (after Sundaram et al. 2010 / Ruder et al. 2016).
OCC_ALPHA = 0.01
OCC_BETA = 0.5
MB_ALPHA = 0.01
MB_BETA = 0.002


def _check_pair(name: str, a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"evaluate.metrics.{name}: the two images must have the same shape, not {a.shape} and {b.shape}")


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over all pixels and channels, in 8-bit units."""
    _check_pair("mse", a, b)
    if a.dtype == np.uint8 and b.dtype == np.uint8:
        return float(cv2.norm(a, b, cv2.NORM_L2SQR)) / a.size  # exact integer sum, fast
    d = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(d * d))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two 8-bit images: ``10 log10(255^2 / MSE)``; ``inf`` when they are identical.

    A constant error of 1 gives ``20 log10(255) = 48.13`` dB.

    >>> psnr(np.zeros((4, 4, 3), np.uint8), np.ones((4, 4, 3), np.uint8))  # doctest: +ELLIPSIS
    48.130...
    """
    m = mse(a, b)
    return float("inf") if m == 0 else float(10.0 * np.log10(PEAK * PEAK / m))


def _gaussian(x: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(x, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004) of two 8-bit images, mean over channels.

    Gaussian window 11x11, sigma 1.5, ``C1 = (0.01 * 255)^2``, ``C2 = (0.03 * 255)^2``; the SSIM map
    is averaged over the "valid" region (5 pixels from each border cropped), as in the authors'
    MATLAB code and BasicSR's ``calculate_ssim``. It equals scikit-image's ``structural_similarity``
    with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255``.
    Identical images give exactly 1.
    """
    _check_pair("ssim", a, b)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"evaluate.metrics.ssim: images must be at least {SSIM_WINDOW}x{SSIM_WINDOW}, not {a.shape[:2]}")
    # float32, all channels at once: the error against a float64 computation is below 1e-6.
    x = a.reshape(*a.shape[:2], -1).astype(np.float32)
    y = b.reshape(*b.shape[:2], -1).astype(np.float32)
    mx, my = _gaussian(x), _gaussian(y)
    sxx = _gaussian(x * x) - mx * mx
    syy = _gaussian(y * y) - my * my
    sxy = _gaussian(x * y) - mx * my
    num = (2 * mx * my + SSIM_C1) * (2 * sxy + SSIM_C2)
    den = (mx * mx + my * my + SSIM_C1) * (sxx + syy + SSIM_C2)
    smap = (num / den).reshape(*a.shape[:2], -1)
    pad = SSIM_WINDOW // 2
    return float(np.mean(smap[pad:-pad, pad:-pad].astype(np.float64)))


def colorfulness(rgb: np.ndarray, *, absolute: bool = False) -> float:
    """Colourfulness M of Hasler & Süsstrunk (2003), eq. in section 4, on 8-bit RGB.

    ``rg = R - G``, ``yb = (R + G) / 2 - B``;
    ``M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2)``.
    0 for any gray image (R = G = B). The paper's opponent channels are signed; the widely copied
    pyimagesearch / DDColor code takes ``|rg|`` and ``|yb|`` first (``absolute=True``), which gives
    larger values: compare published figures only with the variant they used.
    """
    x = rgb.astype(np.float32)  # exact for 8-bit values; the statistics are taken in float64
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    if absolute:
        rg, yb = np.abs(rg), np.abs(yb)
    std = np.hypot(rg.std(dtype=np.float64), yb.std(dtype=np.float64))
    return float(std + 0.3 * np.hypot(rg.mean(dtype=np.float64), yb.mean(dtype=np.float64)))


def colorfulness_batch(rgb: "torch.Tensor") -> "torch.Tensor":
    """:func:`colorfulness` of each picture of a torch batch ``(N, 3, H, W)`` in [0, 1], on the device it lies on.

    The same figure as :func:`colorfulness` of the picture rounded to 8 bits (tests/test_metrics.py checks
    it), for ``colorgan-calibrate``, which scores thousands of candidate renders on a GPU and would spend
    its time copying each one back to NumPy.
    """
    x = (rgb.clamp(0, 1) * 255.0).round().double()
    rg = x[:, 0] - x[:, 1]
    yb = 0.5 * (x[:, 0] + x[:, 1]) - x[:, 2]
    std = (rg.var(dim=(1, 2), correction=0) + yb.var(dim=(1, 2), correction=0)).sqrt()
    return std + 0.3 * (rg.mean(dim=(1, 2)) ** 2 + yb.mean(dim=(1, 2)) ** 2).sqrt()


def channel_histograms(img: np.ndarray) -> np.ndarray:
    """``(C, 256)`` histograms of an 8-bit image's channels, each normalised by ``H * W`` (sums to 1)."""
    if img.dtype != np.uint8:
        raise ValueError(f"evaluate.metrics.channel_histograms: an 8-bit (uint8) image is needed, not {img.dtype}")
    x = img.reshape(img.shape[0] * img.shape[1], -1)
    return np.stack([np.bincount(x[:, c], minlength=256) for c in range(x.shape[1])]).astype(np.float64) / x.shape[0]


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray | float:
    """Jensen-Shannon divergence (natural log) along the last axis: in [0, ln 2], symmetric.

    ``JS(p, q) = KL(p || m) / 2 + KL(q || m) / 2`` with ``m = (p + q) / 2`` and ``0 log 0 = 0``;
    ``p`` and ``q`` are normalised to sum 1 first (as ``scipy.stats.entropy`` does in TCVC's code).
    """
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    p = p / p.sum(axis=-1, keepdims=True)
    q = q / q.sum(axis=-1, keepdims=True)
    m = 0.5 * (p + q)

    def kl(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(x > 0, x * np.log(x / m), 0.0)
        return t.sum(axis=-1)

    out = 0.5 * kl(p) + 0.5 * kl(q)
    return float(out) if out.ndim == 0 else out


def cdc_from_histograms(
    hists: np.ndarray, *, dilations: Sequence[int] = CDC_DILATIONS, weights: Sequence[float] = CDC_WEIGHTS
) -> float | None:
    """CDC of a sequence given its ``(T, C, 256)`` per-frame channel histograms (see :func:`cdc`).

    Dilations with no pair of frames (``d >= T``) are left out and the remaining weights rescaled
    to sum 1 (TCVC's code would return NaN there); ``None`` when no dilation has a pair.
    """
    hists = np.asarray(hists, np.float64)
    t = hists.shape[0]
    used = [(d, w) for d, w in zip(dilations, weights, strict=True) if d < t]
    if not used:
        return None
    total_w = sum(w for _, w in used)
    per_channel = np.zeros(hists.shape[1])
    for d, w in used:
        js = js_divergence(hists[:-d], hists[d:])  # (T - d, C)
        per_channel += (w / total_w) * js.mean(axis=0)
    return float(per_channel.mean())


def cdc(frames: Sequence[np.ndarray], **kwargs) -> float | None:
    """Colour distribution consistency (Liu et al. 2021, "Temporally consistent video colorization
    with deep feature propagation and self-regularization learning", TCVC ``compute_JS_bgr`` and
    ``calculate_folders_multiple``).

    For each channel: 256-bin histogram per frame normalised by ``H * W``; for each dilation
    ``d`` in (1, 2, 4) the mean over ``i`` of ``JS(hist_i, hist_{i+d})`` (natural log); weighted sum
    with weights 1/3; then the mean over the three channels. 0 for a sequence of identical frames;
    lower is more consistent. The channel order (BGR in TCVC, RGB here) does not change the value.
    """
    return cdc_from_histograms(np.stack([channel_histograms(f) for f in frames]), **kwargs)


# --------------------------------------------------------------------------------------------
# Optical flow, Lai et al.'s occlusion mask and warp error
# --------------------------------------------------------------------------------------------


def dis_flow(first: np.ndarray, second: np.ndarray, *, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> np.ndarray:
    """Dense flow ``(H, W, 2)`` (x, y in pixels) from gray ``first`` to ``second`` by OpenCV's DIS
    (Kroeger et al. 2016): ``first(p) ~ second(p + flow(p))``.

    DIS stands in for FlowNet2, which Lai et al. used and which cannot be had here; its figures are
    therefore comparable between our runs, not with published warp errors.
    """
    if first.ndim != 2 or first.dtype != np.uint8 or first.shape != second.shape:
        raise ValueError(
            f"evaluate.metrics.dis_flow: two gray uint8 frames of one size are needed, not {first.shape} {first.dtype} "
            f"and {second.shape} {second.dtype}"
        )
    dis = cv2.DISOpticalFlow_create(preset)
    return dis.calc(first, second, None)


@functools.lru_cache(maxsize=4)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return gx, gy


def warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: ``out(p) = img(p + flow(p))``, bilinear, coordinates clamped to the border
    (as FlowNet2's ``Resample2d``, which Lai et al.'s code uses)."""
    gx, gy = _grid(*flow.shape[:2])
    mx = gx + flow[..., 0].astype(np.float32)
    my = gy + flow[..., 1].astype(np.float32)
    return cv2.remap(img, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def occlusion_mask(fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Lai et al. (2018) mask of unreliable pixels on the first frame's grid: ``True`` = occluded
    or on a motion boundary (left out of the warp error).

    ``fw``: flow first -> second, ``bw``: second -> first. With ``bw_w(p) = bw(p + fw(p))``:

    * occlusion: ``|fw + bw_w|^2 > 0.01 (|fw|^2 + |bw_w|^2) + 0.5`` (forward-backward check);
    * motion boundary: ``|d fw / dx|^2 + |d fw / dy|^2 > 0.01 |fw|^2 + 0.002``, with forward
      differences (0 on the last row / column), as in ``compute_flow_gradients``.
    """
    fw = fw.astype(np.float32)
    bw_w = warp(bw.astype(np.float32), fw)
    fx, fy = fw[..., 0], fw[..., 1]
    bx, by = bw_w[..., 0], bw_w[..., 1]
    fw_mag = fx * fx + fy * fy
    occluded = (fx + bx) ** 2 + (fy + by) ** 2 > OCC_ALPHA * (fw_mag + bx * bx + by * by) + OCC_BETA
    grad = np.zeros_like(fw_mag)
    for c in (fx, fy):
        du = c[:, :-1] - c[:, 1:]
        dv = c[:-1, :] - c[1:, :]
        grad[:, :-1] += du * du
        grad[:-1, :] += dv * dv
    boundary = grad > MB_ALPHA * fw_mag + MB_BETA
    return occluded | boundary


@dataclass(frozen=True)
class FlowPair:
    """Flow from frame t-1 to frame t and the reliable-pixel mask on frame t-1 (``valid``)."""

    forward: np.ndarray  # (H, W, 2) float32
    valid: np.ndarray  # (H, W) bool: not occluded, not on a motion boundary

    @property
    def valid_fraction(self) -> float:
        return float(self.valid.mean())


def flow_pair(prev_gray: np.ndarray, cur_gray: np.ndarray) -> FlowPair:
    """Forward and backward DIS flow between two gray frames and Lai's mask: what the warp error of
    every colourization of these frames is measured with (computed once, on the gray input)."""
    fw = dis_flow(prev_gray, cur_gray)
    bw = dis_flow(cur_gray, prev_gray)
    return FlowPair(fw, ~occlusion_mask(fw, bw))


def warp_error_pair(prev_rgb: np.ndarray, cur_rgb: np.ndarray, pair: FlowPair) -> float:
    """Lai et al. (2018) warp error of one pair (``evaluate_WarpError.py``): frames as RGB in
    [0, 1]; ``sum(valid * (warp(cur, fw) - prev)^2) / N`` with ``N`` the number of valid pixels
    times 3 (all pixels when none is valid)."""
    _check_pair("warp_error_pair", prev_rgb, cur_rgb)
    prev = prev_rgb.astype(np.float32) / PEAK
    cur = cur_rgb.astype(np.float32) / PEAK
    diff = warp(cur, pair.forward) - prev
    mask = pair.valid[..., None].astype(np.float32)
    n = float(mask.sum()) * diff.shape[2]
    if n == 0:
        n = float(diff.size)
    return float(np.sum((diff * mask).astype(np.float64) ** 2) / n)


def warp_error(frames: Sequence[np.ndarray], gray: Sequence[np.ndarray]) -> float | None:
    """Mean over ``t = 1 .. T-1`` of :func:`warp_error_pair`, flow computed on the ``gray`` input
    frames (forward and backward, for the mask). ``None`` for fewer than 2 frames. 0 for a static
    sequence; lower is more stable."""
    if len(frames) != len(gray):
        raise ValueError(f"evaluate.metrics.warp_error: {len(frames)} frames but {len(gray)} gray frames")
    errs = [warp_error_pair(frames[t - 1], frames[t], flow_pair(gray[t - 1], gray[t])) for t in range(1, len(frames))]
    return float(np.mean(errs)) if errs else None


def lab_ab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab a*, b* ``(H, W, 2)`` int16 of an 8-bit sRGB image (D65; OpenCV's 8-bit conversion,
    which stores a* + 128 and b* + 128 rounded, so the values are a*, b* to within 0.5)."""
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2Lab)
    return lab[..., 1:].astype(np.int16) - 128


def chroma_change_ab(prev_ab: np.ndarray, cur_ab: np.ndarray) -> float:
    """:func:`chroma_change` from the frames' :func:`lab_ab` (to convert each frame once)."""
    d = (cur_ab - prev_ab).astype(np.float32)
    return float(np.mean(np.sqrt((d * d).sum(-1)), dtype=np.float64))


def chroma_change(prev_rgb: np.ndarray, cur_rgb: np.ndarray) -> float:
    """Mean over pixels of ``sqrt(da*^2 + db*^2)`` between two consecutive frames (no motion
    compensation): how much the colour, not the light, changes from one frame to the next."""
    _check_pair("chroma_change", prev_rgb, cur_rgb)
    return chroma_change_ab(lab_ab(prev_rgb), lab_ab(cur_rgb))


# False colour (issue 8): a pixel neutral in the truth (Lab chroma below NEUTRAL_CHROMA) painted clearly
# coloured (chroma above FALSE_CHROMA). 8 is about the chroma of a white balance that is visibly off;
# 20 is an unmistakable colour (a pale sky is ~15-25).
NEUTRAL_CHROMA = 8.0
FALSE_CHROMA = 20.0


def lab_float(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab (D65) ``(H, W, 3)`` float64 of an 8-bit sRGB image, by scikit-image's ``rgb2lab``."""
    from skimage.color import rgb2lab

    return rgb2lab(np.ascontiguousarray(rgb))


def ciede2000(rgb: np.ndarray, truth: np.ndarray, *, truth_lab: np.ndarray | None = None) -> float:
    """Mean CIEDE2000 colour difference (Sharma, Wu & Dalal 2005; scikit-image's implementation) between
    two 8-bit sRGB images: the perceptual error HAVC's README reports. ``truth_lab`` saves a conversion."""
    from skimage.color import deltaE_ciede2000

    _check_pair("ciede2000", rgb, truth)
    ref = lab_float(truth) if truth_lab is None else truth_lab
    return float(np.mean(deltaE_ciede2000(ref, lab_float(rgb)), dtype=np.float64))


def false_colour_rate(rgb: np.ndarray, truth: np.ndarray, *, truth_lab: np.ndarray | None = None) -> float | None:
    """Share of the truth's neutral pixels (chroma < :data:`NEUTRAL_CHROMA`) that ``rgb`` paints clearly
    coloured (chroma > :data:`FALSE_CHROMA`); ``None`` when the truth has no neutral pixel."""
    _check_pair("false_colour_rate", rgb, truth)
    ref = lab_float(truth) if truth_lab is None else truth_lab
    neutral = np.hypot(ref[..., 1], ref[..., 2]) < NEUTRAL_CHROMA
    if not neutral.any():
        return None
    ours = lab_float(rgb)
    coloured = np.hypot(ours[..., 1], ours[..., 2]) > FALSE_CHROMA
    return float((coloured & neutral).sum() / neutral.sum())


# Rainbows (issue 17): over a flat or smooth picture a weak model paints bands of unrelated hues. One
# plausible tint is fine; a pixel clearly coloured (chroma above RAINBOW_CHROMA) whose hue lies more than
# RAINBOW_DEGREES from the picture's chroma-weighted mean hue is a rainbow pixel.
RAINBOW_CHROMA = 15.0
RAINBOW_DEGREES = 60.0


def rainbow_share(rgb: np.ndarray, *, chroma_min: float = RAINBOW_CHROMA, max_degrees: float = RAINBOW_DEGREES) -> float:
    """Share of all pixels of an 8-bit sRGB image that are clearly coloured and off the picture's main hue.

    The main hue is the direction of the sum of every pixel's (a*, b*) vector: the chroma-weighted circular
    mean. 0 for a gray picture or any single tint.
    """
    lab = lab_float(rgb)
    a, b = lab[..., 1], lab[..., 2]
    mean_hue = np.arctan2(b.sum(), a.sum())
    diff = np.abs(np.angle(np.exp(1j * (np.arctan2(b, a) - mean_hue))))  # wrapped to [0, pi]
    off = (np.hypot(a, b) > chroma_min) & (diff > np.radians(max_degrees))
    return float(off.mean())
