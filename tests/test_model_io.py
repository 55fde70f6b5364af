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


# -- hand-edited or damaged metadata: a ModelFileError about the file, before anything is built ------------

import dataclasses  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from vs_colorgan.model_io import CONFIG_FIELDS, clear_stale_temporaries  # noqa: E402

GOOD = {"arch": "unet", "width": 8, "render_size": 128, "preset": "unet", "l_scale": 50.0, "ab_scale": 110.0,
        "format_version": 1}


@pytest.mark.parametrize("edit, message", [
    ({"width": "32"}, "\"width\" must be an even integer from 4 to 256, not '32'"),
    ({"width": -8}, "\"width\" must be an even integer from 4 to 256, not -8"),
    ({"width": 10**9}, "\"width\" must be an even integer from 4 to 256, not 1000000000"),
    ({"width": True}, "\"width\" must be an even integer"),
    ({"width": 33.0}, "\"width\" must be an even integer"),
    ({"render_size": 0}, "\"render_size\" must be an integer from 64 to 2048, not 0"),
    ({"render_size": 100000}, "\"render_size\" must be an integer from 64 to 2048, not 100000"),
    ({"render_size": 100}, "\"render_size\" must be a multiple of 32 (the unet generator's size multiple), not 100"),
    ({"arch": ["unet"]}, "\"arch\" must be one of ['colorization-net', 'unet', 'unet-adapted'], not ['unet']"),
    ({"arch": "vit"}, "\"arch\" must be one of"),
    ({"l_scale": "NaN"}, "\"l_scale\" must be a number above 0"),
    ({"ab_scale": 0}, "\"ab_scale\" must be a number above 0"),
    ({"format_version": 2}, "format_version must be an integer from 1 to 1, not 2; it was written by a newer vs_colorgan"),
    ({"format_version": "1"}, "format_version must be an integer from 1 to 1, not '1'"),
    ({"colour": "yes"}, "unknown key(s) ['colour']"),
    ({"chroma_gain": 5.0}, "\"chroma_gain\" must be a number from 0 to 4, not 5.0"),
    ({"confidence": 1}, "\"confidence\" must be true or false, not 1"),
])
def test_bad_metadata_is_a_model_file_error(edit: dict, message: str) -> None:
    with pytest.raises(ModelFileError) as info:
        ModelConfig.from_json(json.dumps({**GOOD, **edit}), "edited.safetensors")
    assert str(info.value).startswith("edited.safetensors: ") and message in str(info.value), str(info.value)


@pytest.mark.parametrize("text", ["[1, 2]", "not json", "{\"width\": 8}", "null"])
def test_metadata_that_is_not_a_config_object(text: str) -> None:
    with pytest.raises(ModelFileError, match="^m.onnx: "):
        ModelConfig.from_json(text, "m.onnx")


def test_newer_calibration_keys_are_accepted_and_ints_read_as_floats() -> None:
    cfg = ModelConfig.from_json(json.dumps({**GOOD, "l_scale": 50, "confidence": True, "chroma_gain": 1.2,
                                            "confidence_tau": 0.5}))
    assert cfg.l_scale == 50.0 and isinstance(cfg.l_scale, float)


def test_every_config_field_has_a_validation_row() -> None:
    # a new ModelConfig field must get a row in CONFIG_FIELDS, or files holding it would be refused
    assert {f.name for f in dataclasses.fields(ModelConfig)} <= set(CONFIG_FIELDS)


def test_absurd_width_in_a_file_fails_before_building_the_network(tmp_path: Path, monkeypatch) -> None:
    from safetensors.torch import save_file

    import vs_colorgan.model_io as model_io

    path = tmp_path / "huge.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"vs_colorgan": json.dumps({**GOOD, "width": 1 << 20})})
    monkeypatch.setattr(model_io, "build_generator", lambda *a, **k: pytest.fail("network built"))
    with pytest.raises(ModelFileError, match="huge.safetensors: metadata \"width\""):
        load_generator(path)


def test_stale_temporaries_of_dead_writers_are_cleared(tmp_path: Path) -> None:
    target = tmp_path / "m.onnx"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".m.onnx.{int(dead.stdout)}.abc123.tmp"  # what a killed writer leaves
    live = tmp_path / f".m.onnx.{os.getpid()}.def456.tmp"  # a writer that is still at work
    other = tmp_path / ".n.onnx.1.x.tmp"
    longer = tmp_path / f".m.onnx.bak.{int(dead.stdout)}.ghi789.tmp"  # m.onnx.bak's, not m.onnx's
    for p in (stale, live, other, longer):
        p.write_bytes(b"half")
    assert clear_stale_temporaries(target) == [stale]
    assert not stale.exists() and live.exists() and other.exists() and longer.exists()


def test_padding_is_stored_and_checked(tmp_path):
    """A model file says how its convolutions pad (issue 17); files written before the key load as zeros."""
    import json as _json

    path = tmp_path / "r.safetensors"
    net = build_generator("unet", width=8, padding="reflect")
    save_generator(path, net, ModelConfig(arch="unet", width=8, padding="reflect"))
    model, cfg = load_generator(path)
    assert cfg.padding == "reflect"
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and any(m.padding)]
    assert convs and {m.padding_mode for m in convs} == {"reflect"}
    raw = _json.loads(ModelConfig(arch="unet", width=8).to_json())
    raw.pop("padding")
    assert ModelConfig.from_json(_json.dumps(raw)).padding == "zeros"
    raw["padding"] = "circular"
    with pytest.raises(ModelFileError, match=r'"padding" must be one of'):
        ModelConfig.from_json(_json.dumps(raw))
