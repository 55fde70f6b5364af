"""The default model's quality on the validation photos, through the filter with its defaults.

    .venv/bin/python benchmarks/validation_photos.py [--model M] [--data data/train] [--val-fraction 0.12]

The photos are training's validation split (whole photographs never trained on; the same hash split as
``colorgan-train``), at most 512 px on the short side as gathered. Each becomes a one-frame YUV444P8 clip
(BT.709 at HD sizes, 170M below, as colorgan-eval does), made gray by neutral chroma, coloured by
``vs_colorgan.colorize`` with its defaults, and scored in 8-bit RGB against the photo with the figures
issue 8 sets bounds on: PSNR gain over the gray input, mean CIEDE2000 (ours and gray), the false-colour
rate (truth chroma < 8 painted > 20) and colourfulness against the truth's. Prints one line per photo
and the means (``--json`` for one JSON object).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import vapoursynth as vs

import vs_colorgan
from vs_colorgan.evaluate import metrics
from vs_colorgan.evaluate.source import default_matrix, frame_array, rgb24
from vs_colorgan.training.data import _in_validation, read_image, scan

core = vs.core


def rgb_clip(rgb: np.ndarray) -> vs.VideoNode:
    """One RGB24 frame holding ``rgb`` (H, W, 3) uint8 (even sizes: cropped by at most a pixel)."""
    h, w = (rgb.shape[0] // 2) * 2, (rgb.shape[1] // 2) * 2
    rgb = rgb[:h, :w]
    blank = core.std.BlankClip(width=w, height=h, format=vs.RGB24, length=1)

    def put(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), rgb[..., p])
        return out

    return core.std.ModifyFrame(blank, blank, put)


def score_photo(rgb: np.ndarray, model: str | None) -> dict[str, float | None]:
    truth_clip = rgb_clip(rgb)
    matrix = default_matrix(truth_clip.width, truth_clip.height)
    yuv = core.std.SetFrameProps(truth_clip.resize.Bicubic(format=vs.YUV444P8, matrix=matrix), _Matrix=matrix)
    gray = core.std.Expr(yuv, ["", "128", "128"])
    ours = vs_colorgan.colorize(gray, model=model)
    truth = frame_array(truth_clip.get_frame(0))
    g = frame_array(rgb24(gray, matrix).get_frame(0))
    o = frame_array(rgb24(ours, matrix).get_frame(0))
    cf_truth = metrics.colorfulness(truth)
    return {
        "dpsnr": metrics.psnr(o, truth) - metrics.psnr(g, truth),
        "de00": metrics.ciede2000(o, truth),
        "de00_gray": metrics.ciede2000(g, truth),
        "false_colour": metrics.false_colour_rate(o, truth),
        "colourfulness": metrics.colorfulness(o),
        "colourfulness_truth": cf_truth,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="generator file (default: the bundled model)")
    p.add_argument("--data", nargs="+", default=["data/train"])
    p.add_argument("--val-fraction", type=float, default=0.12, help="the training run's (default-model preset: 0.12)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    items, _ = scan(args.data, frames_per_video=0, show_progress=False)
    rows = {}
    for rel, item in items:
        if item.frame >= 0 or not _in_validation(rel, args.val_fraction):
            continue
        rgb = read_image(item.path)
        if rgb is None or min(rgb.shape[:2]) < 64:
            continue
        rows[rel] = score_photo(rgb, args.model)
        if not args.json:
            r = rows[rel]
            fc = "   -  " if r["false_colour"] is None else f"{r['false_colour']:6.1%}"
            print(f"{rel[-48:]:48s} dPSNR {r['dpsnr']:+6.2f}  dE00 {r['de00']:5.2f} (gray {r['de00_gray']:5.2f})"
                  f"  false {fc}  colourfulness x{r['colourfulness'] / max(r['colourfulness_truth'], 1e-6):.2f}", file=sys.stderr)
    if not rows:
        print("no validation photos found", file=sys.stderr)
        return 2
    fcs = [r["false_colour"] for r in rows.values() if r["false_colour"] is not None]
    summary = {
        "photos": len(rows),
        "dpsnr": float(np.mean([r["dpsnr"] for r in rows.values()])),
        "de00": float(np.mean([r["de00"] for r in rows.values()])),
        "de00_gray": float(np.mean([r["de00_gray"] for r in rows.values()])),
        "false_colour": float(np.mean(fcs)) if fcs else None,
        # ratio of the means, as colorgan-eval's colourfulness ratio over a clip
        "colourfulness_ratio": float(np.mean([r["colourfulness"] for r in rows.values()])
                                     / np.mean([r["colourfulness_truth"] for r in rows.values()])),
    }
    if args.json:
        print(json.dumps({"summary": summary, "photos": rows}, indent=2))
    else:
        fc = "-" if summary["false_colour"] is None else f"{summary['false_colour']:.1%}"
        print(f"{summary['photos']} validation photos: dPSNR {summary['dpsnr']:+.2f} dB vs gray, dE00 {summary['de00']:.2f} "
              f"(gray {summary['de00_gray']:.2f}), false colour {fc}, colourfulness x{summary['colourfulness_ratio']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
