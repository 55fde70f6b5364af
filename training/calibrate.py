"""``colorgan-calibrate``: fit how much of its colour a trained generator may show, on footage or validation photos.

    colorgan-calibrate runs/default --out vs_colorgan/models/default.safetensors
    colorgan-calibrate runs/default/snapshots/*.safetensors --footage clip.avi --out model.safetensors

A model trained on a few hundred photos is confidently wrong on footage it has never seen; the cure is
to shrink its chroma toward neutral where it cannot know (issue 8). The shrinkage is
``ab * chroma_gain / (1 + var / tau^2)`` (:func:`vs_colorgan.networks.calibrate`), with ``var`` the
confidence head's predicted squared error. This command fits ``chroma_gain``, ``confidence_tau`` and the
render size on the run's *validation* photos (the split training held out, whole photos, never the
held-out clips): every photo is made gray, coloured at each render size as the filter does (generator at
the render size, chroma upsampled to the photo), and each candidate is scored by its PSNR gain over the
gray image. The winner is the most colourful candidate whose mean PSNR stays within ``--max-psnr-loss`` dB
of the gray image's (:func:`choose`), written as a new generator file whose ``ModelConfig`` carries it. Every candidate's figures go to ``OUT.calibration.json`` (the losers too).

Photographs are far more colourful than film frames: a gain chosen on photos overshot about 2x on footage
(issue 17). ``--footage`` scores frames of real colour clips (video files or folders of frames) instead,
and several generator files (say every snapshot of a run, ``--snapshot-every``) can be given at once: the
training step is then chosen with the rest, where footage stops improving. Keep the clips you report on
out of this choice. One clip is one kind of content, though: a model that paints bright areas green wins on a
clip of foliage and paints a gray pavement green elsewhere. ``--with-photos`` scores the validation photos as
well, and the PSNR and false-colour bounds must then hold on each set.

Footage and photos do not show where a weak model paints rainbows: plain walls, skies, blurred backgrounds.
Every candidate is therefore also run on the synthetic flat frames of :mod:`vs_colorgan.evaluate.flat_frames`
and left out when it paints more than ``--max-rainbow`` of any of them off its main hue (issue 17's rule;
a snapshot that scored best on a clip once painted saturated stripes across a plain ramp).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vs_colorgan import color
from vs_colorgan.evaluate.flat_frames import filter_rainbow, flat_frames
from vs_colorgan.evaluate.metrics import FALSE_CHROMA, NEUTRAL_CHROMA, colorfulness_batch, rainbow_share
from vs_colorgan.media import IMAGE_EXTS, read_video_frames
from vs_colorgan.model_io import (ModelConfig, ModelFileError, atomic_write, check_render_size, load_generator,
                                  resolve_generator_path, save_generator)
from vs_colorgan.networks import calibrate
from vs_colorgan.pipeline import render_shape

from .data import _in_validation, read_image, scan

GAINS: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
TAU_FACTORS: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0)  # times the median predicted error; 0 = head unused
RENDER_SIZES: tuple[int, ...] = (128, 192, 256)
TRUTH_SHORT_SIDE = 256  # photos are scored at this short side (the size of a frame's chroma work, roughly)
FLAT_FRAME_SIZE = (427, 240)  # (width, height) of the synthetic flat frames every candidate is also run on


@dataclass(frozen=True)
class Photo:
    """Pictures at scoring size, one photo or a batch of same-size frames: gray L_norm, true ab_norm, truth RGB."""

    l_norm: torch.Tensor  # (N, 1, H, W): one photo, or a clip's frames
    ab: torch.Tensor  # (N, 2, H, W)
    rgb: torch.Tensor  # (N, 3, H, W) in [0, 1]


def as_photo(rgb: np.ndarray) -> Photo:
    """An RGB uint8 picture at scoring size (short side at most :data:`TRUTH_SHORT_SIDE`)."""
    t = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float().unsqueeze(0) / 255.0
    h, w = t.shape[-2:]
    s = TRUTH_SHORT_SIDE / min(h, w)
    if s < 1:
        t = F.interpolate(t, size=(round(h * s), round(w * s)), mode="area")
    l_norm, ab = color.split_lab(t)
    return Photo(l_norm, ab, color.merge_lab(l_norm, ab))


def validation_photos(data: list[str] | tuple[str, ...], val_fraction: float, *, limit: int = 0,
                      exclude: tuple[str, ...] = ()) -> list[Photo]:
    """The still images of training's validation split (same scan, same hash split as ``colorgan-train``)."""
    items, _ = scan(data, frames_per_video=0, show_progress=False, exclude=exclude)
    photos = []
    for rel, item in items:
        if item.frame >= 0 or not _in_validation(rel, val_fraction):
            continue
        rgb = read_image(item.path, min_short=TRUTH_SHORT_SIDE)
        if rgb is None:
            continue
        photos.append(as_photo(rgb))
        if limit and len(photos) >= limit:
            break
    return photos


