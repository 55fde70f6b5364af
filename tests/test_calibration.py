"""Issue 8's machinery: the confidence head and calibration (network, model file, both backends, the vs-mlrt
export), the saturation option, the film-like augmentation, the confidence loss and ``colorgan-calibrate``."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs

import vs_colorgan
from vs_colorgan.export.graphs import VsmlrtGraph
from vs_colorgan.export.onnx_export import export_onnx
from vs_colorgan.training import losses
from vs_colorgan.training.augment import film_degrade
from vs_colorgan.model_io import ModelConfig, load_generator, read_config, save_generator
from vs_colorgan import color
from vs_colorgan.networks import build_generator, calibrate
from conftest import RS, frames_clip, gray_frames, pan_frames, photo_frames, planes, tiny_generator

core = vs.core
torch.set_num_threads(1)


def confident_generator(gain: float = 1.0, tau: float = 0.0, seed: int = 0) -> torch.nn.Module:
    """A width-8 U-Net with a confidence head whose predicted error varies over the picture."""
    torch.manual_seed(seed)
    net = tiny_generator(seed)  # trained-like colours on the two ab channels
    model = build_generator("unet", 8, confidence=True, chroma_gain=gain, confidence_tau=tau).eval()
    state = net.state_dict()
    w, b = state["out.0.weight"], state["out.0.bias"]
    # third channel: a log-variance spread over about -6 ... -2 (errors of 0.05 ... 0.37 ab_norm)
    state["out.0.weight"] = torch.cat([w, w[:1] * 3.0])
    state["out.0.bias"] = torch.cat([b, torch.tensor([-4.0])])
    model.load_state_dict(state, strict=True)
    return model


def test_calibrate_shrinks_uncertain_pixels_more():
    ab = torch.full((1, 2, 1, 3), 0.5)
    log_var = torch.log(torch.tensor([1e-4, 1e-2, 1.0])).view(1, 1, 1, 3)
    out = calibrate(ab, log_var, 0.8, 0.1)
    factors = (out / ab)[0, 0, 0]
    assert torch.allclose(factors, 0.8 / (1 + torch.tensor([1e-4, 1e-2, 1.0]) / 0.01))
    assert factors[0] > 0.79 and factors[2] < 0.01  # confident kept, unsure pulled to gray
    assert torch.equal(calibrate(ab, log_var, 0.5, 0.0), ab * 0.5)  # tau 0: the global gain only
    assert torch.equal(calibrate(ab, None, 1.0, 0.3), ab)


def test_confidence_unet_forward_is_the_calibrated_distribution():
    model = confident_generator(gain=0.7, tau=0.1)
    l_norm = torch.from_numpy(photo_frames(96, 64)[0])[None, None] * 2 - 1
    with torch.no_grad():
        ab, log_var = model.distribution(l_norm)
        out = model(l_norm)
    assert ab.shape == (1, 2, 64, 96) and log_var.shape == (1, 1, 64, 96)
    assert torch.allclose(out, calibrate(ab, log_var, 0.7, 0.1))
    assert float(log_var.std()) > 0.1  # the head's error estimate varies over the picture
    with pytest.raises(ValueError, match="unet"):
        build_generator("colorization-net", 8, confidence=True)


def test_model_file_keeps_head_and_calibration(tmp_path):
    model = confident_generator(gain=0.6, tau=0.2)
    cfg = ModelConfig(arch="unet", width=8, render_size=RS, confidence=True, chroma_gain=0.6, confidence_tau=0.2)
    save_generator(tmp_path / "c.safetensors", model, cfg)
    loaded, cfg2 = load_generator(tmp_path / "c.safetensors")
    assert cfg2 == cfg and loaded.confidence and (loaded.chroma_gain, loaded.confidence_tau) == (0.6, 0.2)
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def _mean_chroma(clip: vs.VideoNode, n: int = 2) -> float:
    f = clip.get_frame(n)
    mid = 1 << (clip.format.bits_per_sample - 1)
    return float(np.mean([np.abs(np.asarray(f[p]).astype(np.float64) - mid).mean() for p in (1, 2)]))


def test_confidence_model_in_both_backends(tmp_path):
    """Torch and ORT run the same calibrated network; the calibration visibly restrains the colour."""
    raw = confident_generator()
    cfg_raw = ModelConfig(arch="unet", width=8, render_size=RS, confidence=True)
    cfg = ModelConfig(arch="unet", width=8, render_size=RS, confidence=True, chroma_gain=0.8, confidence_tau=0.1)
    save_generator(tmp_path / "raw.safetensors", raw, cfg_raw)
    save_generator(tmp_path / "cal.safetensors", confident_generator(0.8, 0.1), cfg)
    export_onnx(confident_generator(0.8, 0.1), cfg, tmp_path / "cal.onnx")
    assert read_config(tmp_path / "cal.onnx") == cfg
    clip = frames_clip(gray_frames(4, 96, 64))
    torch_out = vs_colorgan.colorize(clip, model=str(tmp_path / "cal.safetensors"), backend="torch")
    ort_out = vs_colorgan.colorize(clip, model=str(tmp_path / "cal.onnx"), backend="ort")
    raw_out = vs_colorgan.colorize(clip, model=str(tmp_path / "raw.safetensors"), backend="torch")
    for n in range(4):
        a, b = planes(torch_out.get_frame(n)).astype(int), planes(ort_out.get_frame(n)).astype(int)
        assert np.abs(a - b).max() <= 1
    assert 0 < _mean_chroma(torch_out) < 0.85 * _mean_chroma(raw_out)


def test_confidence_model_in_the_vsmlrt_export(tmp_path):
    model = confident_generator(0.8, 0.1)
    cfg = ModelConfig(arch="unet", width=8, render_size=RS, confidence=True, chroma_gain=0.8, confidence_tau=0.1)
    export_onnx(model, cfg, tmp_path / "v.onnx", target="vsmlrt")
    gray = frames_clip(photo_frames(96, 64)[:1])
    got = planes(core.ort.Model(gray, network_path=str(tmp_path / "v.onnx"), provider="CPU").get_frame(0))
    with torch.inference_mode():
        want = VsmlrtGraph(model, cfg)(torch.from_numpy(np.asarray(gray.get_frame(0)[0]).copy())[None, None])[0].numpy()
        uncalibrated = VsmlrtGraph(confident_generator(), cfg)(
            torch.from_numpy(np.asarray(gray.get_frame(0)[0]).copy())[None, None])[0].numpy()
    assert np.abs(got - want).max() < 1e-4
    assert np.abs(got - uncalibrated).mean() > 1e-3  # the shrinkage is in the exported graph


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("m") / "g.safetensors"
    save_generator(path, tiny_generator(), ModelConfig(arch="unet", width=8, render_size=RS))
    return path


def test_saturation(tiny_model):
    clip = frames_clip(gray_frames(3, 96, 64))
    for fmt in (vs.YUV420P8, vs.YUV444PS):
        src = core.resize.Point(clip, format=fmt)
        gray = vs_colorgan.colorize(src, model=str(tiny_model), saturation=0)
        f = gray.get_frame(1)
        neutral = 128 if fmt == vs.YUV420P8 else 0.0
        assert all(np.all(np.asarray(f[p]) == neutral) for p in (1, 2))  # exactly neutral
        assert np.array_equal(np.asarray(f[0]), np.asarray(src.get_frame(1)[0]))  # luma untouched
    full = vs_colorgan.colorize(clip, model=str(tiny_model))
    half = vs_colorgan.colorize(clip, model=str(tiny_model), saturation=0.5)
    more = vs_colorgan.colorize(clip, model=str(tiny_model), saturation=1.5)
    assert _mean_chroma(half) < 0.75 * _mean_chroma(full) < 0.75 * _mean_chroma(more)
    for bad in (-0.1, 4.5, float("nan"), "1", True, None):
        with pytest.raises(vs.Error, match=r'vs_colorgan\.colorize: "saturation" must be a number between 0'):
            vs_colorgan.colorize(clip, model=str(tiny_model), saturation=bad)


def test_film_degrade():
    torch.manual_seed(0)
    l_norm = torch.rand(1, 64, 64) * 2 - 1
    assert film_degrade(l_norm, 0.0) is l_norm
    torch.manual_seed(1)
    a = film_degrade(l_norm, 1.0)
    torch.manual_seed(1)
    b = film_degrade(l_norm, 1.0)
    assert torch.equal(a, b)  # drawn from torch's RNG: resumable runs draw the same
    assert a.shape == l_norm.shape and a.min() >= -1 and a.max() <= 1
    assert (a - l_norm).abs().mean() > 0.02
    # vignetting and blur act on structure: corners darker than the centre on a flat picture, on average
    flat = torch.zeros(1, 64, 64)
    outs = []
    for seed in range(20):
        torch.manual_seed(seed)
        outs.append(film_degrade(flat, 1.0))
    mean = torch.stack(outs).mean(0)[0]
    assert mean[28:36, 28:36].mean() > mean[:6, :6].mean()


def test_confidence_nll_learns_the_error_not_the_colour():
    ab_true = torch.zeros(1, 2, 4, 4)
    ab_pred = torch.full((1, 2, 4, 4), 0.3, requires_grad=True)
    log_var = torch.zeros(1, 1, 4, 4, requires_grad=True)
    losses.confidence_nll(log_var, ab_pred, ab_true).backward()
    assert ab_pred.grad is None or torch.all(ab_pred.grad == 0)  # the colour is the reconstruction loss's
    assert log_var.grad is not None and torch.all(log_var.grad > 0)  # var 1 >> error 0.09: pushed down
    # the minimum is at var = the squared error
    grid = torch.linspace(-6, 0, 601).view(1, 1, 1, -1)
    nll = [float(losses.confidence_nll(grid[..., i : i + 1], ab_pred[..., :1, :1], ab_true[..., :1, :1])) for i in range(601)]
    assert abs(float(grid[0, 0, 0, int(np.argmin(nll))]) - np.log(0.09)) < 0.02


def test_colorgan_calibrate(tmp_path, tiny_model, capsys):
    from PIL import Image

    from vs_colorgan.training import calibrate as cal

    import skimage.data

    data = tmp_path / "data"
    data.mkdir()
    for i, name in enumerate(("astronaut", "coffee", "chelsea", "rocket")):
        Image.fromarray(getattr(skimage.data, name)()).save(data / f"{name}.jpg")
    model = confident_generator()
    save_generator(tmp_path / "run/generator.safetensors", model, ModelConfig(arch="unet", width=8, render_size=RS, confidence=True))
    (tmp_path / "run/options.json").write_text(json.dumps({"data": [str(data)], "val_fraction": 0.999}))
    out = tmp_path / "cal.safetensors"
    assert cal.main([str(tmp_path / "run"), "--out", str(out), "--render-sizes", "64", "96"]) == 0
    cfg = read_config(out)
    record = json.loads(out.with_suffix(".calibration.json").read_text())
    assert record["pictures"] == 4 and len(record["candidates"]) == 2 * len(cal.GAINS) * len(cal.TAU_FACTORS)
    chosen = record["chosen"]
    assert (cfg.chroma_gain, cfg.confidence_tau, cfg.render_size) == (chosen["chroma_gain"], chosen["confidence_tau"], chosen["render_size"])
    # every candidate was also run on the flat frames; those painting rainbows there (> 1 %) are out
    calm = [r for r in record["candidates"] if r["flat_rainbow"] <= 0.01] or record["candidates"]
    eligible = [r for r in calm if r["dpsnr"] >= -0.5 and r["false_colour"] <= 0.03]
    if eligible:  # the most colourful within 0.5 dB of gray, painting at most 3 % of the neutral pixels
        assert chosen["dpsnr"] >= -0.5
        assert round(chosen["colourfulness_ratio"], 3) == max(round(r["colourfulness_ratio"], 3) for r in eligible)
    else:
        assert chosen["dpsnr"] == max(r["dpsnr"] for r in calm)
    assert "<- chosen" in capsys.readouterr().out
    # the choice was run through the filter on the flat frames: the file written paints what was recorded
    from vs_colorgan.evaluate.flat_frames import filter_rainbow

    assert chosen["filter_rainbow"] == max(filter_rainbow(str(out)).values())
    # the written model runs in the filter with its calibration
    clip = frames_clip(gray_frames(2, 96, 64))
    assert vs_colorgan.colorize(clip, model=str(out)).get_frame(0)
    # bad input: a folder with no generator
    assert cal.main([str(tmp_path / "data"), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert not (tmp_path / "x.safetensors").exists()


def test_choose_is_the_most_colourful_within_the_psnr_bound():
    from vs_colorgan.training.calibrate import choose

    rows = [
        {"render_size": 128, "dpsnr": 0.2, "colourfulness_ratio": 0.05},  # best PSNR: nearly gray
        {"render_size": 192, "dpsnr": -0.4, "colourfulness_ratio": 0.30},  # the most colour within 0.5 dB
        {"render_size": 192, "dpsnr": -0.9, "colourfulness_ratio": 0.45},  # more colour, too far below gray
    ]
    assert choose(rows, 0.5) is rows[1]
    assert choose(rows, 1.0) is rows[2]
    assert choose([r for r in rows if r["dpsnr"] < -0.5], 0.5) is rows[2]  # none within: the best PSNR


def test_colorgan_calibrate_on_footage_chooses_among_snapshots(tmp_path, capsys):
    """--footage scores frames of a colour clip (here a folder of frames) instead of photos, and with
    several generator files the winner may be any of them: the step is chosen on footage (issue 17)."""
    from PIL import Image

    from vs_colorgan.training import calibrate as cal

    frames = tmp_path / "clip"
    frames.mkdir()
    for i, rgb in enumerate(pan_frames(6, width=96, height=64)):
        Image.fromarray(rgb).save(frames / f"f{i:03d}.png")
    cfg = ModelConfig(arch="unet", width=8, render_size=RS, confidence=True)
    snaps = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        snaps.append(tmp_path / f"run/snapshots/generator-{seed:08d}.safetensors")
        save_generator(snaps[-1], build_generator("unet", 8, confidence=True).eval(), cfg)
    out = tmp_path / "cal.safetensors"
    assert cal.main([*map(str, snaps), "--footage", str(frames), "--render-sizes", "64", "--max-psnr-loss", "0", "--average",
                     "--out", str(out)]) == 0
    record = json.loads(out.with_suffix(".calibration.json").read_text())
    assert record["pictures"] == 6 and record["scored_on"].startswith("footage")
    averaged = "average(" + ",".join(p.name for p in snaps) + ")"
    assert {r["model"] for r in record["candidates"]} == {*map(str, snaps), averaged}
    assert len(record["best_per_model"]) == 3
    assert record["chosen"] in record["best_per_model"]
    calm = [r for r in record["candidates"] if r["flat_rainbow"] <= 0.01] or record["candidates"]
    ok = [r for r in calm if r["dpsnr"] >= 0 and r["false_colour"] <= 0.03]
    if ok:
        assert round(record["chosen"]["colourfulness_ratio"], 3) == max(round(r["colourfulness_ratio"], 3) for r in ok)
    written = read_config(out)
    assert (written.chroma_gain, written.render_size) == (record["chosen"]["chroma_gain"], 64)
    # the written weights are the chosen candidate's
    from safetensors.torch import load_file
    if record["chosen"]["model"] != averaged:
        src = load_file(record["chosen"]["model"])
        assert all(torch.equal(v, load_file(out)[k]) for k, v in src.items())
    # bad input: footage that does not exist, a render size out of range; nothing written
    for bad in (["--footage", str(tmp_path / "nope.mkv")], ["--footage", str(frames), "--render-sizes", "4096"]):
        assert cal.main([str(snaps[0]), *bad, "--out", str(tmp_path / "x.safetensors")]) == 2
    assert not (tmp_path / "x.safetensors").exists()
    assert "must be" in capsys.readouterr().err


def test_colorgan_calibrate_on_footage_and_photos_bounds_each_set(tmp_path, tiny_model, capsys):
    """--footage with --with-photos: every candidate is one setting scored on both sets; its dPSNR is the worse
    set's, its false colour the worse set's, its colourfulness their mean, and each set's figures are kept."""
    from PIL import Image

    import skimage.data

    from vs_colorgan.training import calibrate as cal

    data, frames = tmp_path / "data", tmp_path / "clip"
    data.mkdir()
    frames.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        Image.fromarray(getattr(skimage.data, name)()).save(data / f"{name}.jpg")
    for i, rgb in enumerate(pan_frames(4, width=96, height=64)):
        Image.fromarray(rgb).save(frames / f"f{i:03d}.png")
    save_generator(tmp_path / "run/generator.safetensors", confident_generator(),
                   ModelConfig(arch="unet", width=8, render_size=RS, confidence=True))
    (tmp_path / "run/options.json").write_text(json.dumps({"data": [str(data)], "val_fraction": 0.999}))
    out = tmp_path / "cal.safetensors"
    assert cal.main([str(tmp_path / "run"), "--footage", str(frames), "--with-photos", "--render-sizes", "64",
                     "--max-psnr-loss", "0", "--max-de00-loss", "0.5", "--out", str(out)]) == 0
    record = json.loads(out.with_suffix(".calibration.json").read_text())
    assert record["pictures"] == 4 + 3 and "footage" in record["scored_on"] and "photos" in record["scored_on"]
    assert record["max_de00_loss"] == 0.5
    for r in record["candidates"]:
        sets = list(r["by_set"].values())
        assert len(sets) == 2
        assert r["dpsnr"] == min(f["dpsnr"] for f in sets)
        assert r["dde00"] == max(f["dde00"] for f in sets)
        assert r["false_colour"] == max(f["false_colour"] for f in sets)
        assert r["colourfulness_ratio"] == pytest.approx(np.mean([f["colourfulness_ratio"] for f in sets]))
    calm = [r for r in record["candidates"] if r["flat_rainbow"] <= 0.01] or record["candidates"]
    ok = [r for r in calm if all(f["dpsnr"] >= 0 and f["false_colour"] <= 0.03 and f["dde00"] <= 0.5
                                 for f in r["by_set"].values())]
    assert record["within_bounds"] == bool(ok)
    if ok:
        assert all(f["dpsnr"] >= 0 and f["dde00"] <= 0.5 for f in record["chosen"]["by_set"].values())
    # bounds nothing can keep (40 dB better than gray): the file is still written, but the output says so plainly
    capsys.readouterr()
    assert cal.main([str(tmp_path / "run"), "--footage", str(frames), "--render-sizes", "64", "--max-psnr-loss",
                     "-40", "--out", str(tmp_path / "loose.safetensors")]) == 0
    printed = capsys.readouterr()
    record = json.loads((tmp_path / "loose.calibration.json").read_text())
    assert record["within_bounds"] is False and (tmp_path / "loose.safetensors").is_file()
    assert "NO candidate is within -40 dB of gray" in printed.out
    assert "warning: no candidate of" in printed.err and "breaks them" in printed.err
    assert record["chosen"]["dpsnr"] == max(r["dpsnr"] for r in record["candidates"]
                                            if r["flat_rainbow"] <= 0.01 or all(c["flat_rainbow"] > 0.01
                                                                                 for c in record["candidates"]))
    # --with-photos without --footage is a clear error, nothing written
    assert cal.main([str(tmp_path / "run"), "--with-photos", "--out", str(tmp_path / "x.safetensors")]) == 2
    assert not (tmp_path / "x.safetensors").exists()


