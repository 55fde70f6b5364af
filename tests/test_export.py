"""export/: ONNX export of both generator architectures, both interfaces, fp32 and fp16, checked with ONNX Runtime.

Tiny width-8 models made here (random weights: parity does not need training). Tolerances are the
ones colorgan-export enforces (export/verify.py): fp32 max 1e-3 / mean 1e-4, fp16 max 3e-2 / mean 3e-3,
in ab_norm units (native) or sRGB [0, 1] (vsmlrt).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from vs_colorgan.export.cli import main as cli_main
from vs_colorgan.export.graphs import VsmlrtGraph, render_dims
from vs_colorgan.export.onnx_export import (INTERFACE_KEY, PRECISION_KEY, SOURCE_KEY, build_graph, export_onnx,
                                read_export_info)
from vs_colorgan.export.verify import TOLERANCES, ParityError, Tolerance, verify_onnx
from vs_colorgan.model_io import METADATA_KEY, ModelConfig, ModelFileError, read_config, save_generator
from vs_colorgan.networks import build_generator

ROOT = Path(__file__).resolve().parents[1]
ARCHS = ("unet", "colorization-net")
VARIANTS = (("native", False), ("native", True), ("vsmlrt", False), ("vsmlrt", True))


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def tiny(arch: str, seed: int = 0) -> tuple[torch.nn.Module, ModelConfig]:
    torch.manual_seed(seed)
    return build_generator(arch, width=8).eval(), ModelConfig(arch=arch, width=8, render_size=64, preset="test")


def session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def leftovers(folder: Path) -> list[str]:
    """Anything an export may have left: .onnx files and atomic_write's hidden temporary files."""
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".onnx", ".tmp") or p.name.startswith("."))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("target,fp16", VARIANTS)
def test_export_parity_and_metadata(tmp_path, arch, target, fp16):
    model, cfg = tiny(arch)
    path = tmp_path / "m.onnx"
    export_onnx(model, cfg, path, target=target, fp16=fp16)
    report = verify_onnx(path, model, cfg, target=target, fp16=fp16, threads=1)  # strict: raises past tolerance
    precision = "fp16" if fp16 else "fp32"
    assert report.tolerance == TOLERANCES[(target, precision)]
    assert report.passed and len(report.cases) == 6  # 2 random + 4 skimage images
    assert report.tolerance == (Tolerance(3e-2, 3e-3) if fp16 else Tolerance(1e-3, 1e-4))
    if not fp16:  # what we actually measure is far inside the tolerance
        assert report.max_abs < 1e-4
    # metadata round trip
    assert read_config(path) == cfg
    info = read_export_info(path)
    assert (info.interface, info.precision, info.opset) == (target, precision, 17)
    assert info.input_names == (("l",) if target == "native" else ("gray",))
    assert info.output_names == (("ab",) if target == "native" else ("rgb",))
    # float32 IO always (vs-mlrt refuses anything else); fp16 weights inside the fp16 file
    proto = onnx.load(str(path))
    io_types = {v.type.tensor_type.elem_type for v in [*proto.graph.input, *proto.graph.output]}
    assert io_types == {onnx.TensorProto.FLOAT}
    conv_weights = [i for i in proto.graph.initializer if len(i.dims) == 4]
    assert conv_weights and {i.data_type for i in conv_weights} == {
        onnx.TensorProto.FLOAT16 if fp16 else onnx.TensorProto.FLOAT}


def test_tolerances():
    from vs_colorgan.export.verify import NOISE_FP16, tolerance_for

    for target in ("native", "vsmlrt"):
        assert tolerance_for(target, "fp32", "random") == tolerance_for(target, "fp32", "camera") == Tolerance(1e-3, 1e-4)
        assert tolerance_for(target, "fp16", "camera") == Tolerance(3e-2, 3e-3)
        assert tolerance_for(target, "fp16", "random") == NOISE_FP16 and NOISE_FP16.mean_abs == 1e-2


def test_default_call_is_the_original_native_fp32(tmp_path):
    model, cfg = tiny("unet")
    path = tmp_path / "m.onnx"
    export_onnx(model, cfg, path)  # the signature the filter worker uses
    info = read_export_info(path)
    assert (info.interface, info.precision, info.opset, info.input_names, info.output_names) == \
        ("native", "fp32", 17, ("l",), ("ab",))
    assert info.metadata[METADATA_KEY] == cfg.to_json()
    assert info.metadata["vs_colorgan.simplified"] == "no"