def flat_pictures() -> Photo:
    """The synthetic smooth and flat frames (:mod:`vs_colorgan.evaluate.flat_frames`) as one gray batch."""
    pics = [as_photo(np.dstack([luma] * 3)) for luma in flat_frames(*FLAT_FRAME_SIZE).values()]
    return Photo(*(torch.cat(ts) for ts in zip(*[(p.l_norm, p.ab, p.rgb) for p in pics])))


def _flat_rainbow(rgb: torch.Tensor) -> float:
    """The largest rainbow share (:func:`vs_colorgan.evaluate.metrics.rainbow_share`) of a batch of RGB frames."""
    frames = rgb.mul(255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return max(rainbow_share(f) for f in frames)


def footage_frames(sources: list[Path], per_source: int) -> list[Photo]:
    """Up to ``per_source`` evenly spaced frames of each video file, or images of each folder (name order)."""
    frames = []
    for src in sources:
        if src.is_dir():
            rgbs = [read_image(str(p)) for p in _evenly(sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_EXTS), per_source)]
        else:
            rgbs = _evenly(read_video_frames(src, max_short=TRUTH_SHORT_SIDE), per_source)
        pics = [as_photo(rgb) for rgb in rgbs if rgb is not None]
        # a clip's frames share one size: one batch, scored in one go (colorgan-calibrate on a GPU)
        by_size: dict[tuple[int, ...], list[Photo]] = {}
        for p in pics:
            by_size.setdefault(tuple(p.l_norm.shape), []).append(p)
        frames += [Photo(*(torch.cat(ts) for ts in zip(*[(p.l_norm, p.ab, p.rgb) for p in group])))
                   for group in by_size.values()]
    return frames


def _evenly(items: list, count: int) -> list:
    return [items[int(i * len(items) / count)] for i in range(count)] if len(items) > count else items


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


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR of each picture of a batch (N,)."""
    return 10 * torch.log10(1.0 / ((a - b) ** 2).mean(dim=(1, 2, 3)).clamp_min(1e-10))


def _false_colour(ab_pred: torch.Tensor, ab_true: torch.Tensor) -> list[float]:
    """Share of truly neutral pixels painted clearly coloured, per picture that has neutral pixels:
    evaluate.metrics.false_colour_rate's definition and thresholds, on the network's ab rather than on 8-bit RGB."""
    # hypot, not Tensor.norm(dim=1): the norm over the channel axis of an (N, 2, H, W) batch ran ~30x slower and
    # was most of a calibration's time
    neutral = torch.hypot(*color.denormalize_ab(ab_true).unbind(1)) < NEUTRAL_CHROMA
    coloured = torch.hypot(*color.denormalize_ab(ab_pred).unbind(1)) > FALSE_CHROMA
    n = neutral.sum(dim=(1, 2))
    rate = (coloured & neutral).sum(dim=(1, 2)) / n.clamp_min(1)
    return rate[n > 0].tolist()


def _lab_array(rgb: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) sRGB in [0, 1] -> (N, H/2, W/2, 3) float32 CIE Lab of every other pixel each way, the form
    scikit-image's CIEDE2000 takes: a quarter of the pixels, whose mean was the whole picture's to 0.01 on a test
    photo (6.284 against 6.276) at a fifth of the time per candidate."""
    return color.rgb_to_lab(rgb[..., ::2, ::2].clamp(0, 1)).permute(0, 2, 3, 1).cpu().numpy()


