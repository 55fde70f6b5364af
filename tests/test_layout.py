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
    for path in sorted((REPO / "vs_colorgan").rglob("*.py")):
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
    for module in ("training/cli.py", "training/gather.py", "training/adapt.py", "export/cli.py", "evaluate/cli.py",
                   "models/default.safetensors", "models/default.onnx"):
        assert f"vs_colorgan/{module}" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    for script in ("train", "gather", "calibrate", "export", "eval", "render", "adapt"):
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


def test_the_filter_on_onnx_runtime_does_not_import_torchvision(tmp_path):
    """torchvision costs ~1.5 s of every vspipe start (it imports torch._dynamo); only building a ResNet-18 network
    needs it (its BasicBlock), which the ONNX Runtime path never does. The torch backend with a ResNet-18 model
    does import it; the bundled EfficientNet-Lite0 model does not need it on either backend."""
    from conftest import save_tiny_model

    resnet = save_tiny_model(tmp_path)  # a ResNet-18 U-Net with its .onnx beside it
    script = ("import sys, vapoursynth as vs, vs_colorgan\n"
              "clip = vs.core.std.BlankClip(format=vs.YUV420P8, width=64, height=48, length=2)\n"
              "model = sys.argv[2] or None\n"
              "vs_colorgan.colorize(clip, backend=sys.argv[1], model=model).get_frame(1)\n"
              "print('torchvision' in sys.modules)\n")
    cases = {("ort", ""): "False", ("torch", ""): "False", ("ort", str(resnet.with_suffix(".onnx"))): "False",
             ("torch", str(resnet)): "True"}
    for (backend, model), want in cases.items():
        proc = subprocess.run([sys.executable, "-c", script, backend, model], capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, f"{backend} {model}: {proc.stderr[-2000:]}"
        assert proc.stdout.split() == [want], (backend, model)


def _package_modules() -> dict[str, Path]:
    """vs_colorgan's modules by dotted name (``vs_colorgan.render.cluster``), from the source tree."""
    root = REPO / "vs_colorgan"
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = ("vs_colorgan", *path.relative_to(root).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The vs_colorgan modules ``name`` imports, at module level or inside functions (an import in a function
    still ties the two modules together), resolved to the longest known module name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for t in targets:
            while t and t not in modules:
                t = t.rpartition(".")[0]
            if t and t != name and not name.startswith(t + "."):  # a package's own __init__ is not a cycle
                found.add(t)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a path a -> b -> ... -> a), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_in_the_package():
    """No vs_colorgan module imports, directly or through others, a module that imports it back: the layers
    (filter core, reference/, render/) only import downwards."""
    modules = _package_modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    # the check itself: a cycle made up here is found
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    # and the real graph has its layers: render/ imports the core, the core never render/
    assert "vs_colorgan.filter" in graph["vs_colorgan.render.job"] | graph["vs_colorgan.render.options"]
    assert not any(n.startswith("vs_colorgan.render") for n in graph["vs_colorgan.filter"])


MAX_FUNCTION_LINES = 80


def test_no_function_in_the_package_is_over_80_lines():
    long = []
    for path in sorted((REPO / "vs_colorgan").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []
