"""The console scripts of the tools with an extra: without it they name the extra, not a ModuleNotFoundError.
A missing package is simulated by blocking its import (``sys.modules[name] = None``)."""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from vs_colorgan import entry_points

ROOT = Path(__file__).resolve().parents[1]
TOOLS = [("train", "colorgan-train", "train", "tensorboard"), ("gather", "colorgan-gather", "train", "cv2"),
         ("export", "colorgan-export", "export", "onnxslim"), ("evaluate", "colorgan-eval", "eval", "cv2")]


def test_console_scripts_point_at_the_wrappers() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for function, prog, _, _ in TOOLS:
        assert scripts[prog] == f"vs_colorgan.entry_points:{function}"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra, modules in entry_points.EXTRAS.items():  # each module's distribution is in that extra
        names = {r.split(">")[0].split("=")[0].split("[")[0].strip() for r in extras[extra]}
        assert {entry_points.DISTRIBUTIONS[m] for m in modules} <= names, extra


@pytest.mark.parametrize("function, prog, extra, module", TOOLS)
def test_missing_extra_is_named(function: str, prog: str, extra: str, module: str, monkeypatch,
                                capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    assert getattr(entry_points, function)(["--help"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: needs the optional packages of the \"{extra}\" extra; missing: ")
    assert f"(module {module})" in err and f"pip install 'vs_colorgan[{extra}]'" in err


def test_missing_module_found_late_is_named_too(monkeypatch, capsys: pytest.CaptureFixture) -> None:
    """A ModuleNotFoundError for one of the extra's modules raised inside the tool gives the same message."""
    def tool(argv):
        raise ModuleNotFoundError("No module named 'onnxslim'", name="onnxslim")

    monkeypatch.setitem(sys.modules, "fake_tool", type(sys)("fake_tool"))
    sys.modules["fake_tool"].main = tool
    monkeypatch.setattr(entry_points, "_missing", lambda m: False)
    assert entry_points.launch("colorgan-export", "fake_tool:main", "export", []) == 2
    assert "missing: onnxslim (module onnxslim)" in capsys.readouterr().err
    sys.modules["fake_tool"].main = lambda argv: (_ for _ in ()).throw(ModuleNotFoundError("x", name="numpyx"))
    with pytest.raises(ModuleNotFoundError):  # not one of the extra's: a real bug, left as it is
        entry_points.launch("colorgan-export", "fake_tool:main", "export", [])


def test_with_the_extra_installed_the_tool_runs(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        entry_points.export(["--help"])
    assert info.value.code == 0 and "colorgan-export" in capsys.readouterr().out