def _ciede2000(lab: np.ndarray, truth_lab: np.ndarray) -> np.ndarray:
    """Mean CIEDE2000 per picture (N,): scikit-image's (Sharma, Wu & Dalal 2005), as evaluate.metrics.ciede2000."""
    from skimage.color import deltaE_ciede2000

    return deltaE_ciede2000(truth_lab, lab, channel_axis=-1).mean(axis=(1, 2))


def score_candidates(model: torch.nn.Module, photos: list[Photo], multiple: int, *, render_sizes=RENDER_SIZES,
                     gains=GAINS, tau_factors=TAU_FACTORS, flat: Photo | None = None,
                     median_sigma: float | None = None, de00: bool = False) -> tuple[list[dict], float]:
    """Mean figures of every (render size, gain, tau) candidate over the pictures in ``photos`` (each a batch of
    one photo, or of a clip's frames); and the median predicted error. With ``flat`` (:func:`flat_pictures`),
    each candidate's largest rainbow share on those frames too (``flat_rainbow``). ``median_sigma``: the scale of
    tau (tau = factor x it) when another set of pictures set it already; else these pictures' median error.
    ``de00``: each candidate's mean CIEDE2000 less the gray image's too (``dde00``; issue 17 bounds it: a
    restrained colour that is wrong still costs more than no colour, and PSNR does not see it as ΔE00 does)."""
    preds = {r: [predict(model, p, r, multiple) for p in photos] for r in render_sizes}
    flat_preds = {r: predict(model, flat, r, multiple) for r in render_sizes} if flat is not None else {}
    has_head = all(lv is not None for r in render_sizes for _, lv in preds[r])
    sigmas = torch.cat([lv.flatten() for _, lv in preds[render_sizes[0]]]).mul(0.5).exp() if has_head else None
    if median_sigma is None:
        median_sigma = float(sigmas.median()) if sigmas is not None else 0.0
    gray_rgb = [color.merge_lab(p.l_norm, torch.zeros_like(p.ab)) for p in photos]
    gray = [_psnr(g, p.rgb) for g, p in zip(gray_rgb, photos)]
    truth_lab = [_lab_array(p.rgb) for p in photos] if de00 else []
    gray_de = (np.concatenate([_ciede2000(_lab_array(g), t) for g, t in zip(gray_rgb, truth_lab)]).mean()
               if de00 else 0.0)
    truth_cf = float(torch.cat([colorfulness_batch(p.rgb) for p in photos]).mean())
    rows = []
    for r in render_sizes:
        for factor in tau_factors if has_head else (0.0,):
            tau = factor * median_sigma
            for gain in gains:
                d, cf, fc, de = [], [], [], []
                for i, (p, (ab, lv), g) in enumerate(zip(photos, preds[r], gray)):
                    out = calibrate(ab, lv, gain, tau)
                    rgb = color.merge_lab(p.l_norm, out)
                    d.append(_psnr(rgb, p.rgb) - g)
                    cf.append(colorfulness_batch(rgb))
                    fc += _false_colour(out, p.ab)
                    if de00:
                        de.append(_ciede2000(_lab_array(rgb), truth_lab[i]))
                rows.append({"render_size": r, "chroma_gain": gain, "confidence_tau": tau, "tau_factor": factor,
                             "dpsnr": float(torch.cat(d).mean()), "colourfulness_ratio": float(torch.cat(cf).mean()) / truth_cf,
                             "false_colour": float(np.mean(fc)) if fc else 0.0})
                if de00:
                    rows[-1]["dde00"] = float(np.concatenate(de).mean() - gray_de)
                if flat is not None:
                    out = calibrate(*flat_preds[r], gain, tau)
                    rows[-1]["flat_rainbow"] = _flat_rainbow(color.merge_lab(flat.l_norm, out))
    return rows, median_sigma