def test_fp16_export_leaves_the_callers_model_alone(tmp_path):
    model, cfg = tiny("unet")
    export_onnx(model, cfg, tmp_path / "m.onnx", fp16=True)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_dynamic_batch_height_width(tmp_path):
    model, cfg = tiny("unet")
    native, vsmlrt = tmp_path / "n.onnx", tmp_path / "v.onnx"
    export_onnx(model, cfg, native)
    export_onnx(model, cfg, vsmlrt, target="vsmlrt")
    s = session(native)
    for shape in [(1, 1, 32, 32), (3, 1, 64, 160), (2, 1, 224, 96)]:
        l = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
        ab = s.run(None, {"l": l})[0]
        with torch.inference_mode():
            want = model(torch.from_numpy(l)).numpy()
        assert ab.shape == (shape[0], 2, *shape[2:]) and np.abs(ab - want).max() < 1e-4
    s = session(vsmlrt)
    graph = build_graph(model, cfg, target="vsmlrt")
    for shape in [(1, 1, 33, 47), (1, 1, 64, 64), (1, 1, 101, 67), (1, 1, 480, 854)]:
        g = np.random.default_rng(1).uniform(0, 1, shape).astype(np.float32)
        rgb = s.run(None, {"gray": g})[0]
        with torch.inference_mode():
            want = graph(torch.from_numpy(g)).numpy()
        assert rgb.shape == (1, 3, *shape[2:]) and np.abs(rgb - want).max() < 1e-4


def test_render_dims_matches_the_filter_rule():
    """Short side -> render_size, long side rounded to the nearest multiple (Python round, half to even),
    the long side bounded like the filter's: the graph's rule is pipeline.render_shape, size for size."""
    from vs_colorgan.pipeline import render_shape

    def expected(h: int, w: int, r: int, m: int) -> tuple[int, int]:
        rw, rh = render_shape(w, h, r, m)
        return rh, rw

    rng = np.random.default_rng(0)
    sizes = [(480, 854), (1080, 1920), (576, 720), (720, 1280), (100, 100), (64, 2000), (2000, 64), (16, 4000)]
    sizes += [tuple(int(v) for v in rng.integers(16, 4000, 2)) for _ in range(300)]
    for r, m in [(256, 32), (64, 8), (384, 32), (512, 8), (2048, 32)]:
        for h, w in sizes:
            got = render_dims(torch.tensor(float(h)), torch.tensor(float(w)), r, m)
            assert tuple(int(v) for v in got) == expected(h, w, r, m), (h, w, r, m)


def test_vsmlrt_graph_keeps_luma_and_is_gray_on_gray_model(tmp_path):
    """With a model that predicts ab = 0 the output is the neutral gray of the input: the Lab maths is right."""
    model, cfg = tiny("colorization-net")
    with torch.no_grad():
        last = model.head[-2]
        last.weight.zero_()
        last.bias.zero_()
    g = torch.rand(1, 1, 57, 91)
    with torch.inference_mode():
        rgb = VsmlrtGraph(model, cfg)(g)
    # kornia's Lab round trip of a neutral gray is exact to ~1e-4 (its D65 white rounded to 4-5 digits)
    assert (rgb - g.expand(1, 3, 57, 91)).abs().max() < 5e-4


def test_opset_and_options_are_checked(tmp_path):
    model, cfg = tiny("colorization-net")
    path = tmp_path / "m.onnx"
    export_onnx(model, cfg, path, opset=18)
    assert read_export_info(path).opset == 18
    with pytest.raises(ValueError, match='"opset" must be an integer from 17 to 20, not 16'):
        export_onnx(model, cfg, tmp_path / "x.onnx", opset=16)
    with pytest.raises(ValueError, match='"target" must be one of native, vsmlrt'):
        export_onnx(model, cfg, tmp_path / "x.onnx", target="trt")
    with pytest.raises(ValueError, match='"render_size" applies to target="vsmlrt" only'):
        export_onnx(model, cfg, tmp_path / "x.onnx", render_size=128)
    with pytest.raises(ValueError, match='"render_size" must be a multiple of 8'):
        export_onnx(model, cfg, tmp_path / "x.onnx", target="vsmlrt", render_size=100)
    assert leftovers(tmp_path) == ["m.onnx"]


