"""Generator files: round trip, clear errors, and atomic writes that leave ordinary files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from vs_colorgan.model_io import ModelConfig, ModelFileError, atomic_write, load_generator, read_config, save_generator
from vs_colorgan.networks import build_generator


def test_round_trip_and_permissions(tmp_path: Path) -> None:
    model = build_generator("unet", width=8)
    cfg = ModelConfig(arch="unet", width=8, render_size=128, preset="unet")
    path = tmp_path / "g.safetensors"
    save_generator(path, model, cfg)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600
    loaded, got = load_generator(path)
    assert got == cfg and read_config(path) == cfg
    x = torch.randn(1, 1, 64, 96)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    assert [p.name for p in tmp_path.iterdir()] == ["g.safetensors"]  # no temporary file left


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    def broken(tmp: str) -> None:
        Path(tmp).write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(tmp_path / "m.safetensors", broken)
    assert list(tmp_path.iterdir()) == []


def test_truncated_and_foreign_files_are_named(tmp_path: Path) -> None:
    good = tmp_path / "g.safetensors"
    save_generator(good, build_generator("unet", width=8), ModelConfig(arch="unet", width=8))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="cut.safetensors: (not a readable|tensors unreadable)"):
        load_generator(cut)
    with pytest.raises(ModelFileError, match="does not exist"):
        read_config(tmp_path / "nope.safetensors")
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(ModelFileError, match="no vs_colorgan metadata"):
        read_config(foreign)