def test_choose_respects_the_false_colour_bound():
    from vs_colorgan.training.calibrate import choose

    rows = [
        {"render_size": 192, "dpsnr": 0.1, "colourfulness_ratio": 0.2, "false_colour": 0.01},
        {"render_size": 192, "dpsnr": 0.1, "colourfulness_ratio": 0.6, "false_colour": 0.08},  # loud and wrong
    ]
    assert choose(rows, 0.0, 0.03) is rows[0]
    assert choose(rows, 0.0, 0.10) is rows[1]


def test_choose_respects_the_flat_frame_rainbow_bound():
    """A candidate that paints rainbows on the synthetic flat frames loses, however good on footage; when
    every candidate within the rainbow bound is below the PSNR bound, the best PSNR among those still wins."""
    from vs_colorgan.training.calibrate import choose

    rows = [
        {"render_size": 128, "dpsnr": 0.18, "colourfulness_ratio": 0.52, "false_colour": 0.0, "flat_rainbow": 0.19},
        {"render_size": 128, "dpsnr": 0.16, "colourfulness_ratio": 0.48, "false_colour": 0.0, "flat_rainbow": 0.004},
        {"render_size": 192, "dpsnr": -0.3, "colourfulness_ratio": 0.60, "false_colour": 0.0, "flat_rainbow": 0.0},
    ]
    assert choose(rows, 0.0, 0.03, 0.01) is rows[1]
    assert choose(rows, 0.0, 0.03, 1.0) is rows[0]
    assert choose(rows[::2], 0.0, 0.03, 0.01) is rows[2]  # none within both: best PSNR among the calm ones