def merge_sets(by_set: dict[str, list[dict]]) -> list[dict]:
    """One row per candidate from the rows of each set of pictures (same candidates, same order): the bounds hold
    on the worst set (lowest PSNR gain, highest false colour), colourfulness is the sets' mean; each set's own
    figures are kept under ``by_set``."""
    names = list(by_set)
    merged = []
    for rows in zip(*by_set.values(), strict=True):
        row = dict(rows[0])
        row.update(dpsnr=min(r["dpsnr"] for r in rows), false_colour=max(r["false_colour"] for r in rows),
                   colourfulness_ratio=float(np.mean([r["colourfulness_ratio"] for r in rows])),
                   by_set={n: {k: r[k] for k in ("dpsnr", "colourfulness_ratio", "false_colour", "dde00") if k in r}
                           for n, r in zip(names, rows)})
        if all("dde00" in r for r in rows):
            row["dde00"] = max(r["dde00"] for r in rows)
        merged.append(row)
    return merged


def within_bounds(row: dict, max_psnr_loss: float, max_false_colour: float = 1.0, max_rainbow: float = 1.0,
                  max_de00_loss: float | None = None) -> bool:
    """Whether a candidate keeps every bound :func:`choose` looks for (PSNR, false colour, flat-frame rainbow,
    CIEDE2000 when given)."""
    return (row["dpsnr"] >= -max_psnr_loss and row.get("false_colour", 0.0) <= max_false_colour
            and row.get("flat_rainbow", 0.0) <= max_rainbow and (max_de00_loss is None or row["dde00"] <= max_de00_loss))


def choose(rows: list[dict], max_psnr_loss: float, max_false_colour: float = 1.0, max_rainbow: float = 1.0,
           max_de00_loss: float | None = None) -> dict:
    """The most colourful candidate whose mean PSNR is at most ``max_psnr_loss`` dB below the gray image's,
    whose false-colour rate is at most ``max_false_colour``, whose rainbow share on the flat frames is at
    most ``max_rainbow`` and (with ``max_de00_loss``) whose mean CIEDE2000 is at most that much above the gray
    image's (issue 8's and 17's bounds: colour, but never worse than gray by more than that,
    and no rainbows where the picture gives nothing to go on); when none is, the best PSNR gain among those
    within the rainbow bound, then among all.

    Why colourfulness under a PSNR bound rather than the best PSNR: PSNR alone prefers near-gray output from
    a model this uncertain (the best candidates are +0.2 dB at a tenth of the truth's colourfulness), which
    is not colourization; the bound keeps the restraint, the colour is what is left to maximise.
    """
    calm = [r for r in rows if r.get("flat_rainbow", 0.0) <= max_rainbow] or rows
    ok = [r for r in calm if within_bounds(r, max_psnr_loss, max_false_colour, max_rainbow, max_de00_loss)]
    if not ok:
        return max(calm, key=lambda r: (r["dpsnr"], -r["render_size"]))
    # colourfulness compared to the hundredth of the truth's: closer than that no one sees, while the PSNR that
    # breaks the tie can differ by half a dB (snapshots 1600 and 2000 of the bundled run: 0.239 at +0.08 dB
    # against 0.237 at +0.69 dB)
    return max(ok, key=lambda r: (round(r["colourfulness_ratio"], 2), r["dpsnr"], -r["render_size"]))


def confirm_through_filter(best: dict, measure: Callable[[dict], float], rechoose: Callable[[], dict],
                           max_rainbow: float) -> dict:
    """``best``, or the next choice, whose rainbow share on the flat frames *through the filter* is within
    ``max_rainbow``: each chosen candidate is run through ``measure`` (the largest share of
    :func:`vs_colorgan.evaluate.flat_frames.filter_rainbow`, recorded as ``filter_rainbow``); one over the bound
    gets it as its ``flat_rainbow`` too, so ``rechoose`` (:func:`choose` over all candidates) passes it over.

    Why: the candidates are scored on the network's Lab output merged at full size, which the filter does not
    show: it renders chroma on a grid half the render size, upsamples it guided by the luma and limits it to the
    gamut. A snapshot whose every candidate scored 0.0 % here painted 1.2 % on a ramp through the filter (this
    repository's README, "The bundled model"), and the filter is what the rule is about. Ends when the choice
    passes, or when it comes back to a candidate already run (nothing within the bound: choose's fallback).
    """
    tried: set[int] = set()
    while id(best) not in tried:
        tried.add(id(best))
        best["filter_rainbow"] = measure(best)
        if best["filter_rainbow"] <= max_rainbow:
            return best
        print(f"  through the filter: {best['filter_rainbow']:.1%} rainbow on a flat frame, over the bound: "
              f"{_line(best)}")
        best["flat_rainbow"] = max(best.get("flat_rainbow", 0.0), best["filter_rainbow"])
        best = rechoose()
    return best


