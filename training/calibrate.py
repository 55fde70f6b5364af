"""``colorgan-calibrate``: fit how much of its colour a trained generator may show, on validation photos.

    colorgan-calibrate runs/default --out vs_colorgan/models/default.safetensors

A model trained on a few hundred photos is confidently wrong on footage it has never seen; the cure is
to shrink its chroma toward neutral where it cannot know (issue 8). The shrinkage is
``ab * chroma_gain / (1 + var / tau^2)`` (:func:`vs_colorgan.networks.calibrate`), with ``var`` the
confidence head's predicted squared error. This command fits ``chroma_gain``, ``confidence_tau`` and the
render size on the run's *validation* photos (the split training held out, whole photos, never the
held-out clips): every photo is made gray, coloured at each render size as the filter does (generator at
the render size, chroma upsampled to the photo), and each candidate is scored by its PSNR gain over the
gray image. The winner is the most colourful candidate whose mean PSNR stays within ``--max-psnr-loss`` dB
of the gray image's (:func:`choose`), written as a new generator file whose ``ModelConfig`` carries it. Every candidate's figures go to ``OUT.calibration.json`` (the losers too).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vs_colorgan import color
from vs_colorgan.model_io import ModelFileError, atomic_write, load_generator, resolve_generator_path, save_generator
from vs_colorgan.networks import calibrate
from vs_colorgan.pipeline import render_shape

from .data import _in_validation, read_image, scan

GAINS: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
TAU_FACTORS: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0)  # times the median predicted error; 0 = head unused
RENDER_SIZES: tuple[int, ...] = (128, 192, 256)
TRUTH_SHORT_SIDE = 256  # photos are scored at this short side (the size of a frame's chroma work, roughly)


@dataclass(frozen=True)
class Photo:
    """One validation photo at scoring size: gray L_norm, true ab_norm, and the truth's RGB."""

    l_norm: torch.Tensor  # (1, 1, H, W)
    ab: torch.Tensor  # (1, 2, H, W)
    rgb: torch.Tensor  # (1, 3, H, W) in [0, 1]


def validation_photos(data: list[str] | tuple[str, ...], val_fraction: float, *, limit: int = 0) -> list[Photo]:
    """The still images of training's validation split (same scan, same hash split as ``colorgan-train``)."""
    items, _ = scan(data, frames_per_video=0, show_progress=False)
    photos = []
    for rel, item in items:
        if item.frame >= 0 or not _in_validation(rel, val_fraction):
            continue
        rgb = read_image(item.path, min_short=TRUTH_SHORT_SIDE)
        if rgb is None:
            continue
        t = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().unsqueeze(0) / 255.0
        h, w = t.shape[-2:]
        s = TRUTH_SHORT_SIDE / min(h, w)
        if s < 1:
            t = F.interpolate(t, size=(round(h * s), round(w * s)), mode="area")
        l_norm, ab = color.split_lab(t)
        photos.append(Photo(l_norm, ab, color.merge_lab(l_norm, ab)))
        if limit and len(photos) >= limit:
            break
    return photos