def test_vsmlrt_matrix_mode_keeps_the_input_as_luma(tmp_path):
    """--matrix: the output's Y' (that matrix) is the input gray, and its colours stay in gamut."""
    from vs_colorgan.color import MATRIX_COEFFICIENTS, rgb_to_ycbcr

    model, cfg = tiny("unet")
    path = tmp_path / "m.onnx"
    export_onnx(model, cfg, path, target="vsmlrt", matrix=1)
    info = read_export_info(path)
    assert info.metadata["vs_colorgan.luma"] == "Y' matrix 1" and "gamut-limited" in info.metadata["vs_colorgan.io"]
    verify_onnx(path, model, cfg, target="vsmlrt", matrix=1, threads=1)
    gray = np.random.default_rng(0).uniform(0, 1, (1, 1, 75, 130)).astype(np.float32)
    rgb = session(path).run(None, {"gray": gray})[0]
    y, _, _ = rgb_to_ycbcr(torch.from_numpy(rgb), *MATRIX_COEFFICIENTS[1])
    assert np.abs(y.numpy() - gray).max() < 1e-5
    assert rgb.min() > -1e-5 and rgb.max() < 1 + 1e-5
    assert np.abs(rgb - rgb.mean(axis=1, keepdims=True)).mean() > 1e-3  # coloured
    with pytest.raises(ValueError, match='"matrix" applies to target="vsmlrt" only'):
        export_onnx(model, cfg, tmp_path / "x.onnx", matrix=1)
    with pytest.raises(ValueError, match='"matrix" must be one of 1, 4, 5, 6, 7, 9'):
        export_onnx(model, cfg, tmp_path / "x.onnx", target="vsmlrt", matrix=2)
    assert read_export_info(tmp_path / "m.onnx").metadata.get("vs_colorgan.luma") == "Y' matrix 1"


def test_vsmlrt_render_size_is_stored(tmp_path):
    model, cfg = tiny("unet")
    path = tmp_path / "m.onnx"
    export_onnx(model, cfg, path, target="vsmlrt", render_size=128)
    assert read_config(path).render_size == 128
    verify_onnx(path, model, cfg, target="vsmlrt", render_size=128, threads=1)


def test_simplify_fewer_nodes_same_output(tmp_path):
    # the vsmlrt graph: its size arithmetic (Shape -> Round -> Range) is what simplification could break
    model, cfg = tiny("colorization-net")
    plain, slim = tmp_path / "plain.onnx", tmp_path / "slim.onnx"
    export_onnx(model, cfg, plain, target="vsmlrt")
    export_onnx(model, cfg, slim, target="vsmlrt", simplify=True)
    n_plain, n_slim = (len(onnx.load(str(p)).graph.node) for p in (plain, slim))
    assert n_slim < 0.8 * n_plain
    assert read_export_info(slim).metadata["vs_colorgan.simplified"].startswith("onnxslim ")
    verify_onnx(slim, model, cfg, target="vsmlrt", threads=1)  # dynamic sizes survive simplification


def test_failed_check_leaves_no_file(tmp_path):
    model, cfg = tiny("unet")
    other, _ = tiny("unet", seed=1)
    path = tmp_path / "m.onnx"

    def check(tmp: str) -> None:  # a check against the wrong weights must fail
        verify_onnx(tmp, other, cfg, threads=1)

    with pytest.raises(ParityError, match="beyond tolerance"):
        export_onnx(model, cfg, path, check=check)
    assert leftovers(tmp_path) == []


def write_checkpoint(folder: Path, arch: str = "unet") -> Path:
    model, cfg = tiny(arch)
    path = folder / "generator.safetensors"
    save_generator(path, model, cfg)
    return path


def run_cli(*args: str | os.PathLike) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "export.cli", *map(str, args), "--threads", "1"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_cli_end_to_end(tmp_path):
    ckpt = write_checkpoint(tmp_path / "run")
    out = tmp_path / "out" / "model.onnx"
    r = run_cli(ckpt, "-o", out, "--fp16")
    assert r.returncode == 0, r.stderr
    assert "PASS" in r.stdout and "fp16" in r.stdout
    rows = [line for line in r.stdout.splitlines() if line.strip().startswith(("random", "astronaut", "camera"))]
    assert len(rows) >= 3
    for row in rows:  # "  astronaut    1x1x64x64      max 1.06e-04  mean 5.94e-05  ok"
        words = row.split()
        mx, mean = float(words[words.index("max") + 1]), float(words[words.index("mean") + 1])
        assert 0 <= mean <= mx and mean <= 3e-3 and words[-1] == "ok"
        assert words[0] == "random" or mx <= 3e-2  # fp16 on noise: judged on the mean (export/verify.py)
    info = read_export_info(out)
    assert info.precision == "fp16" and info.config == read_config(ckpt)
    assert len(info.metadata[SOURCE_KEY]) == 64
    assert leftovers(out.parent) == ["model.onnx"]
    # a run folder works too, and the default name says what the file is
    assert cli_main([str(tmp_path / "run"), "--target", "vsmlrt", "--threads", "1"]) == 0
    assert read_export_info(tmp_path / "run" / "generator_vsmlrt.onnx").interface == "vsmlrt"


def test_cli_parity_failure_exits_1_and_writes_nothing(tmp_path, monkeypatch, capsys):
    import vs_colorgan.export.verify

    ckpt = write_checkpoint(tmp_path)
    monkeypatch.setitem(vs_colorgan.export.verify.TOLERANCES, ("native", "fp16"), Tolerance(1e-9, 1e-9))
    out = tmp_path / "out"
    assert cli_main([str(ckpt), "-o", str(out / "m.onnx"), "--fp16", "--threads", "1"]) == 1
    err = capsys.readouterr().err
    assert "beyond tolerance" in err and "FAIL" in err and "not written" in err
    assert leftovers(out) == []


