"""Training: presets, losses, resume (exact, and after SIGKILL), atomic checkpoints, non-finite stop, DDP.

Tiny everything: width-8 nets, 64 px crops, batch 2, a dozen generated images, CPU, one thread.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vs_colorgan.training import checkpoint, losses
from vs_colorgan.training.options import PRESET_VALUES, TrainOptions, resolve
from vs_colorgan.training.setups import GANSetup, _set_lr, lr_at
from vs_colorgan.training.train import EXIT_INTERRUPTED, EXIT_NONFINITE, EXIT_OK, train
from vs_colorgan.model_io import load_generator, read_config
from conftest import TINY, make_images, state_tensors

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return make_images(tmp_path_factory.mktemp("data") / "imgs", n=10)


@pytest.fixture(scope="module")
def vgg16_weights(tmp_path_factory) -> Path:
    """A randomly initialised torchvision VGG16 state dict (its feature part: the loss uses nothing else)."""
    from torchvision.models import vgg16

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vgg") / "vgg16-random.pth"
    features = vgg16(weights=None).features
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


def opts_for(preset: str, data: Path, out: Path, **kw) -> TrainOptions:
    return resolve(preset, {"data": (str(data),), "out": str(out), **TINY, **kw})


# ---- options


def test_presets_carry_the_paper_values():
    cn, un, wg = (PRESET_VALUES[p] for p in ("colorization-net", "unet", "unet-wgan"))
    assert (cn["g_lr"], cn["d_lr"], cn["d_every_early"], cn["d_every_late"]) == (3e-5, 1e-5, 4, 2)
    assert (cn["w_adv"], cn["w_mse"], cn["w_l1"], cn["w_perc"]) == (1, 1, 1, 1)
    assert (un["g_lr"], un["g_betas"], un["d_betas"]) == (2e-4, (0.5, 0.999), (0.5, 0.999))
    assert (wg["critic_steps"], wg["g_betas"], wg["d_norm"], wg["loss"]) == (4, (0.1, 0.9), "none", "wgan-gp")
    assert TrainOptions().pretrain_lr == 1e-4 and TrainOptions().pretrain_betas == (0.9, 0.999)


def test_options_errors_name_the_option(tmp_path):
    with pytest.raises(ValueError, match=r'"image_size" must be a multiple of 32.*not 70'):
        resolve("unet", {"data": ("x",), "out": "y", "image_size": 70})
    with pytest.raises(ValueError, match='"preset" must be one of'):
        resolve("pix2pix", {})
    with pytest.raises(ValueError, match='"data"'):
        resolve("unet", {"out": "y"})
    with pytest.raises(ValueError, match='"encoder_lr_scale" must be 1.0 for the colorization-net'):
        resolve("colorization-net", {"data": ("x",), "out": "y", "encoder_lr_scale": 0.5})
    for name, value, accepted in (("colourful_above", -1.0, "a colourfulness >= 0"),
                                  ("colourful_above", float("nan"), "a colourfulness >= 0"),
                                  ("colourful_weight", 1.5, r"in \[0, 1\]"),
                                  ("encoder_lr_scale", 2.0, r"in \[0, 1\]"),
                                  ("encoder_lr_scale", float("nan"), r"in \[0, 1\]")):
        with pytest.raises(ValueError, match=f'"{name}" must be {accepted}'):
            resolve("unet", {"data": ("x",), "out": "y", name: value})


def test_lr_is_a_pure_function_of_step():
    o = resolve("unet", {"data": ("x",), "out": "y", "steps": 1000, "pretrain_steps": 200, "lr_schedule": "linear"})
    assert lr_at(0, o.pretrain_lr, o, "pretrain") == 1e-4
    assert lr_at(200, o.g_lr, o, "adversarial") == 2e-4
    assert lr_at(599, o.g_lr, o, "adversarial") == 2e-4  # first half of 800 adversarial steps: constant
    assert lr_at(999, o.g_lr, o, "adversarial") == pytest.approx(2e-4 / 400)
    oc = resolve("unet", {"data": ("x",), "out": "y", "steps": 1000, "pretrain_steps": 0, "lr_schedule": "cosine"})
    assert lr_at(500, oc.g_lr, oc, "adversarial") == pytest.approx(1e-4)


# ---- losses


def test_gradient_penalty_of_a_linear_critic():
    """For D(x) = sum(w * x) the gradient is w everywhere, so GP = (||w|| - 1)^2 exactly."""
    w = torch.randn(1, 3, 4, 4)

    class Linear(torch.nn.Module):
        def forward(self, x):
            return (x * w).flatten(1).sum(1, keepdim=True)

    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    gp = losses.gradient_penalty(Linear(), real, fake)
    assert gp.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)


def test_perceptual_loss_with_vgg16_state_dict(vgg16_weights, capsys):
    loss = losses.PerceptualLoss(vgg16_weights)
    assert loss.depth == 16 and len(loss.slices) == 5
    assert not any(p.requires_grad for p in loss.parameters())
    l_norm = torch.rand(2, 1, 64, 64) * 2 - 1
    ab = torch.rand(2, 2, 64, 64) * 0.4 - 0.2
    assert loss(l_norm, ab, ab).item() == pytest.approx(0.0, abs=1e-6)
    pred = (ab + 0.1).requires_grad_(True)
    value = loss(l_norm, pred, ab)
    value.backward()
    assert value.item() > 0 and pred.grad is not None and pred.grad.abs().sum() > 0
    # off, with a message, without a path
    assert losses.build_perceptual("", 1.0) is None
    assert "perceptual loss OFF" in capsys.readouterr().err
    with pytest.raises(ValueError, match="vgg_weights"):
        losses.PerceptualLoss(vgg16_weights.parent / "missing.pth")


@pytest.mark.parametrize("preset", ["unet", "colorization-net"])
def test_resnet18_weights_start_the_encoder(preset, tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(1)
    sd = resnet18(weights=None).state_dict()
    torch.save(sd, tmp_path / "r18.pth")
    o = resolve(preset, {"data": ("x",), "out": "y", "width": 64, "resnet_weights": str(tmp_path / "r18.pth")})
    g = GANSetup(o, torch.device("cpu")).generator
    conv1 = g.encoder.conv1.weight if preset == "unet" else g.midlevel[0].weight
    layer2 = g.encoder.layer2[1].conv2.weight if preset == "unet" else g.midlevel[5][1].conv2.weight
    assert torch.equal(conv1, sd["conv1.weight"].sum(1, keepdim=True))  # RGB filters summed for gray input
    assert torch.equal(layer2, sd["layer2.1.conv2.weight"])
    with pytest.raises(ValueError, match="resnet18 state dict"):
        GANSetup(resolve(preset, {"data": ("x",), "out": "y", "width": 32, "resnet_weights": str(tmp_path / "r18.pth")}), torch.device("cpu"))


# ---- presets train, with the adversarial phase


@pytest.mark.parametrize(
    ("preset", "adv_keys"),
    [("colorization-net", {"g_adv", "g_mse", "g_l1", "g_perc"}), ("unet", {"d_bce", "g_adv", "g_perc"}), ("unet-wgan", {"d_wgan", "d_gp", "g_adv"})],
)
def test_each_preset_trains_with_finite_losses(preset, adv_keys, data_dir, vgg16_weights, tmp_path):
    pre = 0 if preset == "colorization-net" else 2
    steps = pre + 4
    o = opts_for(preset, data_dir, tmp_path / "run", steps=steps, pretrain_steps=pre, checkpoint_every=3,
                 vgg_weights=str(vgg16_weights) if preset != "unet-wgan" else "")
    res = train(o)
    assert res.code == EXIT_OK and res.step == steps
    hist = [json.loads(l) for l in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    seen = set().union(*(r.keys() for r in hist if r["step"] > pre and "val_l1" not in r))
    assert adv_keys <= seen, seen
    for r in hist:
        assert all(math.isfinite(v) for k, v in r.items() if k != "step")
    rec = checkpoint.read_record(tmp_path / "run")
    assert rec["step"] == steps and rec["phase"] == "adversarial"
    model, cfg = load_generator(tmp_path / "run" / "generator.safetensors")
    assert (cfg.arch, cfg.width, cfg.preset, cfg.render_size) == (o.arch, 8, preset, 256)
    with torch.no_grad():
        out = model(torch.zeros(1, 1, 64, 64))
    assert out.shape == (1, 2, 64, 64)
    for name in ("loss_curves.png", "val_latest.png", "options.json", "generator-best.safetensors"):
        assert (tmp_path / "run" / name).is_file(), name
    assert any((tmp_path / "run" / "tb").iterdir())


def test_colorization_net_updates_d_on_the_paper_schedule(data_dir, tmp_path):
    o = opts_for("colorization-net", data_dir, tmp_path / "r", steps=12)
    s = GANSetup(o, torch.device("cpu"))
    due = [s.d_update_due(i) for i in range(12)]
    # first third (steps 0-3): every 4th; after: every 2nd
    assert due == [True, False, False, False, True, False, True, False, True, False, True, False]


# ---- resume




@pytest.mark.parametrize("scale", [0.0, 0.25])
def test_encoder_lr_scale_slows_or_freezes_the_encoder(scale, data_dir, tmp_path):
    """The encoder trains at that share of the phase's rate (a group of its own in both optimisers); at 0 its
    weights never change and get no gradient, while the decoder still learns; and a resumed run keeps it."""
    kw = dict(steps=6, pretrain_steps=3, checkpoint_every=100, val_batches=0, encoder_lr_scale=scale)
    o = opts_for("unet", data_dir, tmp_path / "a", **kw)
    setup = GANSetup(o, torch.device("cpu"))
    enc_params = list(setup.g.encoder.parameters())
    dec_param = next(p for n, p in setup.g.named_parameters() if not n.startswith("encoder."))
    for opt, base in ((setup.opt_g_pre, o.pretrain_lr), (setup.opt_g, o.g_lr)):
        _set_lr(opt, base)
        group_of = {id(p): group for group in opt.param_groups for p in group["params"]}
        if scale == 0.0:
            assert all(id(p) not in group_of and not p.requires_grad for p in enc_params)
        else:
            assert all(group_of[id(p)]["lr"] == pytest.approx(base * scale) for p in enc_params)
        assert group_of[id(dec_param)]["lr"] == base
    result = train(o)
    early = train(opts_for("unet", data_dir, tmp_path / "b", **{**kw, "steps": 3}))
    at3 = {k: v.clone() for k, v in early.setup.g.state_dict().items() if v.is_floating_point()}
    moved = {k for k, v in result.setup.g.state_dict().items() if k in at3 and not torch.equal(v, at3[k])}
    encoder_weights = {k for k, _ in result.setup.g.named_parameters() if k.startswith("encoder.")}
    if scale == 0.0:
        assert not moved & encoder_weights  # batch-norm statistics may follow the data; weights may not
    else:
        assert moved & encoder_weights
    assert moved - encoder_weights  # the decoder learns
    # resumed from step 3: the same weights as the straight run (the groups and their rates come back)
    resumed = train(opts_for("unet", data_dir, tmp_path / "b", **kw), resume=True)
    a, b = state_tensors(result.setup), state_tensors(resumed.setup)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_is_exact(data_dir, tmp_path):
    """2 steps + resume to 5 gives bit-identical weights to 5 steps straight (nets, Adam, RNG, data order)."""
    kw = dict(steps=5, pretrain_steps=2, checkpoint_every=100, val_batches=0)
    straight = train(opts_for("unet", data_dir, tmp_path / "a", **kw))
    first = train(opts_for("unet", data_dir, tmp_path / "b", **{**kw, "steps": 3}))
    assert first.step == 3 and checkpoint.read_record(tmp_path / "b")["step"] == 3
    resumed = train(opts_for("unet", data_dir, tmp_path / "b", **kw), resume=True)
    assert resumed.step == 5
    a, b = state_tensors(straight.setup), state_tensors(resumed.setup)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _wait_for(pred, timeout: float, proc=None) -> None:
    t0 = time.monotonic()
    while not pred():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.returncode}\n{proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out")
        time.sleep(0.1)


def _ckpt_step(run: Path) -> int:
    try:
        return checkpoint.read_record(run)["step"]
    except Exception:
        return -1


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "training.cli", *args]


def test_resume_after_sigkill_and_clean_interrupt(data_dir, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    base = ["--data", str(data_dir), "--width", "8", "--d-width", "8", "--image-size", "64", "--batch-size", "2",
            "--threads", "1", "--val-batches", "1", "--pretrain-steps", "2", "--checkpoint-every", "2"]
    p = subprocess.Popen(_cli("--preset", "unet", "--out", str(run), "--steps", "100000", *base), cwd=REPO, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _ckpt_step(run) >= 4, 60, p)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert p.returncode == -signal.SIGKILL
    killed_at = _ckpt_step(run)
    assert killed_at >= 4 and killed_at % 2 == 0
    # whatever moment the kill hit, the record names a complete tensors file, and generator.safetensors reads
    rec = checkpoint.read_record(run)
    from safetensors import safe_open

    with safe_open(str(run / rec["tensors"]), "pt") as f:
        assert f.metadata()["step"] == str(killed_at)
    read_config(run / "generator.safetensors")

    # a kill during a write leaves atomic_write's hidden temporary file behind; the resume clears it
    (run / ".val_latest.png.killed.tmp").write_bytes(b"half a picture")
    target = killed_at + 3
    r = subprocess.run(_cli("--resume", str(run), "--steps", str(target)), cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"resumed {run} at step {killed_at}" in r.stderr
    assert not (run / ".val_latest.png.killed.tmp").exists()
    assert _ckpt_step(run) == target
    hist = [json.loads(l) for l in (run / "history.jsonl").read_text().splitlines()]
    train_steps = [h["step"] for h in hist if "val_l1" not in h]
    assert train_steps == sorted(set(train_steps)) and train_steps[-1] == target  # no duplicated steps after the resume
    assert len(list((run / "checkpoints").glob("*.safetensors"))) <= 2  # keep_checkpoints

    # a clean Ctrl-C saves a checkpoint at the step it stopped and exits 130
    p = subprocess.Popen(_cli("--resume", str(run), "--steps", "100000", "--checkpoint-every", "1000"), cwd=REPO, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (run / "options.json").stat().st_mtime > (run / "checkpoint.json").stat().st_mtime - 0.001 and
              p.poll() is None and "step" in _last_hist(run, after=target), 60, p)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == EXIT_INTERRUPTED, err
    stopped = _ckpt_step(run)
    assert stopped > target and f"stopped at step {stopped}" in err
    assert not list(run.rglob("*.tmp"))


def _last_hist(run: Path, after: int) -> dict:
    try:
        lines = (run / "history.jsonl").read_text().splitlines()
        last = json.loads(lines[-1])
        return last if last["step"] > after else {}
    except Exception:
        return {}


# ---- atomicity and failure handling


def test_failed_checkpoint_write_leaves_previous_intact(data_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert train(opts_for("unet", data_dir, run, steps=2, pretrain_steps=1, checkpoint_every=2, val_batches=0)).code == EXIT_OK
    before = {p.name: p.read_bytes() for p in [run / "checkpoint.json", run / "generator.safetensors"]}
    files_before = sorted(p.name for p in (run / "checkpoints").iterdir())  # steps 1 (end of pretraining) and 2
    assert files_before[-1] == "step-00000002.safetensors"

    import safetensors.torch as st

    real = st.save_file

    def half_then_crash(tensors, filename, metadata=None):
        real(dict(list(tensors.items())[:3]), filename, metadata=metadata)  # a partial file...
        raise OSError("disk full")  # ...then the failure

    monkeypatch.setattr(st, "save_file", half_then_crash)
    with pytest.raises(OSError, match="disk full"):
        train(opts_for("unet", data_dir, run, steps=4, pretrain_steps=1, checkpoint_every=2, val_batches=0), resume=True)
    monkeypatch.undo()
    assert not list(run.rglob("*.tmp")) and not list(run.rglob(".*.tmp"))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == files_before
    assert {p: (run / p).read_bytes() for p in before} == before
    assert train(opts_for("unet", data_dir, run, steps=3, pretrain_steps=1, checkpoint_every=2, val_batches=0), resume=True).step == 3


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(data_dir, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    real = GANSetup._adversarial_step

    def poisoned(self, step):
        out = real(self, step)
        if step >= 3:
            out["g_l1"] = float("nan")
        return out

    monkeypatch.setattr(GANSetup, "_adversarial_step", poisoned)
    o = opts_for("unet", data_dir, run, steps=10, pretrain_steps=1, checkpoint_every=2, val_batches=0)
    res = train(o)
    assert res.code == EXIT_NONFINITE and res.step == 3
    err = capsys.readouterr().err
    assert "non-finite loss g_l1=nan at step 3" in err and "last good checkpoint (step 2)" in err
    assert checkpoint.read_record(run)["step"] == 2
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "step-00000002.safetensors"
    model, _ = load_generator(run / "generator.safetensors")
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())


# ---- issue 17: reflect padding, a start from a generator file, excluded sources, snapshots


def test_rebalanced_run_weighs_rare_colours_and_resumes_exactly(data_dir, tmp_path):
    """--rebalance-lambda: the NoGAN loss weighted by the training pictures' colour rarity (training.rebalance),
    the same weights again on resume (they come from the pictures, not a random draw), so the run is exact."""
    kw = dict(steps=4, pretrain_steps=4, checkpoint_every=100, val_batches=0, rebalance_lambda=0.5)
    straight = train(opts_for("default-model", data_dir, tmp_path / "a", width=8, **kw))
    table = straight.setup.rebalance
    assert table is not None and torch.isfinite(table).all() and float(table.max()) > float(table.min()) > 0
    plain = train(opts_for("default-model", data_dir, tmp_path / "p", width=8, **{**kw, "rebalance_lambda": 1.0}))
    assert plain.setup.rebalance is None
    assert any(not torch.equal(a, b) for a, b in zip(straight.setup.g.parameters(), plain.setup.g.parameters()))
    train(opts_for("default-model", data_dir, tmp_path / "b", width=8, **{**kw, "steps": 2, "pretrain_steps": 2}))
    resumed = train(opts_for("default-model", data_dir, tmp_path / "b", width=8, **kw), resume=True)
    assert torch.equal(resumed.setup.rebalance, table)
    a, b = state_tensors(straight.setup), state_tensors(resumed.setup)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_bins_head_run_trains_by_cross_entropy_and_resumes_exactly(data_dir, tmp_path):
    """--head bins: the NoGAN phase is Zhang et al.'s cross-entropy over ab bins (logged as g_ce, beside the
    annealed mean's MSE), the file says its head, and a resumed run is exact."""
    kw = dict(steps=4, pretrain_steps=4, checkpoint_every=100, val_batches=0, head="bins")
    straight = train(opts_for("default-model", data_dir, tmp_path / "a", width=8, **kw))
    rows = [json.loads(line) for line in (tmp_path / "a" / "history.jsonl").read_text().splitlines()]
    ce = [r["g_ce"] for r in rows if "g_ce" in r]
    assert len(ce) == 4 and all(math.isfinite(v) for v in ce) and "g_mse" in rows[-1]
    assert ce[0] == pytest.approx(math.log(len(straight.setup.generator.ab_centres)), rel=0.05)  # uniform at first
    assert read_config(tmp_path / "a" / "generator.safetensors").head == "bins"
    train(opts_for("default-model", data_dir, tmp_path / "b", width=8, **{**kw, "steps": 2, "pretrain_steps": 2}))
    resumed = train(opts_for("default-model", data_dir, tmp_path / "b", width=8, **kw), resume=True)
    a, b = state_tensors(straight.setup), state_tensors(resumed.setup)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    with pytest.raises(ValueError, match='"head" must be \'bins\' only with confidence'):
        opts_for("unet", data_dir, tmp_path / "x", head="bins")
    with pytest.raises(ValueError, match='"head" must be \'regression\' for the colorization-net generator'):
        opts_for("colorization-net", data_dir, tmp_path / "x", head="regression-quarter")
    with pytest.raises(ValueError, match='"head" must be one of'):
        opts_for("default-model", data_dir, tmp_path / "x", head="mixture")


