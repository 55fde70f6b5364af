"""`make demo`: colourize the bundled black-and-white sample clip with the bundled model.

Writes OUT/sample_colorized.mp4 (H.264, through colorgan-render: PyAV, no system ffmpeg) and
OUT/sample_contact_sheet.png (gray | colour for a few frames), with a progress bar on stderr.

    python examples/demo.py --out out [--clip examples/sample_bw.mp4] [--model M] [--backend auto]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import vapoursynth as vs
from PIL import Image

import vs_colorgan
from vs_colorgan import render

HERE = Path(__file__).resolve().parent
core = vs.core


def to_rgb24_array(clip: vs.VideoNode, n: int) -> np.ndarray:
    """Frame n of ``clip`` as an (H, W, 3) uint8 array (BT.601 matrix for the gray SD source)."""
    rgb = clip.resize.Bicubic(format=vs.RGB24, matrix_in_s="170m" if clip.format.color_family != vs.RGB else None)
    f = rgb.get_frame(n)
    return np.dstack([np.asarray(f[p]) for p in range(3)])


def contact_sheet(gray: vs.VideoNode, colour: vs.VideoNode, path: Path, count: int = 4) -> None:
    picks = np.linspace(0, gray.num_frames - 1, count).round().astype(int)
    rows = [np.hstack([to_rgb24_array(gray, int(n)), to_rgb24_array(colour, int(n))]) for n in picks]
    sheet = Image.fromarray(np.vstack(rows))
    sheet.thumbnail((1600, 1600 * len(rows)))
    sheet.save(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=HERE / "sample_bw.mp4")
    ap.add_argument("--out", type=Path, default=Path("out"))
    ap.add_argument("--model", type=Path, default=None, help="default: the bundled model")
    ap.add_argument("--backend", default="auto", choices=("auto", "torch", "ort"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    mp4 = args.out / "sample_colorized.mp4"
    argv = [str(args.clip), str(mp4), "--backend", args.backend]
    if args.model is not None:
        argv += ["--model", str(args.model)]
    if render.main(argv) != 0:
        sys.exit("demo: colorgan-render failed (see above)")

    src = core.bs.VideoSource(str(args.clip))
    colour = vs_colorgan.colorize(src, model=args.model, backend=args.backend)
    sheet = args.out / "sample_contact_sheet.png"
    contact_sheet(src, colour, sheet)
    print(f"wrote {mp4} and {sheet}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
