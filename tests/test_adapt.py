"""colorgan-adapt: fine-tuning a generator on painted keyframes (vs_colorgan.training.adapt)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import vapoursynth as vs
from conftest import VIDEO_FRAMES, frames_clip, save_tiny_model, shapes, write_source

import vs_colorgan
from vs_colorgan import entry_points
from vs_colorgan.backends import sha256_file
from vs_colorgan.model_io import ModelConfig, ModelFileError, load_generator, read_config, read_metadata, save_generator
from vs_colorgan.networks import build_generator
from vs_colorgan.pipeline import Colorizer
from vs_colorgan.training import adapt as adapt_mod
from vs_colorgan.training import adapt_keys
from vs_colorgan.training.adapt import ADAPT_METADATA_KEY, AdaptOptions, adapt, weighted_huber

core = vs.core
KEYS = (0, 6)


def painted(t: int) -> np.ndarray:
    """Frame t of the test video painted: its gray level tinted warm on the left, cool on the right, so
    the colour depends on the place (something a network can learn) and the luma matches the frame."""
    y = shapes(t).astype(np.float32)
    warm = np.stack([y + 40, y, y - 40], axis=-1)
    cool = np.stack([y - 30, y + 5, y + 40], axis=-1)
    left = (np.arange(y.shape[1]) < y.shape[1] // 2)[None, :, None]
    return np.clip(np.where(left, warm, cool), 0, 255).astype(np.uint8)


def write_refs(folder: Path, frames=KEYS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for t in frames:
        cv2.imwrite(str(folder / f"ref_{t:06d}.png"), painted(t)[..., ::-1])
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("adapt")
    return {"model": save_tiny_model(root), "video": write_source(root / "film.mkv", audio=None),
            "refs": write_refs(root / "refs"), "root": root}


def cli(*args: str) -> int:
    return entry_points.adapt([*map(str, args), "--threads", "1", "-q"])


def cli_on(setup: dict, out: Path, steps: int) -> int:
    """colorgan-adapt on the module's video, references and tiny base model."""
    return cli(setup["video"], "--references", setup["refs"], "--out", out, "--base", setup["model"], "--steps", steps)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.suffix == ".safetensors")


def key_loss(net: torch.nn.Module, keys: list) -> float:
    with torch.no_grad():
        return float(np.mean([float(weighted_huber(net(k.l_norm[None]), k.ab[None], k.weight[None])) for k in keys]))


def test_short_adaptation_changes_the_model_and_lowers_the_loss_on_the_painted_frames(setup):
    clip = core.bs.VideoSource(str(setup["video"]))
    # the gate wide open: this checks what the decoder learnt (the gate is tested on its own below); an
    # untrained tiny encoder sees the painted frames about as near its featureless pictures as its keys
    opts = AdaptOptions(steps=40, threads=1, val_fraction=0.0, film_augment=0.0, gate_low=-2.0, gate_high=-1.99)
    result = adapt(clip, setup["refs"], base=setup["model"], options=opts, progress=False)
    base, cfg = load_generator(setup["model"])
    refs = adapt_keys.read_references(setup["refs"], clip)
    keys, palettes = adapt_keys.load_keys(clip, refs, Colorizer.load(setup["model"], backend="torch", device="cpu"),
                                          short_side=cfg.render_size)
    assert [k.frame for k in keys] == list(KEYS) and palettes == []
    assert result.keyframes == list(KEYS) and result.steps_run == 40
    net = result.model
    assert result.config.arch == "unet-adapted" and result.config.render_size == cfg.render_size
    # the base inside is the base, bit for bit; the decoder moved
    for name, value in base.state_dict().items():
        assert torch.equal(net.base.state_dict()[name], value), name
    moved = [n for n, v in net.film.state_dict().items() if not torch.equal(v, base.state_dict()[n])]
    assert any(n.startswith("up0.") for n in moved) and not hasattr(net.film, "encoder")
    before, after = key_loss(base, keys), key_loss(net, keys)
    assert after < 0.7 * before, (before, after)


