"""`make demo`: colourize the bundled black-and-white sample clip with the bundled model.

Writes OUT/sample_colorized.mp4 (H.264 through ffmpeg) and OUT/sample_contact_sheet.png
(gray | colour for a few frames), with a progress bar on stderr.

    python examples/demo.py --out out [--clip examples/sample_bw.mp4] [--model M] [--backend auto]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import vapoursynth as vs
from PIL import Image
from tqdm import tqdm

import vs_colorgan

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
    if shutil.which("ffmpeg") is None:
        sys.exit("demo: ffmpeg is needed to write the mp4 (apt-get install ffmpeg)")
    args.out.mkdir(parents=True, exist_ok=True)

    src = core.bs.VideoSource(str(args.clip))
    colour = vs_colorgan.colorize(src, model=args.model, backend=args.backend)

    mp4 = args.out / "sample_colorized.mp4"
    fps = f"{src.fps.numerator}/{src.fps.denominator}"
    ffmpeg = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-y", "-f", "yuv4mpegpipe", "-i", "-", "-c:v", "libx264", "-crf", "18",
         "-preset", "medium", "-pix_fmt", "yuv420p", "-r", fps, "-colorspace", "bt470bg",
         "-color_primaries", "bt470bg", "-color_trc", "bt709", str(mp4)],
        stdin=subprocess.PIPE,
    )
    with tqdm(total=colour.num_frames, unit="frame", desc="colorize") as bar:
        colour.output(ffmpeg.stdin, y4m=True, progress_update=lambda done, total: bar.update(done - bar.n))
    ffmpeg.stdin.close()
    if ffmpeg.wait() != 0:
        sys.exit("demo: ffmpeg failed to encode the output")

    sheet = args.out / "sample_contact_sheet.png"
    contact_sheet(src, colour, sheet)
    print(f"wrote {mp4} and {sheet}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
