"""``colorgan-adapt``: fine-tune a generator on a film's own painted keyframes, so unpainted shots get its colours.

    colorgan-adapt film_bw.mkv --references refs/ --out film.safetensors      # then colorize(model="film.safetensors")

The keyframes are read as ``colorize(references=...)`` reads them (:mod:`vs_colorgan.training.adapt_keys`), the
luma from the video's own frames. A handful of frames is very little data for a 3.6 M-parameter network, so the
fine-tune is built not to forget what the base model knows:

* only the decoder learns (optionally the last ``encoder_stages`` of the encoder); the rest is frozen;
* an L2-SP pull of the trained weights toward the base's (Li, Grandvalet & Davoine 2018, "Explicit inductive
  bias for transfer learning with convolutional networks", eq. 3: ``alpha/2 * ||w - w0||^2``);
* batch norm keeps the base's running statistics (the network stays in eval mode): batches of crops of ten
  frames would replace statistics estimated on hundreds of photographs;
* crops, horizontal flips and scale jitter around the render size make many views of each key (the film-like
  luma degradations of training, :func:`vs_colorgan.training.augment.film_degrade`, are an option, off by
  default: the keys already carry the film's own);
* early stopping on a held-out square of every key (its pixels never carry training loss), keeping the best
  weights seen.

The loss is a weighted Huber (``losses.HUBER_DELTA``) on what the file's network outputs where it trusts the
adapted decoder: its ab times ``film_gain`` (default: the base's calibrated gain, so the base's calibration is
carried over unchanged).

Fine-tuned alone, the decoder also paints the film's colours onto content no key showed (up to -4.8 dB on the
benchmark's unrelated shots). So the written network (:class:`vs_colorgan.networks.AdaptedUNetGenerator`, arch
``unet-adapted``) keeps the base beside the adapted decoder and blends them per pixel by a gate: how much closer
the picture's deepest encoder features come to those of the painted keys than to those of featureless synthetic
pictures (cosine similarities, their difference mapped from ``gate_low`` to ``gate_high``; see
:func:`generic_features`).

The result is an ordinary generator file (``model_io.save_generator``, atomic): the base's config and calibration
(arch ``unet-adapted``, its bank size), plus ``vs_colorgan_adapt`` metadata naming the base's sha256 and the
keyframes learnt from. Ctrl-C writes nothing.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


PROG = "colorgan-adapt"
ADAPT_METADATA_KEY = "vs_colorgan_adapt"  # beside model_io.METADATA_KEY in the safetensors header


class AdaptError(Exception):
    """A bad input to colorgan-adapt; the message names the argument, what is accepted and what was given."""


@dataclass(frozen=True, kw_only=True)
class AdaptOptions:
    """How the fine-tune runs; each default was measured on benchmarks/adapt.py (docs/training.md, "Adapting")."""

    steps: int = 300  # optimiser steps (early stopping may keep an earlier state)
    batch_size: int = 8
    crop: int = 128  # crop side on the render grid (the base was trained on 128-px crops)
    lr: float = 3e-4  # Adam (Kingma & Ba 2015)
    # alpha of L2-SP (Li et al. 2018), on the sum of squared weight changes; None: the base encoder's own
    # (ENCODER_DEFAULTS)
    l2sp: float | None = None
    encoder_stages: int = 0  # also train the last N stages of the encoder (0: decoder only)
    scale_range: tuple[float, float] = (0.8, 1.25)  # crop scale relative to the render size (scale jitter)
    # probability of each film degradation of the input luma (training/augment.py): 0 because the keys come from
    # the film itself, its degradations already in them; 0.5 and 0.25 measured worse (docs/training.md)
    film_augment: float = 0.0
    fill_weight: float = 0.0  # weight of the stroke fill's pixels in a partial key (0: painted pixels only)
    val_fraction: float = 0.1  # share of each key held out (one square) for early stopping
    val_every: int = 25  # steps between validations
    patience: int = 4  # validations without improvement before stopping
    film_gain: float | None = None  # chroma gain of the adapted decoder (None: the base's calibrated chroma_gain)
    # the gate: cosine similarity to the nearest key feature less that to the nearest featureless picture
    # (generic_features), where the adapted colour starts to count, and where it is used alone (measured:
    # benchmarks/adapt.py, docs/training.md)
    # None: the base encoder's own pair (ENCODER_DEFAULTS); the two encoders' features spread differently
    gate_low: float | None = None
    gate_high: float | None = None
    seed: int = 0
    device: str = "auto"
    # torch.set_num_threads (0: torch's default, all cores); 1 because on a shared CPU 2 threads ran 3-6x slower
    # (docs/training.md, Speed)
    threads: int = 1


@dataclass
class AdaptResult:
    """What :func:`adapt` did: the adapted network, its config, and figures for the report and metadata."""

    model: nn.Module
    config: object  # model_io.ModelConfig (the base's, unchanged)
    keyframes: list[int]
    palettes: list[int]
    steps_run: int = 0
    best_step: int = 0
    val_base: float = math.nan  # held-out loss of the base model
    val_best: float = math.nan
    train_loss_first: float = math.nan
    train_loss_last: float = math.nan
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------- parameters
def trainable_parameters(model: nn.Module, encoder_stages: int) -> list[tuple[str, nn.Parameter]]:
    """The U-Net's decoder (everything outside ``encoder``) and its last ``encoder_stages`` encoder stages (the
    encoder's ``stages``: ResNet layers or EfficientNet block groups)."""
    prefixes = tuple(f"encoder.{p}." for stage in model.encoder.stages[:encoder_stages] for p in stage)
    return [(name, p) for name, p in model.named_parameters()
            if not name.startswith("encoder.") or name.startswith(prefixes)]