def test_a_choice_that_paints_rainbows_through_the_filter_gives_way():
    """The chosen candidate is run through the filter; over the rainbow bound it is passed over for the next
    choice, which is run too; when the choice comes back to one already run, that is the answer (the fallback)."""
    from vs_colorgan.training.calibrate import choose, confirm_through_filter

    rows = [{"render_size": 128, "chroma_gain": 1.0, "confidence_tau": 0.0, "dpsnr": 0.2, "colourfulness_ratio": c,
             "false_colour": 0.0, "flat_rainbow": 0.0}
            for c in (0.6, 0.5, 0.4)]
    through_filter = {0.6: 0.05, 0.5: 0.004, 0.4: 0.0}
    ran = []

    def measure(row: dict) -> float:
        ran.append(row["colourfulness_ratio"])
        return through_filter[row["colourfulness_ratio"]]

    best = confirm_through_filter(choose(rows, 0.0, 0.03, 0.01), measure, lambda: choose(rows, 0.0, 0.03, 0.01), 0.01)
    assert best is rows[1] and ran == [0.6, 0.5]
    assert rows[0]["flat_rainbow"] == rows[0]["filter_rainbow"] == 0.05 and best["filter_rainbow"] == 0.004
    # every one over the bound through the filter: each is run once, and the loop ends on choose's fallback
    for r in rows:
        r.pop("filter_rainbow", None)
        r["flat_rainbow"] = 0.0
    ran.clear()
    best = confirm_through_filter(choose(rows, 0.0, 0.03, 0.01), lambda r: ran.append(r) or 0.5,
                                  lambda: choose(rows, 0.0, 0.03, 0.01), 0.01)
    assert len(ran) == 3 and all(r["filter_rainbow"] == 0.5 for r in rows) and best in rows


