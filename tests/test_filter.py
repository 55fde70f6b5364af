"""vs_colorgan.colorize on a real VapourSynth core: formats, exact luma, props, sizes, backends, errors.

Models are made here (a width-8 U-Net with randomised batch-norm statistics, so its colours vary with the
picture) and saved both as .safetensors and .onnx; clips are built from scikit-image's astronaut, in gray.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs

from vs_colorgan.export.onnx_export import export_onnx
from vs_colorgan import colorize
from vs_colorgan.backends import choose_backend
from vs_colorgan.filter import render_luma_clip
from vs_colorgan.model_io import ModelConfig, save_generator

from vs_colorgan.pipeline import ColorOptions, Colorizer
from conftest import RS, frames_clip, gray_frames, tiny_generator

torch.set_num_threads(1)
core = vs.core










def planes(frame: vs.VideoFrame) -> list[np.ndarray]:
    return [np.array(frame[p]) for p in range(frame.format.num_planes)]


@pytest.fixture(scope="module")
def gray8() -> vs.VideoNode:
    return frames_clip(gray_frames(3, 96, 64))


FORMATS = [
    (vs.GRAY8, vs.YUV444P8), (vs.GRAY10, vs.YUV444P10), (vs.GRAY16, vs.YUV444P16), (vs.GRAYS, vs.YUV444PS),
    (vs.YUV420P8, vs.YUV420P8), (vs.YUV422P10, vs.YUV422P10), (vs.YUV444P16, vs.YUV444P16),
    (vs.YUV444PS, vs.YUV444PS), (vs.YUV410P8, vs.YUV410P8), (vs.YUV420P12, vs.YUV420P12),
]


@pytest.mark.parametrize(("in_format", "out_format"), FORMATS, ids=lambda f: vs.core.get_video_format(f).name)
def test_luma_is_bit_exact_and_chroma_is_new(model: Path, gray8: vs.VideoNode, in_format: int, out_format: int) -> None:
    src = core.resize.Bicubic(gray8, format=in_format)
    out = colorize(src, model=model, backend="torch", temporal_radius=1)
    assert out.format.id == out_format and (out.width, out.height) == (src.width, src.height)
    assert out.num_frames == src.num_frames
    for n in (0, 2):
        s, o = src.get_frame(n), out.get_frame(n)
        assert np.array_equal(np.asarray(s[0]), np.asarray(o[0])), "the Y plane must be the source's, bit for bit"
        cb, cr = np.asarray(o[1]).astype(np.float64), np.asarray(o[2]).astype(np.float64)
        assert cb.std() > 0 and cr.std() > 0, "chroma follows the picture"
        assert o.props["_Matrix"] == 6 and o.props["_Primaries"] == 6 and o.props["_Transfer"] == 6  # SD default
        expected_range = 1 if out.format.sample_type == vs.FLOAT else s.props.get("_Range", 0)
        assert int(o.props["_Range"]) == int(expected_range)


@pytest.mark.parametrize("fmt", [vs.RGB24, vs.RGB30, vs.RGBS])
def test_rgb_in_rgb_out_with_the_same_luma(model: Path, gray8: vs.VideoNode, fmt: int) -> None:
    src = core.resize.Bicubic(gray8, format=fmt)
    out = colorize(src, model=model, backend="torch", temporal_radius=0)
    assert out.format.id == fmt
    o = out.get_frame(1)
    rgb = np.stack(planes(o)).astype(np.float64)
    assert np.abs(rgb[0] - rgb[1]).mean() > 0.01 * rgb.max(), "not gray any more"
    # luma (BT.709, the default working matrix) of the output equals the input's within rounding
    to_y = lambda c: np.asarray(core.resize.Point(c, format=vs.GRAYS, matrix=1).get_frame(1)[0])
    depth = out.format.bits_per_sample if out.format.sample_type == vs.INTEGER else 16
    # (chroma is kept inside the R'G'B' gamut, so decoding clips nothing; only rounding remains)
    assert np.abs(to_y(src) - to_y(out)).max() < 1.0 / (1 << depth) + 1e-5
    assert o.props["_Matrix"] == 0


def test_props_are_set_and_passed_through(model: Path) -> None:
    src = core.resize.Point(frames_clip(gray_frames(1, 96, 64)), format=vs.YUV420P10)
    tagged = core.std.SetFrameProps(src, _Matrix=1, _Transfer=4, _Primaries=1, _ChromaLocation=2)
    o = colorize(tagged, model=model, backend="torch").get_frame(0)
    assert (o.props["_Matrix"], o.props["_Transfer"], o.props["_Primaries"], int(o.props["_Range"])) == (1, 4, 1, 0)
    assert o.props["_ChromaLocation"] == 2
    assert colorize(src, model=model, matrix=9).get_frame(0).props["_Matrix"] == 9  # fallback for untagged frames
    assert colorize(tagged, model=model, matrix=9).get_frame(0).props["_Matrix"] == 1  # tags win
    # a GRAY plane taken from an RGB clip carries _Matrix=0: no statement about YCbCr, the default applies
    from_rgb = core.std.ShufflePlanes(core.resize.Point(frames_clip(gray_frames(1, 96, 64)), format=vs.RGB24), 1, vs.GRAY)
    assert from_rgb.get_frame(0).props["_Matrix"] == 0
    assert colorize(from_rgb, model=model).get_frame(0).props["_Matrix"] == 6
    # HD frames without a matrix get BT.709 and its transfer and primaries
    hd = colorize(core.std.BlankClip(format=vs.GRAY8, width=1280, height=720, length=1), model=model).get_frame(0)
    assert (hd.props["_Matrix"], hd.props["_Transfer"], hd.props["_Primaries"]) == (1, 1, 1)


def _rgb(clip: vs.VideoNode) -> np.ndarray:
    return np.stack(planes(core.resize.Point(clip, format=vs.RGBS).get_frame(0)))


def test_range_is_honoured(model: Path) -> None:
    """One picture coded in limited and in full range colourizes to the same RGB."""
    gray = core.std.SetFrameProps(frames_clip(gray_frames(1, 96, 64)), _Range=1)  # 0..255 is the whole range
    limited = colorize(core.resize.Point(gray, format=vs.YUV420P10, range=0), model=model)
    full = colorize(core.resize.Point(gray, format=vs.YUV420P10, range=1), model=model)
    assert int(limited.get_frame(0).props["_Range"]) == 0 and int(full.get_frame(0).props["_Range"]) == 1
    assert not np.array_equal(np.asarray(limited.get_frame(0)[1]), np.asarray(full.get_frame(0)[1]))
    assert np.abs(_rgb(limited) - _rgb(full)).mean() < 2e-3


def test_matrix_is_honoured(model: Path) -> None:
    """Chroma is computed for the frame's matrix: decoding with that matrix gives the predicted colour on the
    source luma, so two matrices differ by a gray offset only (R-G and B-G agree), unlike a wrong decode."""
    src = core.resize.Point(frames_clip(gray_frames(1, 96, 64)), format=vs.YUV444PS)
    sd = colorize(src, model=model)  # untagged SD: SMPTE 170M
    hd = colorize(core.std.SetFrameProps(src, _Matrix=1), model=model)
    misread = core.std.SetFrameProps(hd, _Matrix=6)

    def chroma_error(a: np.ndarray, b: np.ndarray) -> float:
        d = a - b
        return float(np.median(np.abs(np.concatenate([d[0] - d[1], d[2] - d[1]]))))

    assert chroma_error(_rgb(hd), _rgb(sd)) < 1e-4
    assert chroma_error(_rgb(misread), _rgb(sd)) > 20 * chroma_error(_rgb(hd), _rgb(sd))


@pytest.mark.parametrize(("width", "height", "fmt"), [(721, 403, vs.GRAY8), (721, 403, vs.YUV444P8),
                                                      (16, 16, vs.YUV420P8), (16, 40, vs.GRAY16), (402, 16, vs.YUV422P8)])
def test_odd_and_tiny_sizes(model: Path, width: int, height: int, fmt: int) -> None:
    src = core.resize.Bicubic(frames_clip(gray_frames(2, width, height)), format=fmt)
    out = colorize(src, model=model, backend="torch")
    f = out.get_frame(1)
    assert (f.width, f.height) == (width, height)
    assert np.array_equal(np.asarray(f[0]), np.asarray(src.get_frame(1)[0]))


def test_torch_and_ort_agree(model: Path, gray8: vs.VideoNode) -> None:
    """Same model, two runtimes: chroma within 1 code value (8-bit), 2e-3 in float."""
    for fmt, tol in ((vs.YUV420P8, 1), (vs.YUV444PS, 2e-3)):
        src = core.resize.Bicubic(gray8, format=fmt)
        a = colorize(src, model=model, backend="torch")
        b = colorize(src, model=model.with_suffix(".onnx"), backend="ort")
        for n in range(src.num_frames):
            fa, fb = a.get_frame(n), b.get_frame(n)
            for p in (1, 2):
                diff = np.abs(np.asarray(fa[p]).astype(np.float64) - np.asarray(fb[p]).astype(np.float64))
                assert diff.max() <= tol, (fmt, n, p, diff.max())


def test_stages_on_arrays_reproduce_the_filter(model: Path, gray8: vs.VideoNode) -> None:
    """The documented stage API, called by hand on numpy arrays, gives the filter's frame bit for bit."""
    src = core.resize.Bicubic(gray8, format=vs.YUV420P8)
    out = colorize(src, model=model, backend="torch", temporal_radius=1)
    c = Colorizer.load(model, backend="torch", options=ColorOptions(temporal_radius=1))
    small = render_luma_clip(core.std.ShufflePlanes(src, 0, vs.GRAY), 96, 64)
    lumas = [c.preprocess(np.asarray(small.get_frame(k)[0])) for k in (2, 1)]  # stage 1, newest first
    predictions = [c.predict(r) for r in lumas]  # stage 2
    ab = c.combine(predictions[: c.window_length(lumas)], lumas)  # stage 3
    luma = np.asarray(src.get_frame(2)[0])
    cb, cr = c.finish(lumas[0], ab, luma, matrix=6, bits=8, full_range=False, subsampling_w=1,
                      subsampling_h=1)  # stage 4, as the filter runs it
    # the unfused stage API gives the same planes here (in general within one code: tests/test_chroma_kernel.py)
    guide = c.luma_guide(luma, bits=8, full_range=False, subsampling_w=1, subsampling_h=1)
    cb2, cr2 = c.postprocess(lumas[0], ab, guide, matrix=6, bits=8, full_range=False)
    assert np.abs(cb.astype(int) - cb2).max() <= 1 and np.abs(cr.astype(int) - cr2).max() <= 1
    frame = out.get_frame(2)
    assert np.array_equal(cb, np.asarray(frame[1])) and np.array_equal(cr, np.asarray(frame[2]))