def test_quarter_head_run_trains_the_regression_and_records_its_head(data_dir, tmp_path):
    kw = dict(steps=2, pretrain_steps=2, checkpoint_every=100, val_batches=0, head="regression-quarter")
    state = train(opts_for("default-model", data_dir, tmp_path / "q", width=8, **kw))
    rows = [json.loads(line) for line in (tmp_path / "q" / "history.jsonl").read_text().splitlines()]
    assert any("g_mse" in r and "g_nll" in r for r in rows)  # the preset's MSE and the confidence likelihood
    assert read_config(tmp_path / "q" / "generator.safetensors").head == "regression-quarter"
    model, _ = load_generator(tmp_path / "q" / "generator.safetensors")
    assert not hasattr(model, "up0") and state.step == 2


def test_default_model_preset_pads_by_reflection(data_dir, tmp_path):
    o = opts_for("default-model", data_dir, tmp_path / "r", steps=2, pretrain_steps=2)
    g = GANSetup(o, torch.device("cpu")).generator
    assert o.padding == "reflect"
    assert {m.padding_mode for m in g.modules() if isinstance(m, torch.nn.Conv2d) and any(m.padding)} == {"reflect"}
    with pytest.raises(ValueError, match='"padding" must be one of'):
        opts_for("unet", data_dir, tmp_path / "x", padding="circular")


