"""vs_colorgan.render.vpy: the folder a vspipe command was started from, as R81 leaves it to the script
(working directory = the script's folder, ``__file__`` as typed, the shell's ``PWD``)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import every_colorize_option, run_vspipe
from vs_colorgan.render.vpy import colorize_options, start_dir, user_path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "s.vpy").write_text("")
    return tmp_path


def test_pwd_is_taken_when_it_names_the_running_script(tree: Path, monkeypatch) -> None:
    monkeypatch.chdir(tree / "a" / "b")  # what vspipe did
    monkeypatch.setenv("PWD", str(tree / "a"))
    assert start_dir("b/s.vpy") == tree / "a"
    assert user_path("film.mkv", "b/s.vpy") == str(tree / "a" / "film.mkv")
    assert user_path("/abs/film.mkv", "b/s.vpy") == "/abs/film.mkv"


def test_a_stale_pwd_is_not_trusted(tree: Path, monkeypatch) -> None:
    monkeypatch.chdir(tree / "a" / "b")
    monkeypatch.setenv("PWD", str(tree / "elsewhere"))  # a program changed directory without updating PWD
    assert start_dir("b/s.vpy") == tree / "a"  # derived: one folder above the script's, as typed


def test_outside_vspipe_the_working_directory_is_the_start(tree: Path, monkeypatch) -> None:
    monkeypatch.chdir(tree)
    monkeypatch.setenv("PWD", "/")
    assert start_dir("a/b/s.vpy") == tree  # run without changing into the script's folder
    assert start_dir(None) == tree


def test_options_are_typed_and_bad_values_named(tree: Path, monkeypatch) -> None:
    import vapoursynth as vs

    monkeypatch.chdir(tree / "a" / "b")
    monkeypatch.setenv("PWD", str(tree / "a"))
    args = {"render_size": "320", "temporal_sigma": "2.5", "fp16": "false", "model": "m.safetensors", "backend": "ort",
            "src": "x", "__file__": "b/s.vpy"}
    assert colorize_options(args, "b/s.vpy", "s.vpy", own=("src",)) == {
        "render_size": 320, "temporal_sigma": 2.5, "fp16": False, "model": str(tree / "a" / "m.safetensors"),
        "backend": "ort"}
    with pytest.raises(vs.Error, match=r"^s.vpy: -a render_size= must be an integer, not 'big'$"):
        colorize_options({"render_size": "big"}, "b/s.vpy", "s.vpy")
    with pytest.raises(vs.Error, match=r"^s.vpy: unknown option -a saturaton=; it takes src, model, backend, .*saturation"):
        colorize_options({"src": "x", "saturaton": "0"}, "b/s.vpy", "s.vpy", own=("src",))


def test_every_colorize_option_is_read(tree: Path, monkeypatch) -> None:
    monkeypatch.chdir(tree)
    argv, expect = every_colorize_option(Path("m.safetensors"), Path("refs"))
    args = {flag[2:].replace("-", "_"): value for flag, value in zip(argv[::2], argv[1::2])}
    args.update(fp16="yes", tensorrt="0")
    expect = {**expect, "model": str(tree / "m.safetensors"), "references": str(tree / "refs"), "fp16": True}
    assert colorize_options(args, None, "s.vpy") == expect


def test_saturation_reaches_the_example_and_unknown_options_are_errors(model: Path, source: Path) -> None:
    """``vspipe -a saturation=0.5 examples/colorize.vpy``: the frames of colorize(saturation=0.5); a misspelt
    option stops the script with its name instead of being ignored."""
    import vapoursynth as vs

    import vs_colorgan

    src = vs.core.bs.VideoSource(str(source))
    expect = vs_colorgan.colorize(src, model=str(model), saturation=0.5)
    raw = run_vspipe(EXAMPLES / "colorize.vpy", "-e", "1", "-a", f"src={source}", "-a", f"model={model}",
                     "-a", "saturation=0.5")
    sizes = [np.asarray(expect.get_frame(0)[p]).size for p in range(3)]
    frame = np.frombuffer(raw[: sum(sizes)], np.uint8)
    want = np.concatenate([np.asarray(expect.get_frame(0)[p]).ravel() for p in range(3)])
    assert len(raw) == 2 * sum(sizes) and np.array_equal(frame, want)
    for script in ("colorize.vpy", "compare.vpy", "keyframes.vpy"):
        refs = ["-a", f"refs={source.parent}"] if script == "keyframes.vpy" else []
        done = subprocess.run([str(Path(sys.executable).parent / "vspipe"), "-e", "0", "-a", f"src={source}", *refs,
                               "-a", "saturaton=0.5", str(EXAMPLES / script), "--"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode != 0 and f"{script}: unknown option -a saturaton=" in done.stderr, done.stderr