def test_auto_backend_choice(model: Path, tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("auto picks CUDA torch here")
    settings, path = choose_backend(model=model)
    assert (settings.backend, settings.device, path) == ("ort", "cpu", model.with_suffix(".onnx"))
    lonely = tmp_path / "lonely.safetensors"
    lonely.write_bytes(model.read_bytes())
    settings, path = choose_backend(model=lonely)
    assert (settings.backend, settings.device, path) == ("torch", "cpu", lonely)
    settings, _ = choose_backend(model=model, backend="torch", num_streams=2)
    assert settings.num_streams == 2 and not settings.fp16


def test_nothing_written_to_stdout(model: Path, gray8: vs.VideoNode, capfd: pytest.CaptureFixture) -> None:
    out = colorize(core.resize.Bicubic(gray8, format=vs.YUV420P8), model=model)
    for n in range(out.num_frames):
        out.get_frame(n)
    with pytest.raises(vs.Error):
        colorize(gray8, model=model, render_size=70)
    assert capfd.readouterr().out == ""


# -- errors ----------------------------------------------------------------------------------------------


def _error(**kwargs) -> str:
    clip = kwargs.pop("clip")
    with pytest.raises(vs.Error) as info:
        colorize(clip, **kwargs)
    message = str(info.value)
    assert message.startswith("vs_colorgan.colorize: "), message
    return message


def test_clip_errors(model: Path, gray8: vs.VideoNode) -> None:
    assert "\"clip\" must be a vs.VideoNode" in _error(clip=42, model=model)
    assert "not list" in _error(clip=[gray8], model=model)
    mixed = core.std.Splice([gray8, core.resize.Point(gray8, format=vs.YUV420P8)], mismatch=True)
    assert "constant format" in _error(clip=mixed, model=model)
    sizes = core.std.Splice([gray8, core.std.BlankClip(gray8, width=128)], mismatch=True)
    assert "constant frame size" in _error(clip=sizes, model=model)
    half = _error(clip=core.std.BlankClip(format=vs.GRAYH, width=64, height=64), model=model)
    assert "8 to 16-bit integer or 32-bit float" in half and "GrayH (half float)" in half
    int32 = core.std.BlankClip(format=core.query_video_format(vs.GRAY, vs.INTEGER, 32, 0, 0).id, width=64, height=64)
    assert "Gray32 (32-bit integer)" in _error(clip=int32, model=model)
    small = _error(clip=core.std.BlankClip(format=vs.GRAY8, width=15, height=64), model=model)
    assert "at least 16x16 pixels, not 15x64" in small
    assert "not 16x14" in _error(clip=core.std.BlankClip(format=vs.YUV420P8, width=16, height=14), model=model)


@pytest.mark.parametrize(("options", "expected"), [
    ({"render_size": 70}, "\"render_size\" must be a multiple of 32 (the model's size multiple) between 64 and 2048, not 70"),
    ({"render_size": 32}, "not 32"),
    ({"render_size": 4096}, "not 4096"),
    ({"render_size": "256"}, "\"render_size\" must be an integer or None, not '256'"),
    ({"temporal_radius": -1}, "\"temporal_radius\" must be an integer between 0 and 16, not -1"),
    ({"temporal_radius": 1.5}, "not 1.5"),
    ({"temporal_radius": True}, "not True"),
    ({"temporal_sigma": 0}, "\"temporal_sigma\" must be a positive number"),
    ({"temporal_sigma": math.nan}, "\"temporal_sigma\""),
    ({"scene_threshold": -1.0}, "\"scene_threshold\" must be a positive number"),
    ({"upsample_radius": 9}, "\"upsample_radius\" must be an integer between 0 and 8, not 9"),
    ({"upsample_eps": 0.0}, "\"upsample_eps\" must be a positive number, not 0.0"),
    ({"matrix": 8}, "\"matrix\" must be one of 1 (BT.709), 4 (FCC), 5 (BT.470BG), 6 (SMPTE 170M), 7 (SMPTE 240M), 9 (BT.2020 NCL), not 8 (YCgCo)"),
    ({"matrix": 2}, "not 2 (unspecified)"),
    ({"fp16": True, "device": "cpu"}, "\"fp16\" needs a CUDA device"),
    ({"fp16": 1}, "\"fp16\" must be True or False, not 1"),
    ({"num_streams": 0}, "\"num_streams\" must be an integer between 1 and 16, not 0"),
    ({"backend": "tensorrt"}, "\"backend\" must be \"auto\", \"torch\" or \"ort\", not 'tensorrt'"),
    ({"device": "gpu"}, "\"device\" must be \"auto\", \"cpu\", \"cuda\" or \"cuda:N\", not 'gpu'"),
    # without any CUDA the first thing wrong is the device; with CUDA, the missing TensorRT
    ({"backend": "ort", "fp16": True}, "needs tensorrt=True" if torch.cuda.is_available() else "\"fp16\" needs a CUDA GPU"),
    ({"backend": "torch", "tensorrt": True}, "\"tensorrt\" needs backend=\"ort\""),
])
def test_option_errors(model: Path, gray8: vs.VideoNode, options: dict, expected: str) -> None:
    if options.get("fp16") is True and options.get("backend") == "ort" and torch.cuda.is_available():
        pytest.skip("depends on the machine's providers")
    assert expected in _error(clip=gray8, model=model, **options)


def test_unavailable_device_says_how_to_get_it(model: Path, gray8: vs.VideoNode) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert "install a CUDA build of torch" in _error(clip=gray8, model=model, backend="torch", device="cuda")
    import onnxruntime

    providers = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" not in providers:
        assert "pip install onnxruntime-gpu" in _error(clip=gray8, model=model, backend="ort", device="cuda:0")
    if "TensorrtExecutionProvider" not in providers:
        message = _error(clip=gray8, model=model, backend="ort", tensorrt=True)
        assert "TensorrtExecutionProvider" in message and "pip install onnxruntime-gpu tensorrt" in message


def test_model_file_errors(model: Path, gray8: vs.VideoNode, tmp_path: Path) -> None:
    assert "\"model\" file" in _error(clip=gray8, model=tmp_path / "missing.safetensors")
    assert "does not exist" in _error(clip=gray8, model=tmp_path / "missing.onnx")
    (tmp_path / "weights.pt").write_bytes(b"\0" * 16)
    assert "must be a .safetensors or .onnx file" in _error(clip=gray8, model=tmp_path / "weights.pt")
    assert "must be a path" in _error(clip=gray8, model=3)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(model.read_bytes()[:5000])
    assert "truncated" in _error(clip=gray8, model=truncated, backend="torch")
    bad_onnx = tmp_path / "garbage.onnx"
    bad_onnx.write_bytes(b"not an onnx file" * 100)
    assert "\"model\" is not a usable generator file" in _error(clip=gray8, model=bad_onnx, backend="ort")
    # the header says width 16, the tensors are a width-8 network
    wrong = tmp_path / "wrong.safetensors"
    save_generator(wrong, tiny_generator(), ModelConfig(arch="unet", width=16, render_size=RS))
    assert "weights do not fit a unet of width 16" in _error(clip=gray8, model=wrong, backend="torch")
    # a model trained with another normalisation
    scaled = tmp_path / "scaled.safetensors"
    save_generator(scaled, tiny_generator(), ModelConfig(arch="unet", width=8, render_size=RS, ab_scale=128.0))
    assert "normalises L by 50.0 and ab by 128.0" in _error(clip=gray8, model=scaled, backend="torch")
    # an ONNX file with our metadata but the wrong interface (3 input channels)
    odd = tmp_path / "odd.onnx"
    conv = torch.nn.Conv2d(3, 2, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(conv, (torch.zeros(1, 3, 64, 64),), str(odd), dynamo=False, input_names=["l"],
                          output_names=["ab"])
    import onnx

    proto = onnx.load(str(odd))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "vs_colorgan", ModelConfig(arch="unet", width=8, render_size=RS).to_json()
    onnx.save(proto, str(odd))
    assert "expected one input (N, 1, H, W)" in _error(clip=gray8, model=odd, backend="ort")
    # backends that need the other file kind
    lonely = tmp_path / "lonely.safetensors"
    lonely.write_bytes(model.read_bytes())
    assert "lonely.onnx is not next to it" in _error(clip=gray8, model=lonely, backend="ort")
    assert "use backend=\"ort\" for ONNX files" in _error(clip=gray8, model=odd, backend="torch")


def test_default_model_missing_is_explained(gray8: vs.VideoNode, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import vs_colorgan.backends as backends

    monkeypatch.setattr(backends, "DEFAULT_MODEL", tmp_path / "gone" / "default.safetensors")
    assert "bundled default model" in _error(clip=gray8)


def test_bad_frame_props_fail_that_frame_only(model: Path, gray8: vs.VideoNode) -> None:
    src = core.resize.Bicubic(gray8, format=vs.YUV420P8)
    ycgco = core.std.SetFrameProps(src[1], _Matrix=8)
    out = colorize(src[0] + ycgco + src[2], model=model)
    out.get_frame(0)
    with pytest.raises(vs.Error, match=r"vs_colorgan.colorize: frame 1: frame property _Matrix must be one of .* not 8 \(YCgCo\)"):
        out.get_frame(1)
    assert out.get_frame(2).format.id == vs.YUV420P8  # the host and the other frames carry on


# -- model files next to each other, and model arguments that are not files ---------------------------------


def _pair(folder: Path, *, record: bool) -> Path:
    """A tiny .safetensors and its .onnx, with (record=True, as colorgan-export writes) the source hash."""
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)
    net, config = tiny_generator(), ModelConfig(arch="unet", width=8, render_size=RS)
    st = folder / "g.safetensors"
    save_generator(st, net, config)
    extra = {"vs_colorgan.source_sha256": hashlib.sha256(st.read_bytes()).hexdigest()} if record else None
    export_onnx(net, config, folder / "g.onnx", extra_metadata=extra)
    return st


def test_auto_backend_skips_an_onnx_exported_from_another_model(tmp_path: Path, caplog) -> None:
    if torch.cuda.is_available():
        pytest.skip("auto picks CUDA torch here")
    st = _pair(tmp_path / "m", record=True)
    assert choose_backend(model=st)[0].backend == "ort"  # the pair matches: ONNX Runtime
    # retrained: a new .safetensors, the old .onnx still next to it
    save_generator(st, tiny_generator(seed=1), ModelConfig(arch="unet", width=8, render_size=RS))
    with caplog.at_level("WARNING", logger="vs_colorgan"):
        settings, path = choose_backend(model=st)
    assert (settings.backend, path) == ("torch", st)
    assert "was exported from another g.safetensors" in caplog.text and "re-export" in caplog.text
    with pytest.raises(Exception, match="backend=\"ort\" would run .*g.onnx', but g.onnx was exported from another"):
        choose_backend(model=st, backend="ort")
    # the user names the .onnx itself: that file is what runs
    settings, path = choose_backend(model=st.with_suffix(".onnx"))
    assert (settings.backend, path) == ("ort", st.with_suffix(".onnx"))


def test_onnx_without_a_recorded_hash_is_used_unless_older(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("auto picks CUDA torch here")
    import os as _os

    st = _pair(tmp_path / "m", record=False)
    assert choose_backend(model=st)[0].backend == "ort"
    onnx = st.with_suffix(".onnx")
    _os.utime(onnx, (onnx.stat().st_atime, st.stat().st_mtime - 60))  # exported before the model changed
    assert choose_backend(model=st)[0].backend == "torch"


def test_model_arguments_that_are_not_files(gray8: vs.VideoNode, tmp_path: Path) -> None:
    assert "\"model\" must be a path to a .safetensors or .onnx file, or None (the bundled model), not an empty " \
           "string ''" in _error(clip=gray8, model="")
    run = tmp_path / "run"
    run.mkdir()
    assert f"\"model\" must be a .safetensors or .onnx file, not the folder {str(run)!r}" in _error(clip=gray8, model=run)
    save_generator(run / "generator.safetensors", tiny_generator(), ModelConfig(arch="unet", width=8, render_size=RS))
    assert f"it holds a generator: model={str(run / 'generator.safetensors')!r}" in _error(clip=gray8, model=str(run))
    odd = tmp_path / "odd.safetensors"
    odd.mkdir()
    assert "not the folder" in _error(clip=gray8, model=odd)


def test_fp16_on_a_machine_without_cuda(gray8: vs.VideoNode, model: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for backend in ("auto", "torch", "ort"):
        message = _error(clip=gray8, model=model, backend=backend, fp16=True)
        assert "\"fp16\" needs a CUDA" in message and "fp16=False" in message, message


# -- extreme inputs ------------------------------------------------------------------------------------------


def test_render_grid_long_side_is_bounded() -> None:
    from vs_colorgan.pipeline import MAX_RENDER_LONG_SIDE, render_shape

    assert render_shape(1920, 1080, 256, 32) == (448, 256)  # ordinary clips: short side = render size
    assert render_shape(100000, 16, 256, 32) == (MAX_RENDER_LONG_SIDE, 32)
    assert render_shape(16, 100000, 2048, 8) == (8, MAX_RENDER_LONG_SIDE)
    w, h = render_shape(5000, 1000, 2048, 32)  # 5:1 at the largest render size: the short side gives way
    assert w == MAX_RENDER_LONG_SIDE and h % 32 == 0 and abs(w / h - 5) < 0.3


def test_extreme_aspect_ratio_renders(model: Path) -> None:
    src = core.resize.Bicubic(frames_clip(gray_frames(1, 4000, 16)), format=vs.GRAY8)
    f = colorize(src, model=model, backend="torch", temporal_radius=0).get_frame(0)
    assert (f.width, f.height) == (4000, 16)
    assert np.array_equal(np.asarray(f[0]), np.asarray(src.get_frame(0)[0]))


def test_non_finite_float_samples_stay_local(model: Path, gray8: vs.VideoNode) -> None:
    src = core.resize.Bicubic(gray8, format=vs.YUV444PS)[:2]
    poisoned = src.std.ModifyFrame(src, lambda n, f: _poison(f))
    out = colorize(poisoned, model=model, backend="torch").get_frame(1)
    clean = colorize(src, model=model, backend="torch").get_frame(1)
    for p in (1, 2):
        got = np.asarray(out[p])
        assert np.isfinite(got).all()
        # away from the bad samples the chroma is the clean frame's
        far = np.abs(got - np.asarray(clean[p]))[:, got.shape[1] // 2:]
        assert far.max() < 0.02


def _poison(f: vs.VideoFrame) -> vs.VideoFrame:
    out = f.copy()
    y = np.asarray(out[0])
    y[5:9, 5:9] = np.nan
    y[12, 3] = np.inf
    y[20, 7] = -np.inf
    return out


def test_hand_edited_model_metadata_is_an_error_about_the_file(gray8: vs.VideoNode, model: Path, tmp_path: Path) -> None:
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(model), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        meta = json.loads(f.metadata()["vs_colorgan"])
    for edit, expected in (({"width": "8"}, "metadata \"width\" must be an even integer from 4 to 256, not '8'"),
                           ({"render_size": 100}, "metadata \"render_size\" must be a multiple of 32"),
                           ({"width": 1 << 30}, "metadata \"width\" must be"),
                           ({"format_version": 9}, "written by a newer vs_colorgan")):
        bad = tmp_path / "edited.safetensors"
        save_file(tensors, str(bad), metadata={"vs_colorgan": json.dumps({**meta, **edit})})
        message = _error(clip=gray8, model=bad, backend="torch")
        assert "\"model\" is not a usable generator file: " in message and str(bad) in message, message
        assert expected in message and "\"render_size\" must be a multiple of 32 (the model" not in message, message