def test_init_generator_starts_g_and_its_ema_there(data_dir, tmp_path):
    from vs_colorgan.model_io import ModelConfig, save_generator
    from vs_colorgan.networks import build_generator

    torch.manual_seed(5)
    src = build_generator("unet", 8, confidence=True)
    path = tmp_path / "base.safetensors"
    save_generator(path, src, ModelConfig(arch="unet", width=8, confidence=True))  # zero padding
    o = opts_for("default-model", data_dir, tmp_path / "r", width=8, init_generator=str(path), steps=2, pretrain_steps=2)
    setup = GANSetup(o, torch.device("cpu"))
    for k, v in src.state_dict().items():
        assert torch.equal(setup.g.state_dict()[k], v), k
        assert torch.equal(setup.generator.state_dict()[k], v), k  # the EMA copy starts there too
    wrong = opts_for("default-model", data_dir, tmp_path / "w", width=16, init_generator=str(path))
    with pytest.raises(ValueError, match=r'"init_generator" .* width 8 .* width 16'):
        GANSetup(wrong, torch.device("cpu"))
    with pytest.raises(ValueError, match='"init_generator" must be a generator file'):
        GANSetup(opts_for("default-model", data_dir, tmp_path / "m", width=8,
                          init_generator=str(tmp_path / "missing.safetensors")), torch.device("cpu"))