def l2sp(params: list[tuple[str, nn.Parameter]], start: dict[str, torch.Tensor]) -> torch.Tensor:
    """``sum ||w - w0||^2`` over the trained weights (L2-SP, Li et al. 2018, eq. 3, without the 1/2)."""
    return sum(((p - start[n]) ** 2).sum() for n, p in params)


def weighted_huber(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Huber on ab (``losses.HUBER_DELTA``) averaged over the weighted pixels; 0 where no pixel has weight."""
    from .losses import HUBER_DELTA

    per_pixel = F.huber_loss(pred, target, delta=HUBER_DELTA, reduction="none").mean(dim=1, keepdim=True)
    return (per_pixel * weight).sum() / weight.sum().clamp_min(1e-6)


# ----------------------------------------------------------------------------------------------- batches
def val_masks(keys: list, fraction: float, generator: torch.Generator) -> list[torch.Tensor]:
    """One held-out square per key (``fraction`` of its area, at a random place): (1, h, w) masks, 1 inside."""
    masks = []
    for k in keys:
        _, h, w = k.weight.shape
        side = int(math.sqrt(fraction * h * w))
        side = max(1, min(side, h // 2, w // 2))
        y = int(torch.randint(0, h - side + 1, (1,), generator=generator))
        x = int(torch.randint(0, w - side + 1, (1,), generator=generator))
        m = torch.zeros(1, h, w)
        m[:, y:y + side, x:x + side] = 1.0
        masks.append(m)
    return masks


# pictures the network sees are at least this many size multiples a side: reflect padding (issue 17) needs the
# deepest feature map (1/32 scale) to be 2 px or more, as the filter's smallest render size (64) gives it
MIN_SIDE = 2


def crop_side(keys: list, opts: AdaptOptions, prepared: int, render_size: int, multiple: int) -> int:
    """The batch's crop side: ``opts.crop``, or less where the smallest key at the smallest scale is smaller;
    never below :data:`MIN_SIDE` multiples (a reflect-padded network's deepest map must be 2 px or more)."""
    factor = min(1.0, min(opts.scale_range) * render_size / prepared)
    smallest = min(min(k.weight.shape[-2:]) for k in keys)
    return max(MIN_SIDE * multiple, min(opts.crop, int(smallest * factor) // multiple * multiple))


def sample_batch(keys: list, train_weights: list[torch.Tensor], opts: AdaptOptions, prepared: int,
                 render_size: int, crop: int, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``batch_size`` augmented crops: (L_norm, ab target, weight), each (N, C, crop, crop)."""
    from .augment import film_degrade

    ls, abs_, ws = [], [], []
    lo, hi = opts.scale_range
    for _ in range(opts.batch_size):
        i = int(torch.randint(0, len(keys), (1,), generator=generator))
        k = keys[i]
        # scale relative to the render size; keys are stored at `prepared` (the render size x the largest scale)
        s = lo + (hi - lo) * float(torch.rand((), generator=generator))
        factor = min(1.0, s * render_size / prepared)
        stack = torch.cat([k.l_norm, k.ab, train_weights[i]], dim=0)[None]
        h, w = stack.shape[-2:]
        size = (max(crop, round(h * factor)), max(crop, round(w * factor)))
        if size != (h, w):
            stack = F.interpolate(stack, size=size, mode="bilinear", align_corners=False, antialias=True)
        y = int(torch.randint(0, size[0] - crop + 1, (1,), generator=generator))
        x = int(torch.randint(0, size[1] - crop + 1, (1,), generator=generator))
        c = stack[0, :, y:y + crop, x:x + crop]
        if float(torch.rand((), generator=generator)) < 0.5:
            c = c.flip(-1)  # a mirror image has the same colours: a and b keep their signs
        ls.append(film_degrade(c[:1], opts.film_augment))
        abs_.append(c[1:3])
        ws.append(c[3:4])
    return torch.stack(ls), torch.stack(abs_), torch.stack(ws)


# ----------------------------------------------------------------------------------------------- the fine-tune
def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise AdaptError(f"--device {device}: no CUDA GPU is visible to torch; use --device cpu or auto")
        return torch.device(device)
    raise AdaptError(f"--device must be auto, cpu, cuda or cuda:N, not {device!r}")


def film_output(model: nn.Module, l_norm: torch.Tensor, film_gain: float) -> torch.Tensor:
    """What the adapted decoder contributes to the file's output (``AdaptedUNetGenerator.forward`` where the gate
    is 1): its ab times ``film_gain``."""
    return model.distribution(l_norm)[0] * film_gain


@torch.no_grad()
def validation_loss(model: nn.Module, keys: list, masks: list[torch.Tensor], device: torch.device,
                    film_gain: float) -> float:
    """Huber on the held-out squares, each key at its prepared size (a whole frame, so the network sees
    the context the filter gives it), weighted like training."""
    total = weight = 0.0
    for k, m in zip(keys, masks, strict=True):
        pred = film_output(model, k.l_norm[None].to(device), film_gain)
        w = (k.weight * m)[None].to(device)
        total += float(weighted_huber(pred, k.ab[None].to(device), w)) * float(w.sum())
        weight += float(w.sum())
    return total / max(weight, 1e-6)


def adapt(clip, references, *, base: str | Path | None = None, options: AdaptOptions = AdaptOptions(),
          progress: bool = True) -> AdaptResult:
    """Fine-tune ``base`` (a U-Net generator file; None: the bundled model) on the keyframes ``references``
    of ``clip`` (a vs.VideoNode). Raises :class:`AdaptError` for bad inputs, before any training.

    >>> r = adapt(core.bs.VideoSource("film.mkv"), "refs/", options=AdaptOptions(steps=200))
    >>> save_adapted("film.safetensors", r, base=None)
    """
    import vapoursynth as vs

    from vs_colorgan.model_io import DEFAULT_MODEL, ModelFileError, load_generator
    from vs_colorgan.pipeline import Colorizer

    from . import adapt_keys

    t0 = time.perf_counter()
    base_path = Path(base) if base is not None else DEFAULT_MODEL
    device = resolve_device(options.device)
    check_options(options)
    try:
        model, cfg = load_generator(base_path, device="cpu")
    except ModelFileError as e:
        raise AdaptError(f"--base: not a usable generator file: {e}") from None
    if cfg.arch != "unet":
        hint = "; adapt from the model it was adapted from, with all the keys" if cfg.arch == "unet-adapted" else ""
        raise AdaptError(f"--base must be a U-Net generator (arch \"unet\": it has the decoder that adapts), not "
                         f"\"{cfg.arch}\" ({base_path}){hint}")
    options = for_encoder(options, cfg.encoder)
    try:
        adapt_keys.check_clip(clip)
    except vs.Error as e:
        raise AdaptError(f"VIDEO: {e}") from None
    try:
        refs = adapt_keys.read_references(references, clip)
    except adapt_keys.ColorizeError as e:  # the filter's words, which name the frame and the file
        detail = str(e).removeprefix('"references": ')
        raise AdaptError(f"--references: {detail}") from None
    if options.threads:
        torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    gen = torch.Generator().manual_seed(options.seed)
    multiple = cfg.size_multiple
    hi = max(options.scale_range)
    prepared = adapt_keys.prepared_size(clip, cfg.render_size, multiple, hi)
    colorizer = Colorizer.load(base_path, backend="torch", device="cpu")
    try:
        keys, palettes = adapt_keys.load_keys(clip, refs, colorizer, short_side=prepared,
                                              fill_weight=options.fill_weight)
    except adapt_keys.ColorizeError as e:
        raise AdaptError(f"--references: {e}") from None
    del colorizer
    if not keys:
        raise AdaptError(f"--references: every reference ({', '.join(str(k) for k in palettes)}) is a palette (its "
                         f"luma does not match its frame): nothing to learn pixel by pixel; paint the frames "
                         f"themselves")

    model = model.to(device).eval()  # eval: batch norm keeps the base's running statistics
    for p in model.parameters():
        p.requires_grad_(False)
    params = trainable_parameters(model, options.encoder_stages)
    for _, p in params:
        p.requires_grad_(True)
    start = {n: p.detach().clone() for n, p in params}
    opt = torch.optim.Adam([p for _, p in params], lr=options.lr)

    masks = val_masks(keys, options.val_fraction, gen) if options.val_fraction > 0 else None
    train_w = [k.weight * (1.0 - m) for k, m in zip(keys, masks, strict=True)] if masks else [k.weight for k in keys]
    result = AdaptResult(model=model, config=cfg, keyframes=[k.frame for k in keys], palettes=palettes)
    film_gain = cfg.chroma_gain if options.film_gain is None else options.film_gain
    if masks:
        result.val_base = result.val_best = validation_loss(model, keys, masks, device, film_gain)
    best_state = {n: p.detach().clone() for n, p in params}
    crop = crop_side(keys, options, prepared, cfg.render_size, multiple)
    stale = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=options.steps, unit="step", desc="adapt", file=sys.stderr, dynamic_ncols=True)
    try:
        for step in range(1, options.steps + 1):
            l_norm, ab, w = (t.to(device) for t in sample_batch(keys, train_w, options, prepared, cfg.render_size,
                                                                 crop, gen))
            pred = film_output(model, l_norm, film_gain)
            fit = weighted_huber(pred, ab, w)
            loss = fit + 0.5 * options.l2sp * l2sp(params, start)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            result.steps_run = step
            value = float(fit.detach())
            if step == 1:
                result.train_loss_first = value
            result.train_loss_last = value
            record = {"step": step, "loss": value}
            if masks and (step % options.val_every == 0 or step == options.steps):
                v = validation_loss(model, keys, masks, device, film_gain)
                record["val"] = v
                if v < result.val_best:
                    result.val_best, result.best_step, stale = v, step, 0
                    best_state = {n: p.detach().clone() for n, p in params}
                else:
                    stale += 1
            result.history.append(record)
            if bar is not None:
                bar.set_postfix(loss=f"{value:.4f}", val=f"{result.val_best:.4f}", refresh=False)
                bar.update(1)
            if masks and stale >= options.patience:
                break
    finally:
        if bar is not None:
            bar.close()
    if masks:  # the best held-out state (the base itself when no step improved on it)
        with torch.no_grad():
            for n, p in params:
                p.copy_(best_state[n])
    else:
        result.best_step = result.steps_run
    for p in model.parameters():
        p.requires_grad_(False)
    base_model, _ = load_generator(base_path, device="cpu")
    bank = key_bank(base_model, keys, cfg.render_size / prepared)
    generic = generic_features(base_model, cfg.render_size, cfg.size_multiple)
    result.model, result.config = gated(base_model, model.cpu().eval(), cfg, bank, generic, options)
    result.seconds = time.perf_counter() - t0
    return result


@torch.no_grad()
def key_bank(base: nn.Module, keys: list, factor: float) -> torch.Tensor:
    """The keys' deepest encoder features (layer4, 1/32 scale) as unit vectors (K, C): every position of every
    key, at the render size and at the prepared size (``factor``: render size / prepared size)."""
    vectors = []
    for k in keys:
        l_norm = k.l_norm[None]
        views = [l_norm]
        if factor < 1.0:
            h, w = l_norm.shape[-2:]
            size = (max(MIN_SIDE * 32, round(h * factor / 32) * 32), max(MIN_SIDE * 32, round(w * factor / 32) * 32))
            views.append(F.interpolate(l_norm, size=size, mode="bilinear", align_corners=False, antialias=True))
        for v in views:
            deep = base.encoder(v)[4][0].flatten(1).T  # (positions, C)
            vectors.append(F.normalize(deep, dim=1))
    return torch.cat(vectors)


@torch.no_grad()
def generic_features(base: nn.Module, render_size: int, multiple: int) -> torch.Tensor:
    """Deep features (unit vectors, like :func:`key_bank`) of pictures with no identity of their own: the
    synthetic smooth and flat frames of issue 17 (ramps, grain, noise, a blur, a plain sky over ground,
    :func:`vs_colorgan.evaluate.flat_frames.flat_frames`) at the render size. The gate weighs a picture's
    similarity to the keys against its similarity to these (:class:`vs_colorgan.networks.AdaptedUNetGenerator`):
    a plain wall or sky in a key is, to the encoder, like any plain surface, and alone opened the gate on the
    skies of unrelated shots."""
    from vs_colorgan.evaluate.flat_frames import flat_frames
    from vs_colorgan.pipeline import render_luma, render_shape

    vectors = []
    for luma in flat_frames().values():
        w, h = render_shape(luma.shape[1], luma.shape[0], render_size, multiple)
        y = cv2.resize(luma, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        l_norm = render_luma(y).l_norm  # stage 1, as the keys' (adapt_keys) and the filter's
        vectors.append(F.normalize(base.encoder(l_norm)[4][0].flatten(1).T, dim=1))
    return torch.cat(vectors)


def gated(base: nn.Module, film: nn.Module, cfg, bank: torch.Tensor, generic: torch.Tensor, options: AdaptOptions):
    """The file's network: the base, the adapted decoder and the gate on the keys' features against the
    featureless pictures' (:class:`vs_colorgan.networks.AdaptedUNetGenerator`), with the base's config and
    calibration."""
    from vs_colorgan.model_io import MAX_ADAPT_BANK, generator_for

    if len(bank) > MAX_ADAPT_BANK:  # an evenly spaced subset: neighbours are near-duplicates anyway
        bank = bank[torch.linspace(0, len(bank) - 1, MAX_ADAPT_BANK).round().long()]
    own = options.encoder_stages > 0
    # the base's config (padding included: an adapted model of a reflect-padded base pads by reflection too)
    config = dataclasses.replace(cfg, arch="unet-adapted", adapt_bank=len(bank), adapt_encoder=own,
                                 adapt_generic=len(generic))
    net = generator_for(config)
    net.base.load_state_dict(base.state_dict(), strict=True)
    film_state = {k: v for k, v in film.state_dict().items() if own or not k.startswith("encoder.")}
    net.film.load_state_dict(film_state, strict=True)
    net.bank.copy_(bank)
    net.generic.copy_(generic)
    net.gate_low.fill_(options.gate_low)
    net.gate_high.fill_(options.gate_high)
    net.film_gain.fill_(cfg.chroma_gain if options.film_gain is None else options.film_gain)
    return net.eval(), config


# The options left None in AdaptOptions, per base encoder, read off benchmarks/adapt.py's film (docs/training.md,
# "Adapting"). The gate: ResNet-18's deepest features come after a ReLU, every picture is fairly similar to every
# other (cosine 0.8-0.9), so the contrast with featureless pictures is small and the step narrow; EfficientNet-
# Lite0's come out of a linear projection, signed: on that film the unpainted shots of painted set-ups lay at a
# contrast of 0.54-0.74 (medians; 0.18 at the lowest tenth), the unrelated shots at -0.10-0.14 (0.24 at the
# highest tenth). L2-SP: with the ResNet base the pull kept unrelated shots from the film's colours before the
# gate did; with the Lite0 base and its gate, no pull gained on every related shot (tree's unpainted +1.90 ->
# +3.58 dB) and moved no unrelated one by more than 0.05 dB.
ENCODER_DEFAULTS: dict[str, dict[str, float]] = {
    "resnet18": {"gate_low": 0.0, "gate_high": 0.05, "l2sp": 0.01},
    "efficientnet-lite0": {"gate_low": 0.25, "gate_high": 0.45, "l2sp": 0.0},
}


def for_encoder(options: AdaptOptions, encoder: str) -> AdaptOptions:
    """``options`` with every field left None set to the base encoder's default (:data:`ENCODER_DEFAULTS`); raises
    :class:`AdaptError` when a given gate bound does not fit the other one's default."""
    defaults = ENCODER_DEFAULTS[encoder]
    o = dataclasses.replace(options, **{k: v for k, v in defaults.items() if getattr(options, k) is None})
    if not o.gate_low < o.gate_high:
        raise AdaptError(f"--gate-low must be below --gate-high; with a {encoder} base (its defaults "
                         f"{defaults['gate_low']} and {defaults['gate_high']}) they are {o.gate_low!r} and "
                         f"{o.gate_high!r}")
    return o


def check_options(o: AdaptOptions) -> None:
    """Raise :class:`AdaptError` for option values outside what the fine-tune accepts."""
    if not (isinstance(o.steps, int) and o.steps >= 1):
        raise AdaptError(f"--steps must be a positive integer, not {o.steps!r}")
    if not (isinstance(o.batch_size, int) and o.batch_size >= 1):
        raise AdaptError(f"--batch-size must be a positive integer, not {o.batch_size!r}")
    if not (isinstance(o.crop, int) and o.crop >= MIN_SIDE * 32):
        raise AdaptError(f"--crop must be an integer of at least {MIN_SIDE * 32}, not {o.crop!r}")
    if not (o.lr > 0 and math.isfinite(o.lr)):
        raise AdaptError(f"--lr must be a positive number, not {o.lr!r}")
    if o.l2sp is not None and not (o.l2sp >= 0 and math.isfinite(o.l2sp)):
        raise AdaptError(f"--l2sp must be a number >= 0, not {o.l2sp!r}")
    if o.encoder_stages not in (0, 1, 2, 3, 4):
        raise AdaptError(f"--encoder-stages must be 0 to 4, not {o.encoder_stages!r}")
    if not 0.0 <= o.val_fraction < 0.5:
        raise AdaptError(f"--val-fraction must be from 0 to below 0.5, not {o.val_fraction!r}")
    if not 0.0 <= o.fill_weight <= 1.0:
        raise AdaptError(f"--fill-weight must be from 0 to 1, not {o.fill_weight!r}")
    if not 0.0 <= o.film_augment <= 1.0:
        raise AdaptError(f"--film-augment must be a probability from 0 to 1, not {o.film_augment!r}")
    if o.film_gain is not None and not 0.0 < o.film_gain <= 4.0:
        raise AdaptError(f"--film-gain must be above 0 and at most 4, not {o.film_gain!r}")
    given = [v for v in (o.gate_low, o.gate_high) if v is not None]
    if not all(-2.0 <= v <= 2.0 for v in given) or len(given) == 2 and not o.gate_low < o.gate_high:
        raise AdaptError(f"--gate-low and --gate-high must satisfy -2 <= low < high <= 2 (a difference of two "
                         f"cosine similarities), not {o.gate_low!r} and {o.gate_high!r}")
    lo, hi = o.scale_range
    if not 0.25 <= lo <= hi <= 4.0:
        raise AdaptError(f"the scale range must satisfy 0.25 <= low <= high <= 4, not {o.scale_range!r}")


def adaptation_metadata(result: AdaptResult, *, base: Path, video: str, options: AdaptOptions) -> dict[str, str]:
    """The ``vs_colorgan_adapt`` header entry: base model and its sha256, keyframes learnt from, the run."""
    from vs_colorgan.backends import sha256_file

    record = {"base": base.name, "base_sha256": sha256_file(base), "video": video,
              "keyframes": result.keyframes, "palettes_skipped": result.palettes, "steps_run": result.steps_run,
              "best_step": result.best_step, "val_base": result.val_base, "val_best": result.val_best,
              "seconds": round(result.seconds, 1),
              # as run: the fields left to the base encoder's defaults filled in
              "options": asdict(for_encoder(options, result.config.encoder))}
    return {ADAPT_METADATA_KEY: json.dumps(record, sort_keys=True, default=str)}


def save_adapted(out: str | Path, result: AdaptResult, *, base: str | Path | None, video: str,
                 options: AdaptOptions) -> None:
    """Write the adapted generator with the base's config (atomic: a complete file or none)."""
    from vs_colorgan.model_io import DEFAULT_MODEL, save_generator

    base_path = Path(base) if base is not None else DEFAULT_MODEL
    save_generator(out, result.model, result.config,
                   metadata=adaptation_metadata(result, base=base_path, video=video, options=options))


# ----------------------------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    d = AdaptOptions()
    ap = argparse.ArgumentParser(prog=PROG, description="Fine-tune a generator on a film's painted keyframes "
                                 "(the references colorize(references=...) reads), for colorize(model=OUT).")
    ap.add_argument("video", type=Path, help="the black-and-white video the keyframes come from")
    ap.add_argument("--references", type=Path, required=True, help="folder of ref_NNNNNN.png/.jpg (colorgan-keyframes)")
    ap.add_argument("--out", type=Path, required=True, help="the adapted generator to write (.safetensors)")
    ap.add_argument("--base", type=Path, default=None, help="generator to start from (default: the bundled model)")
    ap.add_argument("--steps", type=int, default=d.steps, help=f"optimiser steps (default {d.steps})")
    ap.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N (default auto)")
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--l2sp", type=float, default=d.l2sp,
                    help="pull toward the base weights (default per base encoder: " + ", ".join(
                        f"{k} {v['l2sp']}" for k, v in ENCODER_DEFAULTS.items()) + ")")
    ap.add_argument("--encoder-stages", type=int, default=d.encoder_stages,
                    help="also train the last N encoder stages (default 0: decoder only)")
    ap.add_argument("--fill-weight", type=float, default=d.fill_weight,
                    help="weight of a partial key's stroke-filled pixels (default 0: painted pixels only)")
    ap.add_argument("--film-augment", type=float, default=d.film_augment,
                    help="probability of each film degradation of the keys' luma (default 0: they are the film's own)")
    ap.add_argument("--film-gain", type=float, default=d.film_gain,
                    help="chroma gain of the adapted colour (default: the base model's calibrated gain)")
    ap.add_argument("--gate-low", type=float, default=d.gate_low,
                    help="similarity to the keys less that to featureless pictures, below which the base model's "
                         "colour is kept (default per base encoder: " + ", ".join(
                             f"{k} {v['gate_low']}" for k, v in ENCODER_DEFAULTS.items()) + ")")
    ap.add_argument("--gate-high", type=float, default=d.gate_high,
                    help="... and above which the adapted colour is used alone (default per base encoder: " + ", ".join(
                        f"{k} {v['gate_high']}" for k, v in ENCODER_DEFAULTS.items()) + ")")
    ap.add_argument("--val-fraction", type=float, default=d.val_fraction)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--threads", type=int, default=d.threads,
                    help=f"torch threads (default {d.threads}; 0: torch's default, all cores, faster on a "
                         f"dedicated machine)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return ap


def options_from_args(args: argparse.Namespace) -> AdaptOptions:
    return AdaptOptions(steps=args.steps, device=args.device, batch_size=args.batch_size, lr=args.lr, l2sp=args.l2sp,
                        encoder_stages=args.encoder_stages, fill_weight=args.fill_weight,
                        film_augment=args.film_augment, film_gain=args.film_gain, gate_low=args.gate_low,
                        gate_high=args.gate_high,
                        val_fraction=args.val_fraction, seed=args.seed, threads=args.threads)


def check_paths(args: argparse.Namespace) -> None:
    """Everything about the file arguments that can be checked before reading anything."""
    if not args.video.is_file():
        raise AdaptError(f"VIDEO {str(args.video)!r} is not a file")
    if not args.references.is_dir():
        raise AdaptError(f"--references must be a folder of ref_NNNNNN.png/.jpg files, not {str(args.references)!r}")
    if args.out.is_dir():
        raise AdaptError(f"--out {str(args.out)!r} is a folder; name the .safetensors file to write")
    if args.out.suffix != ".safetensors":
        raise AdaptError(f"--out must end in .safetensors (a generator file), not {str(args.out)!r}")
    if not args.out.parent.is_dir():
        raise AdaptError(f"--out's folder {str(args.out.parent)!r} does not exist")
    if args.base is not None and not args.base.is_file():
        raise AdaptError(f"--base {str(args.base)!r} is not a file (a generator .safetensors)")


def open_video(path: Path):
    import vapoursynth as vs

    core = vs.core
    if not hasattr(core, "bs"):
        raise AdaptError("VapourSynth's BestSource plugin is missing: pip install vapoursynth-bestsource")
    try:
        return core.bs.VideoSource(str(path))
    except vs.Error as e:
        raise AdaptError(f"VIDEO: BestSource cannot open {str(path)!r}: {e}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_paths(args)
        options = options_from_args(args)
        check_options(options)
        clip = open_video(args.video)
        result = adapt(clip, args.references, base=args.base, options=options, progress=not args.quiet)
        save_adapted(args.out, result, base=args.base, video=args.video.name, options=options)
    except AdaptError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; {args.out} not written", file=sys.stderr)
        return 130
    print(f"{PROG}: wrote {args.out}: {len(result.keyframes)} keyframes "
          f"({', '.join(map(str, result.keyframes))}), best of {result.steps_run} steps at step {result.best_step}, "
          f"held-out loss {result.val_base:.4f} -> {result.val_best:.4f}, {result.seconds:.0f} s", file=sys.stderr)
    if result.palettes:
        print(f"{PROG}: skipped as palettes (luma does not match their frames): "
              f"{', '.join(map(str, result.palettes))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