def calibrated_config(cfg: ModelConfig, row: dict) -> ModelConfig:
    """The model file's config with a candidate's calibration and render size."""
    return dataclasses.replace(cfg, chroma_gain=row["chroma_gain"], confidence_tau=row["confidence_tau"],
                               render_size=row["render_size"])


def _line(r: dict) -> str:
    return (f"render {r['render_size']:4d}  gain {r['chroma_gain']:.2f}  tau {r['confidence_tau']:.4f}"
            f"  dPSNR {r['dpsnr']:+.2f} dB  colourfulness x{r['colourfulness_ratio']:.2f}"
            f"  false colour {r['false_colour']:.1%}"
            + (f"  flat rainbow {r['flat_rainbow']:.1%}" if "flat_rainbow" in r else "")
            + (f" (filter {r['filter_rainbow']:.1%})" if "filter_rainbow" in r else "")
            + (f"  dE00 {r['dde00']:+.2f}" if "dde00" in r else "")
            + "".join(f"  [{name.split(' ')[0]}: {f['dpsnr']:+.2f} dB, x{f['colourfulness_ratio']:.2f}"
                      + (f", dE00 {f['dde00']:+.2f}" if "dde00" in f else "") + "]"
                      for name, f in r.get("by_set", {}).items()) + (f"  [{Path(r['model']).name}]" if "model" in r else ""))


def average_weights(models: list[torch.nn.Module]) -> torch.nn.Module:
    """A copy of ``models[0]`` holding the mean of the models' floating-point parameters and buffers (batch-norm
    statistics too); integer buffers (batch counts) are the first model's."""
    import copy

    avg = copy.deepcopy(models[0])
    states = [m.state_dict() for m in models]
    avg.load_state_dict({k: torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v
                         for k, v in states[0].items()})
    return avg


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="colorgan-calibrate", description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path, nargs="+",
                   help="a training run folder or generator .safetensors; several (a run's snapshots/*.safetensors) "
                        "to choose among them too")
    p.add_argument("--out", type=Path, required=True, help="calibrated generator file to write (.safetensors)")
    p.add_argument("--footage", type=Path, nargs="+",
                   help="score on frames of these colour clips (video files or folders of frames) instead of "
                        "the run's validation photos")
    p.add_argument("--with-photos", action="store_true",
                   help="with --footage: score the run's validation photos too; the PSNR and false-colour bounds "
                        "then hold on each (footage alone can favour a model that suits its content)")
    p.add_argument("--frames-per-clip", type=int, default=75, help="evenly spaced frames taken of each --footage clip")
    p.add_argument("--average", action="store_true",
                   help="also try the mean of the given generator files' weights (checkpoint averaging)")
    p.add_argument("--data", nargs="+", help="data folders (default: the run's options.json)")
    p.add_argument("--val-fraction", type=float, help="validation share (default: the run's options.json)")
    p.add_argument("--render-sizes", type=int, nargs="+", default=list(RENDER_SIZES))
    p.add_argument("--gains", type=float, nargs="+", default=list(GAINS), help="chroma gains to try")
    p.add_argument("--max-psnr-loss", type=float, default=0.5,
                   help="how many dB below the gray image's PSNR a candidate may be (default 0.5; 0 = never below gray)")
    p.add_argument("--max-false-colour", type=float, default=0.03,
                   help="largest share of truly neutral pixels a candidate may paint clearly coloured (default 0.03)")
    p.add_argument("--max-de00-loss", type=float, default=None,
                   help="how much a candidate's mean CIEDE2000 may exceed the gray image's (0 = never above gray's, "
                        "issue 17's bound); default: not scored (it costs a scikit-image pass per candidate)")
    p.add_argument("--max-rainbow", type=float, default=0.01,
                   help="largest rainbow share a candidate may paint on any synthetic flat frame (sky, wall, blur; "
                        "default 0.01, issue 17's rule); 1 = not checked")
    p.add_argument("--limit", type=int, default=0, help="use at most this many validation photos (0 = all)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default")
    p.add_argument("--device", default="cpu", help="torch device for the scoring (cpu, cuda)")
    return p