def test_flat_rainbow_is_measured_on_the_synthetic_frames():
    """score_candidates runs each candidate on the flat frames too: a network that paints a hue by
    position (left quarter one hue, the rest the opposite hue) scores a large rainbow share, gain 0 none."""
    from vs_colorgan.training import calibrate as cal

    class ByPosition(torch.nn.Module):
        def forward(self, l_norm):
            ab = torch.zeros(l_norm.shape[0], 2, *l_norm.shape[-2:])
            w = l_norm.shape[-1]
            ab[:, 0, :, : w // 4], ab[:, 0, :, w // 4:] = 0.5, -0.5  # reddish left quarter, greenish rest
            return ab

    flat = cal.flat_pictures()
    assert flat.l_norm.shape[0] == 8 and flat.l_norm.shape[-1] == cal.FLAT_FRAME_SIZE[0]
    pics = [cal.as_photo(np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8))]
    rows, _ = cal.score_candidates(ByPosition(), pics, 32, render_sizes=(64,), gains=(0.0, 1.0), flat=flat)
    by_gain = {r["chroma_gain"]: r["flat_rainbow"] for r in rows}
    assert by_gain[0.0] == 0.0 and by_gain[1.0] > 0.2


def test_average_weights_is_the_mean_of_the_snapshots():
    from vs_colorgan.training.calibrate import average_weights

    nets = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        nets.append(build_generator("unet", 8, confidence=True).eval())
    avg = average_weights(nets)
    for k, v in avg.state_dict().items():
        want = torch.stack([n.state_dict()[k] for n in nets]).float().mean(0)
        if v.is_floating_point():
            assert torch.allclose(v, want, atol=1e-6), k
    assert not torch.equal(avg.state_dict()["encoder.conv1.weight"], nets[0].state_dict()["encoder.conv1.weight"])


