"""A short run of a preset just works: ``--steps`` below the preset's pretraining scales the pretraining."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from vs_colorgan.training.cli import main as train_main
from vs_colorgan.training.options import PRESET_VALUES, resolve
from conftest import TINY, make_images


def test_short_run_scales_the_pretraining_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vs_colorgan.training"):
        opts = resolve("unet", {"data": ("x",), "out": "y", "steps": 30})
    assert (opts.steps, opts.pretrain_steps) == (30, 3)  # the preset's share: 2,000 of 20,000
    assert "--steps 30 is shorter than the unet preset's 2000 pretraining steps; pretraining 3 steps" in caplog.text
    assert "--pretrain-steps N" in caplog.text
    assert resolve("unet-wgan", {"data": ("x",), "out": "y", "steps": 5}).pretrain_steps == 1  # at least one


def test_given_or_fitting_pretraining_is_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vs_colorgan.training"):
        assert resolve("unet", {"data": ("x",), "out": "y", "steps": 30, "pretrain_steps": 10}).pretrain_steps == 10
        assert resolve("unet", {"data": ("x",), "out": "y", "steps": 5000}).pretrain_steps == PRESET_VALUES["unet"]["pretrain_steps"]
        assert resolve("colorization-net", {"data": ("x",), "out": "y", "steps": 30}).pretrain_steps == 0
    assert caplog.text == ""
    with pytest.raises(ValueError, match="\"pretrain_steps\" must be between 0 and steps \\(30\\), not 2000"):
        resolve("unet", {"data": ("x",), "out": "y", "steps": 30, "pretrain_steps": 2000})  # asked for: refused


def test_colorgan_train_preset_unet_steps_30_runs(tmp_path: Path) -> None:
    """The command from the issue, with the tiny sizes the test suite trains at."""
    torch.set_num_threads(1)
    data = make_images(tmp_path / "imgs", n=6)
    tiny = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if k not in ("val_batches", "log_every")]
    assert train_main(["--preset", "unet", "--steps", "30", "--data", str(data), "--out", str(tmp_path / "run"),
                       "--checkpoint-every", "30", *tiny]) == 0
    assert (tmp_path / "run" / "generator.safetensors").is_file()