def test_cli_bad_checkpoints_clear_errors_no_files(tmp_path, capsys):
    from safetensors.torch import save_file

    ckpt = write_checkpoint(tmp_path / "good")
    data = ckpt.read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "truncated.safetensors").write_bytes(data[: len(data) // 2])  # header intact, tensors cut short
    (bad / "cut_header.safetensors").write_bytes(data[:40])
    (bad / "text.safetensors").write_text("not a model")
    save_file({"w": torch.zeros(3)}, str(bad / "foreign.safetensors"))  # valid safetensors, not ours
    (bad / "empty_run").mkdir()
    (bad / "model.onnx.txt").write_text("")
    cases = {
        "truncated.safetensors": "not a readable .safetensors file, truncated or of another kind",
        "cut_header.safetensors": "not a readable .safetensors file, truncated or of another kind",
        "text.safetensors": "not a readable .safetensors file",
        "foreign.safetensors": "no vs_colorgan metadata",
        "missing.safetensors": "does not exist",
        "empty_run": "without generator.safetensors",
    }
    r = run_cli(bad / "truncated.safetensors", "-o", bad / "t.onnx")  # once through the real entry point
    assert r.returncode == 2 and r.stderr.startswith("colorgan-export: error:") and cases["truncated.safetensors"] in r.stderr
    assert r.stdout == ""
    for name, message in cases.items():
        assert cli_main([str(bad / name), "-o", str(bad / f"{name}.onnx")]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith("colorgan-export: error:") and message in err, (name, err)
    assert leftovers(bad) == []


def test_cli_option_errors(tmp_path, capsys):
    ckpt = write_checkpoint(tmp_path)
    with pytest.raises(SystemExit) as e:
        cli_main([str(ckpt), "--render-size", "128"])
    assert e.value.code == 2 and "--target vsmlrt only" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli_main([str(ckpt), "--opset", "16"])
    assert e.value.code == 2 and "from 17 to 20" in capsys.readouterr().err
    assert cli_main([str(ckpt), "--target", "vsmlrt", "--render-size", "100"]) == 2
    assert '"render_size" must be a multiple of 32' in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli_main([str(ckpt), "--matrix", "709"])
    assert e.value.code == 2 and "--matrix applies to --target vsmlrt only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main([str(ckpt), "--target", "vsmlrt", "--matrix", "2"])
    assert "must be one of 709, fcc" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main([str(ckpt), "-o", str(tmp_path / "m.onx")])
    assert "must end in .onnx" in capsys.readouterr().err
    assert leftovers(tmp_path) == []


def test_read_export_info_rejects_foreign_onnx(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(tmp_path / "foreign.onnx"))
    with pytest.raises(ModelFileError, match="no vs_colorgan metadata"):
        read_export_info(tmp_path / "foreign.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelFileError):
        read_export_info(tmp_path / "junk.onnx")



def test_cli_clears_what_a_killed_export_left(tmp_path):
    """A colorgan-export killed mid-write (SIGKILL) leaves its hidden temporary; the next export of that
    file removes it (its writer's pid is gone) and leaves a live writer's temporary alone."""
    model, cfg = tiny("unet")
    ckpt = tmp_path / "g.safetensors"
    save_generator(ckpt, model, cfg)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".g.onnx.{int(dead.stdout)}.k1ll3d.tmp"
    stale.write_bytes(b"half an onnx")
    live = tmp_path / f".g.onnx.{os.getpid()}.busy.tmp"
    live.write_bytes(b"being written")
    assert cli_main([str(ckpt), "--threads", "1"]) == 0
    assert leftovers(tmp_path) == [live.name, "g.onnx"]


@pytest.mark.parametrize("target", ("native", "vsmlrt"))
def test_reflect_padded_generator_exports_with_parity(tmp_path, target):
    """The bundled model pads by reflection (issue 17): ONNX Runtime and vs-mlrt run the same borders."""
    torch.manual_seed(0)
    cfg = ModelConfig(arch="unet", width=8, render_size=64, padding="reflect", confidence=True, chroma_gain=0.5)
    model = build_generator("unet", width=8, padding="reflect", confidence=True, chroma_gain=0.5).eval()
    path = tmp_path / "r.onnx"
    export_onnx(model, cfg, path, target=target)
    report = verify_onnx(path, model, cfg, target=target, threads=1)
    assert report.passed and report.max_abs < 1e-4
    assert read_config(path).padding == "reflect"
    assert "Pad" in {n.op_type for n in onnx.load(str(path)).graph.node}
