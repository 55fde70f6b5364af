"""Rainbows on flat and smooth frames: the share of each synthetic frame painted off its main hue, per model,
and a contact sheet (gray | one column per model) to look at.

    .venv/bin/python benchmarks/flat_frames.py --models OLD.safetensors NEW.safetensors --out out/flat

Issue 17's rule: at most 1 % of a frame clearly coloured (chroma > 15) with a hue more than 60 degrees from
the frame's chroma-weighted mean hue (:func:`vs_colorgan.evaluate.metrics.rainbow_share`). Each model runs
through ``vs_colorgan.colorize`` with its own defaults on the frames of
:mod:`vs_colorgan.evaluate.flat_frames` (854x480). Also printed: the mean chroma, to tell "no rainbow"
from "no colour at all".
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from vs_colorgan.evaluate.flat_frames import colorize_frame, flat_frames
from vs_colorgan.evaluate.metrics import lab_float, rainbow_share
from common import markdown_table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", type=Path, required=True, help="generator .safetensors files")
    p.add_argument("--out", type=Path, default=Path("out/flat"), help="folder for flat_frames.png")
    args = p.parse_args(argv)
    frames = flat_frames()
    rows, sheet = [], []
    for name, luma in frames.items():
        row, tiles = [name], [np.dstack([luma] * 3)]
        for model in args.models:
            rgb = colorize_frame(luma, model=str(model))
            lab = lab_float(rgb)
            row += [f"{rainbow_share(rgb):.1%}", f"{np.hypot(lab[..., 1], lab[..., 2]).mean():.1f}"]
            tiles.append(rgb)
        rows.append(row)
        sheet.append(np.hstack([t[::2, ::2] for t in tiles]))
    header = ["frame"] + [f"{m.name} {what}" for m in args.models for what in ("rainbow", "chroma")]
    print(markdown_table(header, rows))
    from PIL import Image

    args.out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.vstack(sheet)).save(args.out / "flat_frames.png")
    print(f"contact sheet: {args.out / 'flat_frames.png'} (columns: gray, then {', '.join(m.name for m in args.models)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
