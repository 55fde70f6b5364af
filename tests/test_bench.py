"""Smoke tests of benchmarks/speed.py and benchmarks/stages.py: tiny settings, output shape only (never timings)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from vs_colorgan.model_io import ModelConfig, save_generator
    from vs_colorgan.networks import build_generator

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_generator(path, build_generator("unet", width=8).eval(), ModelConfig(arch="unet", width=8, render_size=64))
    return path


def run_script(name: str, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_speed_json_shape(tiny_model):
    proc = run_script("speed.py", "--model", tiny_model, "--sizes", "96x64,128x64", "--frames", 1, "--warmup", 1,
                      "--render-sizes", "64,96", "--memory-frames", 6, "--json")
    res = json.loads(proc.stdout)  # exactly one JSON object on stdout
    assert res["device"] == "cpu" and res["frames"] == 1
    assert [r["size"] for r in res["runs"]] == ["96x64", "128x64"]
    for run in res["runs"]:
        names = [r["pipeline"] for r in run["rows"]]
        assert names[0] == "source"
        for want in ("colorize torch", "colorize torch r=0", "colorize ort", "colorize ort r=0", "vs-mlrt ort.Model",
                     "vs-mlrt full-res graph"):
            assert want in names
        assert run["reference"] == "vs-mlrt ort.Model"
        for r in run["rows"]:
            assert r.get("error") is None, r
            assert r["fps"] > 0 and r["ms_per_frame"] > 0
            if r["pipeline"] == run["reference"]:
                assert r["ratio"] == pytest.approx(1.0)
    assert [s["render_size"] for s in res["render_size_sweep"]] == [64, 96]
    assert all(s["fps"] > 0 for s in res["render_size_sweep"])
    mem = res["memory"]
    assert mem["frames"] == 6 and set(mem["rss_mib"]) == {"start", "middle", "end", "peak", "end_trimmed"}
    assert all(v is None or v > 0 for v in mem["rss_mib"].values())
    assert mem["rss_mib"]["peak"] >= mem["rss_mib"]["start"]


def test_speed_markdown_with_an_onnx_alone(tiny_model, tmp_path):
    """From a native .onnx alone neither the torch backend nor the vs-mlrt export can run: their rows
    stay in the table, marked not available, and the ORT rows are timed."""
    from vs_colorgan.export.onnx_export import export_onnx
    from vs_colorgan.model_io import load_generator

    net, cfg = load_generator(tiny_model)
    onnx = tmp_path / "alone.onnx"
    export_onnx(net, cfg, onnx)
    proc = run_script("speed.py", "--model", onnx, "--sizes", "96x64", "--frames", 1, "--warmup", 1,
                      "--render-sizes", "", "--memory-frames", 0)
    out = proc.stdout
    assert "| pipeline | fps (median) | ms/frame | × ref | rounds (fps) / note |" in out
    assert "| colorize ort |" in out and "reference: colorize ort" in out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ")}
    assert "not available" in rows["colorize torch"] and "not available" in rows["vs-mlrt ort.Model"]
    assert "render-size sweep" not in out and "### memory" not in out


def test_stages_json_shape(tiny_model):
    proc = run_script("stages.py", "--model", tiny_model, "--sizes", "96x64", "--frames", 2, "--warmup", 1, "--json")
    res = json.loads(proc.stdout)
    assert res["render_size"] == 64 and res["temporal_radius"] >= 0
    (run,) = res["runs"]
    assert run["size"] == "96x64"
    assert list(run["ms"]) == ["source", "resize", "preprocess", "inference", "temporal", "luma guide",
                               "chroma upsample", "quantise", "callback glue", "graph overhead"]
    assert all(v >= 0 for v in run["ms"].values())
    # every stage method of the filter was reached through the wrapped Colorizer; with the fused stage 4
    # (vs_colorgan.chroma_kernel) the luma guide and the quantisation are inside "chroma upsample"
    fused = res["fused_stage4"]
    for stage in ("preprocess", "inference", "chroma upsample", "callback glue") + (() if fused else ("luma guide", "quantise")):
        assert run["ms"][stage] > 0, stage
    if fused:
        assert run["ms"]["luma guide"] == 0 and run["ms"]["quantise"] == 0
    glue = sum(v for k, v in run["ms"].items() if k not in ("source", "inference"))
    assert run["glue_ms"] == pytest.approx(glue)
    assert run["glue_over_inference"] == pytest.approx(glue / run["inference_ms"])
    md = run_script("stages.py", "--model", tiny_model, "--sizes", "96x64", "--frames", 1, "--warmup", 0).stdout
    assert "| inference |" in md and "glue / inference" in md


def test_startup_json_shape():
    proc = run_script("startup.py", "--backends", "ort", "--repeats", 1, "--json")
    res = json.loads(proc.stdout)
    (run,) = res["runs"]
    assert run["backend"] == "ort" and run["repeats"] == 1 and run["min_s"] <= run["median_s"] <= run["max_s"]
    assert "onnxruntime" in run["imported"] and "torchvision" not in run["imported"]


def test_lookahead_json_shape(tiny_model):
    proc = run_script("lookahead.py", "--model", tiny_model, "--backend", "torch", "--size", "96x64", "--frames", 3,
                      "--warmup", 1, "--pairs", 2, "--json")
    res = json.loads(proc.stdout)
    assert [(r["pair"], r["lookahead"]) for r in res["runs"]] == [(0, True), (0, False), (1, False), (1, True)]
    assert all(r["fps"] > 0 for r in res["runs"]) and res["ratio"] > 0