def test_exclude_leaves_sources_out_and_keeps_the_split(tmp_path):
    from vs_colorgan.training.data import _in_validation, scan

    root = tmp_path / "data"
    make_images(root / "photos", n=6)
    make_images(root / "cutouts", n=4, seed=1)
    items, skipped = scan([str(root)], show_progress=False, exclude=("cutouts/*",))
    assert sorted(rel for rel, _ in items) == [f"photos/img{i}.png" for i in range(6)]
    assert skipped["excluded"] == 4
    every, _ = scan([str(root)], show_progress=False)
    split = {rel: _in_validation(rel, 0.3) for rel, _ in every}
    assert all(split[rel] == _in_validation(rel, 0.3) for rel, _ in items)  # the photos' split is unchanged


def test_snapshots_keep_a_generator_every_n_steps(data_dir, tmp_path):
    # every 2 steps though checkpoints come every 3: a snapshot step is saved whatever --checkpoint-every is
    o = opts_for("default-model", data_dir, tmp_path / "r", width=8, steps=4, pretrain_steps=4, checkpoint_every=3,
                 snapshot_every=2)
    assert train(o).code == EXIT_OK
    snaps = sorted(p.name for p in (tmp_path / "r" / "snapshots").iterdir())
    assert snaps == ["generator-00000002.safetensors", "generator-00000004.safetensors"]
    assert read_config(tmp_path / "r" / "snapshots" / snaps[0]).padding == "reflect"
