"""vs_colorgan.vpy: the folder a vspipe command was started from, as R81 leaves it to the script
(working directory = the script's folder, ``__file__`` as typed, the shell's ``PWD``)."""
from __future__ import annotations

from pathlib import Path

import pytest

from vs_colorgan.vpy import colorize_options, start_dir, user_path


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
            "unrelated": "x"}
    assert colorize_options(args, "b/s.vpy", "s.vpy") == {
        "render_size": 320, "temporal_sigma": 2.5, "fp16": False, "model": str(tree / "a" / "m.safetensors"),
        "backend": "ort"}
    with pytest.raises(vs.Error, match=r"^s.vpy: -a render_size= must be an integer, not 'big'$"):
        colorize_options({"render_size": "big"}, "b/s.vpy", "s.vpy")