@torch.no_grad()
def predict(model: torch.nn.Module, photo: Photo, render_size: int, multiple: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Uncalibrated ``(ab, log_var)`` of the gray photo rendered at ``render_size``, upsampled to the photo."""
    h, w = photo.l_norm.shape[-2:]
    rw, rh = render_shape(w, h, render_size, multiple)
    l_small = F.interpolate(photo.l_norm, size=(rh, rw), mode="bicubic", align_corners=False).clamp(-1, 1)
    if hasattr(model, "distribution"):
        ab, log_var = model.distribution(l_small)
    else:
        ab, log_var = model(l_small), None
    ab = F.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)
    if log_var is not None:
        log_var = F.interpolate(log_var, size=(h, w), mode="bilinear", align_corners=False)
    return ab, log_var


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean().clamp_min(1e-10)))


def _colourfulness(rgb: torch.Tensor) -> float:
    """Hasler & Suesstrunk (2003) on 0-255 RGB, as evaluate.metrics.colorfulness."""
    x = rgb[0] * 255.0
    rg = x[0] - x[1]
    yb = 0.5 * (x[0] + x[1]) - x[2]
    return float(math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean()))


def _false_colour(ab_pred: torch.Tensor, ab_true: torch.Tensor) -> float | None:
    """Share of truly neutral pixels painted clearly coloured: evaluate.metrics.false_colour_rate's definition
    and thresholds, on the network's ab rather than on 8-bit RGB."""
    from vs_colorgan.evaluate.metrics import FALSE_CHROMA, NEUTRAL_CHROMA

    neutral = color.denormalize_ab(ab_true).norm(dim=1) < NEUTRAL_CHROMA
    if not neutral.any():
        return None
    coloured = color.denormalize_ab(ab_pred).norm(dim=1) > FALSE_CHROMA
    return float((coloured & neutral).sum() / neutral.sum())


def score_candidates(model: torch.nn.Module, photos: list[Photo], multiple: int, *, render_sizes=RENDER_SIZES,
                     gains=GAINS, tau_factors=TAU_FACTORS) -> tuple[list[dict], float]:
    """Mean figures of every (render size, gain, tau) candidate over ``photos``; and the median predicted error."""
    preds = {r: [predict(model, p, r, multiple) for p in photos] for r in render_sizes}
    has_head = all(lv is not None for r in render_sizes for _, lv in preds[r])
    sigmas = torch.cat([lv.flatten() for _, lv in preds[render_sizes[0]]]).mul(0.5).exp() if has_head else None
    median_sigma = float(sigmas.median()) if sigmas is not None else 0.0
    gray = [_psnr(color.merge_lab(p.l_norm, torch.zeros_like(p.ab)), p.rgb) for p in photos]
    truth_cf = float(np.mean([_colourfulness(p.rgb) for p in photos]))
    rows = []
    for r in render_sizes:
        for factor in tau_factors if has_head else (0.0,):
            tau = factor * median_sigma
            for gain in gains:
                d, cf, fc = [], [], []
                for p, (ab, lv), g in zip(photos, preds[r], gray):
                    out = calibrate(ab, lv, gain, tau)
                    rgb = color.merge_lab(p.l_norm, out)
                    d.append(_psnr(rgb, p.rgb) - g)
                    cf.append(_colourfulness(rgb))
                    f = _false_colour(out, p.ab)
                    if f is not None:
                        fc.append(f)
                rows.append({"render_size": r, "chroma_gain": gain, "confidence_tau": tau, "tau_factor": factor,
                             "dpsnr": float(np.mean(d)), "colourfulness_ratio": float(np.mean(cf)) / truth_cf,
                             "false_colour": float(np.mean(fc)) if fc else 0.0})
    return rows, median_sigma


def choose(rows: list[dict], max_psnr_loss: float) -> dict:
    """The most colourful candidate whose mean PSNR is at most ``max_psnr_loss`` dB below the gray image's
    (issue 8's bound: colour, but never worse than gray by more than that); when none is, the best PSNR gain.

    Why colourfulness under a PSNR bound rather than the best PSNR: PSNR alone prefers near-gray output from
    a model this uncertain (the best candidates are +0.2 dB at a tenth of the truth's colourfulness), which
    is not colourization; the bound keeps the restraint, the colour is what is left to maximise.
    """
    ok = [r for r in rows if r["dpsnr"] >= -max_psnr_loss]
    if not ok:
        return max(rows, key=lambda r: (r["dpsnr"], -r["render_size"]))
    return max(ok, key=lambda r: (round(r["colourfulness_ratio"], 3), r["dpsnr"], -r["render_size"]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="colorgan-calibrate", description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path, help="a training run folder or a generator .safetensors")
    p.add_argument("--out", type=Path, required=True, help="calibrated generator file to write (.safetensors)")
    p.add_argument("--data", nargs="+", help="data folders (default: the run's options.json)")
    p.add_argument("--val-fraction", type=float, help="validation share (default: the run's options.json)")
    p.add_argument("--render-sizes", type=int, nargs="+", default=list(RENDER_SIZES))
    p.add_argument("--max-psnr-loss", type=float, default=0.5,
                   help="how many dB below the gray image's PSNR a candidate may be (default 0.5)")
    p.add_argument("--limit", type=int, default=0, help="use at most this many validation photos (0 = all)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        gen_path = resolve_generator_path(args.model)
        model, cfg = load_generator(gen_path)
    except ModelFileError as e:
        print(f"colorgan-calibrate: {e}", file=sys.stderr)
        return 2
    run_opts = {}
    opts_file = (args.model if args.model.is_dir() else gen_path.parent) / "options.json"
    if opts_file.is_file():
        run_opts = json.loads(opts_file.read_text())
    data = args.data or run_opts.get("data")
    val_fraction = args.val_fraction if args.val_fraction is not None else run_opts.get("val_fraction")
    if not data or val_fraction is None:
        print("colorgan-calibrate: give --data and --val-fraction (no options.json next to the model)", file=sys.stderr)
        return 2
    for r in args.render_sizes:
        if r < 64 or r % cfg.size_multiple:
            print(f"colorgan-calibrate: render sizes must be multiples of {cfg.size_multiple} >= 64, not {r}", file=sys.stderr)
            return 2
    # score the uncalibrated network: each candidate applies its own gain and tau
    model.chroma_gain = 1.0
    if hasattr(model, "confidence_tau"):
        model.confidence_tau = 0.0
    photos = validation_photos(data, val_fraction, limit=args.limit)
    if not photos:
        print(f"colorgan-calibrate: no validation photos in {data} at val_fraction {val_fraction}", file=sys.stderr)
        return 2
    rows, median_sigma = score_candidates(model, photos, cfg.size_multiple, render_sizes=tuple(args.render_sizes))
    best = choose(rows, args.max_psnr_loss)
    def line(r: dict) -> str:
        return (f"render {r['render_size']:4d}  gain {r['chroma_gain']:.2f}  tau {r['confidence_tau']:.4f}"
                f"  dPSNR {r['dpsnr']:+.2f} dB  colourfulness x{r['colourfulness_ratio']:.2f}"
                f"  false colour {r['false_colour']:.1%}")

    print("best candidates by PSNR gain over gray (validation photos):")
    for r in sorted(rows, key=lambda r: -r["dpsnr"])[:10]:
        print("  " + line(r))
    print(f"chosen (the most colourful within {args.max_psnr_loss:g} dB of gray):\n  {line(best)}  <- chosen")
    new_cfg = dataclasses.replace(cfg, chroma_gain=best["chroma_gain"], confidence_tau=best["confidence_tau"],
                                  render_size=best["render_size"])
    save_generator(args.out, model, new_cfg)  # the weights are unchanged; the calibration is in the config
    record = {"source": str(gen_path), "photos": len(photos), "median_sigma": median_sigma,
              "max_psnr_loss": args.max_psnr_loss, "chosen": best, "candidates": rows}
    text = json.dumps(record, indent=2)
    atomic_write(args.out.with_suffix(".calibration.json"), lambda tmp: Path(tmp).write_text(text))
    print(f"colorgan-calibrate: {len(photos)} validation photos; wrote {args.out} (render {best['render_size']}, "
          f"gain {best['chroma_gain']}, tau {best['confidence_tau']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
