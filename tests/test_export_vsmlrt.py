"""The ``--target vsmlrt`` export through the real vs-mlrt plugin (``core.ort.Model``), and beside the filter.

* ``core.ort.Model`` runs the file as is (GRAYS in, RGBS out, any frame size) and returns what the
  PyTorch graph computes (max 1e-4: the same float32 arithmetic in another order).
* Against ``vs_colorgan.colorize(clip, model=<native .onnx>, backend="ort", temporal_radius=0)``: the same
  network input (the graph shrinks like ``core.resize.Bicubic``, see export/graphs.py), but the two end
  differently. The filter keeps the source Y' and upsamples Cb/Cr guided by the luma (then limits the
  gamut); the vs-mlrt graph keeps L* and enlarges ab bilinearly. On frames with trained-like colour
  (mean |ab_norm| 0.1, RGB chroma ~0.08 from gray) we measure mean 0.02 / max 0.15 in sRGB [0, 1] for the raw RGB, and mean
  0.005 / max 0.10 once the source luma is put back (docs/export.md recipe). Tolerances: raw mean 0.04,
  max 0.3; luma put back mean 0.01, max 0.2. A wrong channel order, a missing resize or a
  mis-normalised L breaks them by 0.1 ... 0.5 in the mean.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vs_colorgan
from vs_colorgan.export.graphs import VsmlrtGraph
from vs_colorgan.export.onnx_export import export_onnx
from vs_colorgan.model_io import ModelConfig
from vs_colorgan.networks import build_generator

core = vs.core
RAW_TOL = (0.04, 0.3)  # (mean, max), sRGB [0, 1]
LUMA_KEPT_TOL = (0.01, 0.2)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def trained_like(arch: str, seed: int = 0) -> torch.nn.Module:
    """A random generator whose output layer is rescaled so that its colours are about as saturated as
    a trained one's (mean |ab_norm| ~ 0.1, about 11 a*b* units) rather than fresh weights' arbitrary
    0.02 ... 0.4 (garish or nearly gray, depending on the architecture)."""
    torch.manual_seed(seed)
    model = build_generator(arch, width=8).eval()
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    l_norm = torch.from_numpy(photo_frames(96, 64)[0])[None, None] * 2.0 - 1.0
    with torch.no_grad():
        for _ in range(3):  # tanh is nearly linear here: a few rescalings converge
            gain = 0.1 / float(model(l_norm).abs().mean())
            last.weight.mul_(gain)
            last.bias.mul_(gain)
    return model


def photo_frames(width: int, height: int) -> list[np.ndarray]:
    """Three real photographs (skimage.data) as gamma-encoded gray (BT.601 luma) frames in [0, 1]."""
    import skimage.data
    import skimage.transform

    frames = []
    for name in ("astronaut", "coffee", "chelsea"):
        rgb = getattr(skimage.data, name)() / 255.0
        y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
        frames.append(skimage.transform.resize(y, (height, width), anti_aliasing=True).astype(np.float32))
    return frames


def clip_of(frames: list[np.ndarray]) -> vs.VideoNode:
    h, w = frames[0].shape
    blank = core.std.BlankClip(width=w, height=h, format=vs.GRAYS, length=len(frames))

    def put(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        np.copyto(np.asarray(out[0]), frames[n])
        return out

    return core.std.ModifyFrame(blank, blank, put)


def planes(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.asarray(frame[p]) for p in range(frame.format.num_planes)])


def export_pair(tmp_path: Path, arch: str, render_size: int = 64) -> tuple[torch.nn.Module, ModelConfig, Path, Path]:
    model = trained_like(arch)
    cfg = ModelConfig(arch=arch, width=8, render_size=render_size)
    native, vsmlrt = tmp_path / "native.onnx", tmp_path / "vsmlrt.onnx"
    export_onnx(model, cfg, native)
    export_onnx(model, cfg, vsmlrt, target="vsmlrt")
    return model, cfg, native, vsmlrt


@pytest.mark.parametrize("arch", ["unet", "colorization-net"])
def test_core_ort_model_runs_the_file_as_is(tmp_path, arch):
    model, cfg, _, vsmlrt = export_pair(tmp_path, arch)
    graph = VsmlrtGraph(model, cfg)
    for width, height in [(128, 96), (101, 67), (64, 200)]:  # sizes that are multiples of nothing too
        gray = clip_of(photo_frames(width, height)[:1])
        rgb = core.ort.Model(gray, network_path=str(vsmlrt), provider="CPU")
        assert (rgb.format.id, rgb.width, rgb.height) == (vs.RGBS, width, height)
        got = planes(rgb.get_frame(0))
        with torch.inference_mode():
            want = graph(torch.from_numpy(np.asarray(gray.get_frame(0)[0]).copy())[None, None])[0].numpy()
        assert np.abs(got - want).max() < 1e-4
        assert 0.0 <= got.min() and got.max() <= 1.0


def test_core_ort_model_gray8_recipe(tmp_path):
    """docs/export.md: an 8-bit gray clip -> GRAYS (limited range expanded by zimg) -> RGBS -> RGB24."""
    _, _, _, vsmlrt = export_pair(tmp_path, "unet")
    src = core.resize.Point(clip_of(photo_frames(96, 64)), format=vs.GRAY8, range_s="limited")
    gray = core.resize.Point(src, format=vs.GRAYS)
    rgb24 = core.resize.Point(core.ort.Model(gray, network_path=str(vsmlrt)), format=vs.RGB24)
    f = planes(rgb24.get_frame(1)).astype(np.int32)
    assert rgb24.format.id == vs.RGB24 and f.shape == (3, 64, 96)
    assert (f.max(axis=0) - f.min(axis=0)).mean() > 2  # coloured, not gray


def filter_and_vsmlrt(tmp_path: Path, arch: str) -> tuple[vs.VideoNode, vs.VideoNode, vs.VideoNode, vs.VideoNode]:
    """RGBS clips of the same gray clip: the filter; vs-mlrt; vs-mlrt with the source luma put back
    (docs/export.md recipe); vs-mlrt exported with --matrix 170m."""
    model, cfg, native, vsmlrt = export_pair(tmp_path, arch)
    export_onnx(model, cfg, tmp_path / "vsmlrt_170m.onnx", target="vsmlrt", matrix=6)
    gray = core.std.SetFrameProps(clip_of(photo_frames(128, 96)), _Matrix=6)  # tagged, like a real source
    filtered = vs_colorgan.colorize(gray, model=str(native), backend="ort", temporal_radius=0)
    filtered = core.resize.Point(filtered, format=vs.RGBS)  # matrix from the frames' _Matrix
    # core.ort.Model copies the input frames' properties: an RGB frame must not keep a YUV _Matrix
    rgb = core.std.SetFrameProps(core.ort.Model(gray, network_path=str(vsmlrt)), _Matrix=0)
    # docs/export.md recipe: RGBS -> YUV with the clip's matrix, original Y' back in, -> RGBS
    yuv = core.resize.Point(rgb, format=vs.YUV444PS, matrix_s="170m")
    kept = core.std.ShufflePlanes([gray, yuv], [0, 1, 2], vs.YUV)
    kept = core.resize.Point(kept, format=vs.RGBS, matrix_in_s="170m")
    matrix = core.std.SetFrameProps(core.ort.Model(gray, network_path=str(tmp_path / "vsmlrt_170m.onnx")), _Matrix=0)
    return filtered, rgb, kept, matrix


@pytest.mark.parametrize("arch", ["unet", "colorization-net"])
def test_vsmlrt_matches_the_filter(tmp_path, arch):
    filtered, rgb, kept, matrix = filter_and_vsmlrt(tmp_path, arch)
    assert filtered.format.id == rgb.format.id == matrix.format.id == vs.RGBS
    assert (filtered.width, filtered.height) == (rgb.width, rgb.height)
    for n in range(filtered.num_frames):
        want = np.clip(planes(filtered.get_frame(n)), 0.0, 1.0)
        for got, (mean_tol, max_tol) in [(planes(rgb.get_frame(n)), RAW_TOL),
                                          (np.clip(planes(kept.get_frame(n)), 0.0, 1.0), LUMA_KEPT_TOL),
                                          (np.clip(planes(matrix.get_frame(n)), 0.0, 1.0), LUMA_KEPT_TOL)]:
            err = np.abs(got - want)
            assert err.mean() < mean_tol and err.max() < max_tol, (n, float(err.mean()), float(err.max()))
        # both are coloured, by similar amounts (not two grays that agree trivially)
        chroma = [float(np.abs(x - x.mean(axis=0)).mean()) for x in (want, planes(rgb.get_frame(n)))]
        assert min(chroma) > 0.02 and abs(chroma[0] - chroma[1]) < 0.3 * max(chroma)