def test_the_written_file_runs_in_both_backends_exports_and_records_its_base(setup, tmp_path):
    out = tmp_path / "film.safetensors"
    assert cli_on(setup, out, 5) == 0
    cfg = read_config(out)
    assert cfg.arch == "unet-adapted" and cfg.width == 8 and cfg.render_size == read_config(setup["model"]).render_size
    record = json.loads(read_metadata(out)[ADAPT_METADATA_KEY])
    assert record["base_sha256"] == sha256_file(setup["model"]) and record["keyframes"] == list(KEYS)
    assert record["video"] == "film.mkv"
    onnx = tmp_path / "film.onnx"
    assert entry_points.export([str(out), "-o", str(onnx), "--threads", "1"]) == 0
    clip = core.bs.VideoSource(str(setup["video"]))
    torch_out = vs_colorgan.colorize(clip, model=out, backend="torch")
    ort_out = vs_colorgan.colorize(clip, model=onnx, backend="ort")
    for n in (0, 5, VIDEO_FRAMES - 1):
        a, b = torch_out.get_frame(n), ort_out.get_frame(n)
        for p in (1, 2):  # the same chroma, to a code value (float rounding of two runtimes)
            diff = np.abs(np.asarray(a[p]).astype(int) - np.asarray(b[p]).astype(int))
            assert diff.max() <= 1, (n, p, diff.max())


def test_keyframe_mode_falls_back_to_the_adapted_model_where_no_key_reaches(setup, tmp_path):
    """Two shots, a key in the first only: the second shot's frames are the adapted model's automatic colour."""
    out = tmp_path / "film.safetensors"
    assert cli_on(setup, out, 3) == 0
    shot1 = [shapes(t) for t in range(4)]
    shot2 = [255 - shapes(t) for t in range(4)]  # inverted: a cut the filter's detector sees
    clip = core.std.SetFrameProps(frames_clip(shot1 + shot2), _Matrix=6)
    key = cv2.cvtColor(painted(0), cv2.COLOR_RGB2BGR)[..., ::-1].copy()
    keyed = vs_colorgan.colorize(clip, model=out, references={0: key})
    auto = vs_colorgan.colorize(clip, model=out)
    base = vs_colorgan.colorize(clip, model=setup["model"])
    for n in (5, 7):
        f = keyed.get_frame(n)
        assert f.props["_ColorRefConfidence"] == 0.0
        for p in (1, 2):
            assert np.array_equal(np.asarray(f[p]), np.asarray(auto.get_frame(n)[p]))
    differs = any(not np.array_equal(np.asarray(auto.get_frame(n)[p]), np.asarray(base.get_frame(n)[p]))
                  for n in range(8) for p in (1, 2))
    assert differs  # the fallback really is the adapted model, not the base


def padding_modes(net: torch.nn.Module) -> set[str]:
    """The padding modes of ``net``'s padded convolutions."""
    return {m.padding_mode for m in net.modules() if isinstance(m, torch.nn.Conv2d) and any(m.padding)}


def test_an_adapted_model_pads_as_its_base_does(setup, tmp_path):
    """A base saved with padding="reflect" (issue 17): the adapted file records it and both U-Nets inside pad
    by reflection, as trained (zero padding would bring back the base's colour-by-position blob)."""
    base, cfg = load_generator(setup["model"])
    reflect = tmp_path / "reflect.safetensors"
    save_generator(reflect, base, ModelConfig(arch="unet", width=cfg.width, render_size=cfg.render_size,
                                              padding="reflect"))
    out = tmp_path / "film.safetensors"
    assert cli(setup["video"], "--references", setup["refs"], "--out", out, "--base", reflect, "--steps", 2) == 0
    assert read_config(out).padding == "reflect"
    net, adapted_cfg = load_generator(out)
    assert adapted_cfg.arch == "unet-adapted" and adapted_cfg.padding == "reflect"
    assert padding_modes(net.base) == padding_modes(net.film) == {"reflect"}
    # and a zero-padded base gives a zero-padded adapted model
    assert padding_modes(build_generator("unet-adapted", 8, adapt_bank=2)) == {"zeros"}


def test_ctrl_c_writes_nothing(setup, tmp_path, monkeypatch, capsys):
    real = adapt_mod.sample_batch
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(adapt_mod, "sample_batch", interrupted)
    out = tmp_path / "film.safetensors"
    assert cli_on(setup, out, 10) == 130
    assert "not written" in capsys.readouterr().err
    assert leftovers(tmp_path) == []


def _other_arch(root: Path) -> Path:
    path = root / "cnet.safetensors"
    save_generator(path, build_generator("colorization-net", width=8).eval(),
                   ModelConfig(arch="colorization-net", width=8, render_size=64))
    return path


