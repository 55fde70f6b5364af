"""The installed layout: tools under the vs_colorgan namespace, and the filter free of them."""
from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = ("training", "export", "evaluate", "benchmarks")


def test_filter_package_imports_no_sibling_package():
    """vs_colorgan's own modules import neither the tools installed beside them nor the benchmarks."""
    bad = []
    for path in sorted((REPO / "vs_colorgan").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            for n in names:
                parts = n.lstrip(".").split(".")
                if parts[0] in TOOLS or (parts[0] == "vs_colorgan" and len(parts) > 1 and parts[1] in TOOLS) \
                        or (n.startswith(".") and parts[0] in TOOLS):
                    bad.append(f"{path.name}: {n}")
    assert bad == []
    # and at run time: importing the filter loads none of them
    code = ("import sys, vs_colorgan, vs_colorgan.filter; "
            "print([m for m in sys.modules if m.split('.')[0] in %r or m.startswith(('vs_colorgan.training', "
            "'vs_colorgan.export', 'vs_colorgan.evaluate'))])" % (TOOLS,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"


def test_wheel_installs_no_top_level_tool_packages(tmp_path):
    """``pip wheel`` of the project: only ``vs_colorgan`` (with the tools inside it) at the top level."""
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
                       capture_output=True, text=True)
    if r.returncode != 0 and "Could not" in r.stderr:  # no package index reachable for the build backend
        pytest.skip(f"pip could not fetch the build backend: {r.stderr.strip()[:200]}")
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("vs_colorgan-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"vs_colorgan", wheel.name.split("-py3")[0] + ".dist-info"}
    for module in ("training/cli.py", "training/gather.py", "export/cli.py", "evaluate/cli.py",
                   "models/default.safetensors", "models/default.onnx"):
        assert f"vs_colorgan/{module}" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    for script in ("train", "gather", "calibrate", "export", "eval", "render"):
        assert f"colorgan-{script} = vs_colorgan." in text, script


def test_filter_defaults_are_colour_options_defaults():
    """One home for the colour path's defaults: colorize's keyword defaults are ColorOptions'."""
    import dataclasses
    import inspect

    from vs_colorgan import colorize
    from vs_colorgan.pipeline import ColorOptions

    params = inspect.signature(colorize).parameters
    for f in dataclasses.fields(ColorOptions):
        assert f.name in params, f.name
        assert params[f.name].default == f.default, f.name
        assert params[f.name].kind is inspect.Parameter.KEYWORD_ONLY


def test_the_filter_on_onnx_runtime_does_not_import_torchvision():
    """torchvision costs ~1.5 s of every vspipe start (it imports torch._dynamo); only building a network
    needs it, which the ONNX Runtime path never does. The torch backend does import it."""
    script = ("import sys, vapoursynth as vs, vs_colorgan\n"
              "clip = vs.core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=2)\n"
              "vs_colorgan.colorize(clip, backend=sys.argv[1]).get_frame(1)\n"
              "print('torchvision' in sys.modules)\n")
    seen = {b: subprocess.run([sys.executable, "-c", script, b], capture_output=True, text=True, timeout=300)
            for b in ("ort", "torch")}
    for backend, proc in seen.items():
        assert proc.returncode == 0, f"{backend}: {proc.stderr[-2000:]}"
    assert seen["ort"].stdout.split() == ["False"]
    assert seen["torch"].stdout.split() == ["True"]