def _run_options(model: Path, gen_path: Path) -> dict:
    """The options.json of the run a model belongs to: the run folder, or beside the file or its folder."""
    for folder in (model,) if model.is_dir() else (gen_path.parent, gen_path.parent.parent):
        if (folder / "options.json").is_file():
            return json.loads((folder / "options.json").read_text())
    return {}


def _picture_sets(args: argparse.Namespace, run_opts: dict) -> dict[str, list[Photo]]:
    """What candidates are scored on, by name: footage frames, validation photos, or both; raises ValueError."""
    sets = dict([_footage(args)]) if args.footage else {}
    if not args.footage or args.with_photos:
        sets.update([_validation_photos(args, run_opts)])
    return sets


def _footage(args: argparse.Namespace) -> tuple[str, list[Photo]]:
    """The --footage clips' frames and their name; raises ValueError."""
    missing = [str(f) for f in args.footage if not f.exists()]
    if missing:
        raise ValueError(f"--footage must be existing video files or folders of frames, not {missing}")
    frames = footage_frames(args.footage, args.frames_per_clip)
    if not frames:
        raise ValueError(f"no readable frames in --footage {[str(f) for f in args.footage]}")
    return f"footage frames ({', '.join(f.name for f in args.footage)})", frames


def _validation_photos(args: argparse.Namespace, run_opts: dict) -> tuple[str, list[Photo]]:
    """The run's validation photos and their name; raises ValueError."""
    data = args.data or run_opts.get("data")
    val_fraction = args.val_fraction if args.val_fraction is not None else run_opts.get("val_fraction")
    if not data or val_fraction is None:
        raise ValueError("give --data and --val-fraction (no options.json next to the model)")
    photos = validation_photos(data, val_fraction, limit=args.limit, exclude=tuple(run_opts.get("exclude", ())))
    if not photos:
        raise ValueError(f"no validation photos in {data} at val_fraction {val_fraction}")
    return "validation photos", photos


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    def fail(msg: str) -> int:
        print(f"colorgan-calibrate: {msg}", file=sys.stderr)
        return 2

    try:
        gen_paths = [resolve_generator_path(m) for m in args.model]
        models = [load_generator(g, device=args.device) for g in gen_paths]
    except ModelFileError as e:
        return fail(str(e))
    if len({(c.arch, c.encoder, c.width, c.confidence, c.padding, c.head) for _, c in models}) > 1:
        return fail("the models given must be snapshots of one architecture (arch, encoder, width, head, padding)")
    cfg = models[0][1]
    if args.average:
        if len(models) < 2:
            return fail("--average needs two or more generator files (a run's snapshots)")
        # one more candidate: the snapshots' mean weights (checkpoint averaging, Izmailov et al. 2018, "Averaging
        # Weights Leads to Wider Optima"), named by the files it averages
        gen_paths.append(Path("average(" + ",".join(p.name for p in gen_paths) + ")"))
        models.append((average_weights([m for m, _ in models]), cfg))
    try:
        for r in args.render_sizes:
            check_render_size(r, cfg.size_multiple, name="--render-sizes")
    except ValueError as e:
        return fail(str(e))
    if args.with_photos and not args.footage:
        return fail("--with-photos adds the validation photos to --footage; without --footage they are scored anyway")
    try:
        sets = _picture_sets(args, _run_options(args.model[0], gen_paths[0]))
    except ValueError as e:
        return fail(str(e))
    if args.device != "cpu":
        sets = {name: [Photo(*(t.to(args.device) for t in (p.l_norm, p.ab, p.rgb))) for p in pics]
                for name, pics in sets.items()}
    what = " and ".join(sets)
    flat = flat_pictures() if args.max_rainbow < 1 else None
    if flat is not None and args.device != "cpu":
        flat = Photo(*(t.to(args.device) for t in (flat.l_norm, flat.ab, flat.rgb)))
    rows: list[dict] = []
    best_by_model = []
    for gen_path, (model, _) in zip(gen_paths, models):
        # score the uncalibrated network: each candidate applies its own gain and tau
        model.chroma_gain = 1.0
        if hasattr(model, "confidence_tau"):
            model.confidence_tau = 0.0
        # tau's scale comes from the first set (the footage when given), so a candidate is one setting on all sets
        by_set, median_sigma = {}, None
        for i, (name, pics) in enumerate(sets.items()):
            # score_candidates hands back the median_sigma it was given, or the first set's own
            by_set[name], median_sigma = score_candidates(model, pics, cfg.size_multiple,
                                                          render_sizes=tuple(args.render_sizes), gains=tuple(args.gains),
                                                          flat=flat if i == 0 else None, median_sigma=median_sigma,
                                                          de00=args.max_de00_loss is not None)
        model_rows = merge_sets(by_set) if len(by_set) > 1 else next(iter(by_set.values()))
        for r in model_rows:
            r.update(model=str(gen_path), median_sigma=median_sigma)
        rows += model_rows
        best_by_model.append(choose(model_rows, args.max_psnr_loss, args.max_false_colour, args.max_rainbow,
                                    args.max_de00_loss))
        if len(gen_paths) > 1:
            print(f"  {_line(best_by_model[-1])}")
    best = choose(best_by_model, args.max_psnr_loss, args.max_false_colour, args.max_rainbow, args.max_de00_loss)
    if flat is not None:
        def through_filter(row: dict) -> float:
            model, model_cfg = models[gen_paths.index(Path(row["model"]))]
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "candidate.safetensors"
                save_generator(path, model.cpu(), calibrated_config(model_cfg, row))
                return max(filter_rainbow(str(path)).values())

        best = confirm_through_filter(best, through_filter, lambda: choose(
            rows, args.max_psnr_loss, args.max_false_colour, args.max_rainbow, args.max_de00_loss), args.max_rainbow)
    print(f"best candidates by PSNR gain over gray ({what}):")
    for r in sorted(rows, key=lambda r: -r["dpsnr"])[:10]:
        print("  " + _line(r))
    bounds = (f"within {args.max_psnr_loss:g} dB of gray, {args.max_false_colour:.0%} false colour, "
              f"{args.max_rainbow:.0%} rainbow on flat frames"
              + (f", CIEDE2000 within {args.max_de00_loss:g} of gray's" if args.max_de00_loss is not None else ""))
    kept = within_bounds(best, args.max_psnr_loss, args.max_false_colour, args.max_rainbow, args.max_de00_loss)
    if kept:
        print(f"chosen (the most colourful {bounds}):\n  {_line(best)}  <- chosen")
    else:
        print(f"chosen, though NO candidate is {bounds} (the best PSNR gain instead):\n  {_line(best)}  <- chosen")
        print(f"colorgan-calibrate: warning: no candidate of {len(rows)} keeps the bounds ({bounds}); the file "
              "written holds the best PSNR gain over gray, which breaks them: look at it before use (fewer steps, "
              "lower --gains, another run)", file=sys.stderr)
    model, chosen_cfg = models[gen_paths.index(Path(best["model"]))]
    # the weights are unchanged; the calibration is in the config
    save_generator(args.out, model.cpu(), calibrated_config(chosen_cfg, best))
    record = {"source": best["model"], "scored_on": what,
              "pictures": sum(len(p.l_norm) for pics in sets.values() for p in pics),
              "max_psnr_loss": args.max_psnr_loss, "max_false_colour": args.max_false_colour,
              "max_rainbow": args.max_rainbow, "max_de00_loss": args.max_de00_loss,
              "within_bounds": kept, "chosen": best, "best_per_model": best_by_model, "candidates": rows}
    text = json.dumps(record, indent=2)
    atomic_write(args.out.with_suffix(".calibration.json"), lambda tmp: Path(tmp).write_text(text))
    print(f"colorgan-calibrate: {record['pictures']} {what}; wrote {args.out} from {best['model']} (render "
          f"{best['render_size']}, gain {best['chroma_gain']}, tau {best['confidence_tau']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