@pytest.mark.parametrize("case, words", [
    ("no references", ["--references", "no ref_NNNNNN.png"]),
    ("outside the video", ["--references", "frame 500", f"outside the clip (frames 0-{VIDEO_FRAMES - 1})"]),
    ("other architecture", ["--base", "U-Net", "colorization-net"]),
    ("output is a folder", ["--out", "is a folder"]),
    ("not a safetensors output", ["--out", ".safetensors"]),
    ("bad steps", ["--steps", "positive integer", "0"]),
])
def test_bad_inputs_are_clear_errors_that_leave_nothing_behind(setup, tmp_path, capsys, case, words):
    refs, base, out, steps = setup["refs"], setup["model"], tmp_path / "film.safetensors", "2"
    if case == "no references":
        refs = tmp_path / "empty"
        refs.mkdir()
    elif case == "outside the video":
        refs = write_refs(tmp_path / "far", frames=(0, 500))
    elif case == "other architecture":
        base = _other_arch(tmp_path)
    elif case == "output is a folder":
        out.mkdir()
    elif case == "not a safetensors output":
        out = tmp_path / "film.onnx"
    elif case == "bad steps":
        steps = "0"
    before = sorted(p.name for p in tmp_path.iterdir())
    assert cli(setup["video"], "--references", refs, "--out", out, "--base", base, "--steps", steps) == 2
    err = capsys.readouterr().err
    assert err.startswith("colorgan-adapt: error:"), err
    for w in words:
        assert w in err, (w, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no temporary
    if out.is_dir():
        assert list(out.iterdir()) == []


def test_model_config_checks_the_adapted_fields(tmp_path):
    """An "unet-adapted" file needs its bank size; other architectures must not carry one."""

    good = ModelConfig(arch="unet-adapted", width=8, render_size=64, adapt_bank=4)
    assert ModelConfig.from_json(good.to_json()) == good
    for bad in (ModelConfig(arch="unet-adapted", width=8, render_size=64),
                ModelConfig(arch="unet", width=8, render_size=64, adapt_bank=3)):
        with pytest.raises(ModelFileError, match="adapt_bank"):
            ModelConfig.from_json(bad.to_json(), "f.safetensors")


def test_the_gate_keeps_the_base_colour_on_content_unlike_the_keys():
    """gate 0 -> exactly the base model's output; gate 1 -> exactly the adapted decoder's."""
    torch.manual_seed(0)
    net = build_generator("unet-adapted", 8, adapt_bank=3).eval()
    with torch.no_grad():
        for p in net.film.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        x = torch.rand(1, 1, 64, 96) * 2 - 1
        deep = net.base.encoder(x)[4]
        net.bank.copy_(torch.nn.functional.normalize(torch.randn(3, deep.shape[1]), dim=1))
        net.gate_low.fill_(1.5)  # nothing reaches it: the gate is 0 everywhere
        net.gate_high.fill_(2.0)
        assert torch.equal(net(x), net.base(x))
        net.gate_low.fill_(-3.0)  # everything is above it: the gate is 1 everywhere
        net.gate_high.fill_(-2.0)
        film = net.film.decode(net.base.encoder(x), x)[0]
        assert torch.allclose(net(x), film, atol=1e-6)


def test_the_gate_weighs_the_keys_against_featureless_pictures():
    """A picture as near the featureless pictures as the keys keeps the base colour; one nearer the keys takes
    the adapted colour; a file made before the contrast (no generic bank) gates on the plain similarity."""
    torch.manual_seed(0)
    net = build_generator("unet-adapted", 8, adapt_bank=1, adapt_generic=1).eval()
    with torch.no_grad():
        for p in net.film.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        x = torch.rand(1, 1, 64, 96) * 2 - 1
        deep = net.base.encoder(x)[4]
        v = torch.nn.functional.normalize(deep.mean(dim=(2, 3)), dim=1)  # (1, C): near every position
        net.gate_low.fill_(0.0)
        net.gate_high.fill_(0.05)
        net.bank.copy_(v)
        net.generic.copy_(v)  # as near the featureless pictures as the keys: the base's colour
        assert torch.equal(net(x), net.base(x))
        net.generic.copy_(-v)  # far nearer the keys: the adapted decoder's colour
        film = net.film.decode(net.base.encoder(x), x)[0]
        assert torch.allclose(net(x), film, atol=1e-6)
    old = build_generator("unet-adapted", 8, adapt_bank=1)
    assert old.generic is None and "generic" not in old.state_dict()
    cfg = ModelConfig(arch="unet", width=8, render_size=64, adapt_generic=3)
    with pytest.raises(ModelFileError, match="adapt_generic"):
        ModelConfig.from_json(cfg.to_json(), "f.safetensors")


def test_render_adapt_adapts_then_renders_and_keeps_the_model(setup, tmp_path):
    from vs_colorgan.render import main as render_main

    out = tmp_path / "colour.mkv"
    args = [str(setup["video"]), str(out), "--references", str(setup["refs"]), "--adapt", "--adapt-steps", "3",
            "--model", str(setup["model"]), "--threads", "1", "-q"]
    assert render_main(args) == 0
    kept = tmp_path / "colour.mkv.adapted.safetensors"
    assert out.is_file() and read_config(kept).arch == "unet-adapted"
    assert json.loads(read_metadata(kept)[ADAPT_METADATA_KEY])["base_sha256"] == sha256_file(setup["model"])
    assert render_main([str(setup["video"]), str(tmp_path / "x.mkv"), "--adapt", "-q"]) == 2  # no references
    assert not (tmp_path / "x.mkv").exists()


def test_keyframes_suggests_the_shot_least_like_the_painted_keys(setup, tmp_path):
    from vs_colorgan.reference.keyframes import suggest_shots, write_suggestions

    shot1 = [shapes(t) for t in range(4)]
    shot2 = [np.ascontiguousarray(np.flipud(255 - shapes(t))) for t in range(4)]  # another picture, after a cut
    shot3 = [shapes(t + 1) for t in range(4)]  # shot 1's set-up again
    clip = core.std.SetFrameProps(frames_clip(shot1 + shot2 + shot3), _Matrix=6)
    # a tiny random network's features are all alike: a narrow gate makes "like the key" mean nearly the same
    opts = AdaptOptions(steps=2, threads=1, val_fraction=0.0, gate_low=0.0, gate_high=0.002)
    result = adapt(clip, {0: painted(0)}, base=setup["model"], options=opts, progress=False)
    film = tmp_path / "film.safetensors"
    adapt_mod.save_adapted(film, result, base=setup["model"], video="clip", options=opts)
    ranked = suggest_shots(clip, film, render_size=64, scene_threshold=10.0, count=3)
    assert [n for n, _ in ranked][0] == 4 and sorted(n for n, _ in ranked) == [0, 4, 8]
    assert ranked[0][1] > ranked[-1][1]
    (tmp_path / "refs").mkdir()
    cv2.imwrite(str(tmp_path / "refs" / "ref_000000.png"), painted(0))  # painted already: kept
    before = (tmp_path / "refs" / "ref_000000.png").read_bytes()
    written = write_suggestions(clip, tmp_path / "refs", ranked)
    assert [p.name for p in written] == ["ref_000004.png", "ref_000008.png"]
    assert (tmp_path / "refs" / "ref_000000.png").read_bytes() == before
    assert (tmp_path / "refs" / "suggested.txt").read_text().split()[0] == "4"


def test_console_script_needs_no_extra(capsys):
    import tomllib

    root = Path(__file__).resolve().parents[1]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["colorgan-adapt"] == "vs_colorgan.entry_points:adapt"
    with pytest.raises(SystemExit) as done:
        entry_points.adapt(["--help"])
    assert done.value.code == 0 and "--references" in capsys.readouterr().out


def test_a_partly_painted_key_teaches_only_its_painted_pixels(setup, tmp_path):
    """A PNG with alpha: weight = alpha (painted pixels 1, transparent 0); --fill-weight lets the fill teach too.
    The target is the filter's keyframe chroma: the strokes' colour under the strokes."""
    rgba = np.dstack([painted(0), np.zeros(painted(0).shape[:2], np.uint8)])
    rgba[:, :30, 3] = 255  # the left third painted (warm), the rest transparent
    (tmp_path / "refs").mkdir()
    cv2.imwrite(str(tmp_path / "refs" / "ref_000000.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    clip = core.bs.VideoSource(str(setup["video"]))
    refs = adapt_keys.read_references(tmp_path / "refs", clip)
    assert refs[0].partial
    colorizer = Colorizer.load(setup["model"], backend="torch", device="cpu")
    (key,), _ = adapt_keys.load_keys(clip, refs, colorizer, short_side=64)
    w = key.weight[0]
    h, width = w.shape
    cut = 30 * width // 96
    assert float(w[:, : cut - 2].min()) == pytest.approx(1.0) and float(w[:, cut + 2:].max()) == 0.0
    a = key.ab[0][:, : cut - 2]
    assert float(a.mean()) > 0.05  # warm strokes: positive a* under them
    (filled,), _ = adapt_keys.load_keys(clip, refs, colorizer, short_side=64, fill_weight=0.5)
    assert float(filled.weight[0][:, cut + 2:].min()) == pytest.approx(0.5)


def test_a_scale_range_out_of_order_or_bounds_is_refused():
    from vs_colorgan.training.adapt import AdaptError, AdaptOptions, check_options

    for bad in ((1.5, 1.0), (0.1, 1.0), (1.0, 5.0)):
        with pytest.raises(AdaptError, match=r"the scale range must satisfy 0.25 <= low <= high <= 4"):
            check_options(AdaptOptions(scale_range=bad))
    check_options(AdaptOptions(scale_range=(0.8, 1.25)))
