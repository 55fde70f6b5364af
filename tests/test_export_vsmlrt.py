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

from conftest import frames_clip, photo_frames, planes, trained_like

core = vs.core
RAW_TOL = (0.04, 0.3)  # (mean, max), sRGB [0, 1]
LUMA_KEPT_TOL = (0.01, 0.2)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)








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
        gray = frames_clip(photo_frames(width, height)[:1])
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
    src = core.resize.Point(frames_clip(photo_frames(96, 64)), format=vs.GRAY8, range_s="limited")
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
    gray = core.std.SetFrameProps(frames_clip(photo_frames(128, 96)), _Matrix=6)  # tagged, like a real source
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