def test_choose_respects_the_ciede2000_bound():
    """Issue 17's CIEDE2000 bound: with max_de00_loss, a candidate whose colour is further from the truth than
    gray's (in CIEDE2000) loses, however colourful; without it the rule is as before."""
    from vs_colorgan.training.calibrate import choose

    rows = [
        {"render_size": 128, "dpsnr": 0.3, "colourfulness_ratio": 0.2, "false_colour": 0.0, "dde00": -0.1},
        {"render_size": 128, "dpsnr": 0.5, "colourfulness_ratio": 0.5, "false_colour": 0.0, "dde00": 0.6},
    ]
    assert choose(rows, 0.0) is rows[1]
    assert choose(rows, 0.0, max_de00_loss=0.0) is rows[0]
    assert choose(rows, 0.0, max_de00_loss=1.0) is rows[1]


def test_ciede2000_of_candidates_matches_the_evaluation_metric():
    """score_candidates' dde00 is the evaluation's CIEDE2000 (evaluate.metrics.ciede2000 on 8-bit RGB) less the
    gray image's, to within the 8-bit rounding; gain 0 is the gray image itself (0)."""
    import skimage.data

    from vs_colorgan.evaluate.metrics import ciede2000
    from vs_colorgan.training.calibrate import as_photo, predict, score_candidates

    photo = as_photo(skimage.data.coffee()[::4, ::4])
    model = confident_generator().eval()
    rows, _ = score_candidates(model, [photo], 32, render_sizes=(64,), gains=(0.0, 1.0), tau_factors=(0.0,), de00=True)
    assert rows[0]["dde00"] == pytest.approx(0.0, abs=1e-9)
    ab_pred, _ = predict(model, photo, 64, 32)
    to8 = lambda t: (t[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()  # noqa: E731
    truth8 = to8(photo.rgb)
    want = (ciede2000(to8(color.merge_lab(photo.l_norm, ab_pred)), truth8)
            - ciede2000(to8(color.merge_lab(photo.l_norm, torch.zeros_like(photo.ab))), truth8))
    assert abs(want) > 0.5  # the test model's colour is not gray's
    assert rows[1]["dde00"] == pytest.approx(want, abs=0.1)


def test_choose_calls_colourfulness_within_a_hundredth_a_tie():
    """Colour alike to the hundredth of the truth's is a tie, and the better PSNR wins it."""
    from vs_colorgan.training.calibrate import choose

    rows = [
        {"render_size": 128, "dpsnr": 0.08, "colourfulness_ratio": 0.239, "false_colour": 0.0},
        {"render_size": 128, "dpsnr": 0.69, "colourfulness_ratio": 0.237, "false_colour": 0.0},
        {"render_size": 128, "dpsnr": 0.90, "colourfulness_ratio": 0.150, "false_colour": 0.0},
    ]
    assert choose(rows, 0.0) is rows[1]
