"""``colorgan-eval``: colourize colour footage made gray and measure the result.

    colorgan-eval VIDEO_OR_IMAGE_FOLDER [--model M] [--frames N] [--json] [--out DIR]

The ground truth is opened through VapourSynth (BestSource for a video; an image folder becomes a
clip of images cropped to one size), its chroma is set to neutral, and the gray clip is colourized
by ``vs_colorgan.colorize`` twice: with the filter's defaults ("ours") and with
``temporal_radius=0`` ("per_frame"). Those two, a gray baseline (zero chroma) and the ground truth
itself are scored with :mod:`evaluate.metrics`. Prints a markdown table (or, with ``--json``, one
JSON object) on stdout and writes into ``--out``: ``contact_sheet.png`` (gray | ours | ground
truth), ``flicker.png`` (per-frame colourfulness and chroma change) and ``metrics.json`` (the
summary plus the per-frame series). Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import vapoursynth as vs
from tqdm import tqdm

from . import metrics, report
from .scoring import SequenceScorer, finite_or_none
from .source import Source, frame_array, gray_input, luma8, open_source, rgb24

VARIANTS = ("ours", "per_frame", "gray", "reference")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must look like 320x240, not {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"--size must be at least 16x16, not {text!r}")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="colorgan-eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("source", type=Path, help="colour video file, or a folder of images (frames in name order)")
    ap.add_argument("--model", type=Path, default=None, help="generator .safetensors or .onnx (default: the bundled model)")
    ap.add_argument("--frames", type=int, default=None, help="evaluate the first N frames only (default: all)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of the table")
    ap.add_argument("--out", type=Path, default=Path("out/eval"), help="folder for contact_sheet.png, flicker.png, metrics.json")
    ap.add_argument("--backend", default=None, choices=("auto", "torch", "ort"), help="filter backend (default: the filter's)")
    ap.add_argument("--device", default=None, help="filter device, e.g. cpu or cuda (default: the filter's)")
    ap.add_argument("--render-size", type=int, default=None, help="filter render size (default: the model's)")
    ap.add_argument("--size", type=_size, default=None, help="WxH: resize the ground truth (image folders: default the first image's size)")
    ap.add_argument("--sheet-frames", type=int, default=4, help="rows of the contact sheet (default 4)")
    return ap


def colorize_variants(gray: vs.VideoNode, args: argparse.Namespace) -> tuple[vs.VideoNode, vs.VideoNode]:
    """The filter's output with its defaults and with ``temporal_radius=0``; only the options given
    on the command line are passed, so the filter's own defaults are what is measured."""
    import vs_colorgan

    opts: dict = {"model": args.model}
    if args.backend is not None:
        opts["backend"] = args.backend
    if args.device is not None:
        opts["device"] = args.device
    if args.render_size is not None:
        opts["render_size"] = args.render_size
    return vs_colorgan.colorize(gray, **opts), vs_colorgan.colorize(gray, temporal_radius=0, **opts)


def evaluate(src: Source, ours: vs.VideoNode, per_frame: vs.VideoNode, gray: vs.VideoNode, *, sheet_frames: int = 4,
             progress: bool = True) -> tuple[dict[str, SequenceScorer], list[tuple[int, list[np.ndarray]]], float | None]:
    """Score every variant frame by frame. Returns the scorers, the contact-sheet rows
    (frame number, [gray, ours, truth]) and the mean fraction of pixels the warp-error mask keeps."""
    n = src.clip.num_frames
    for name, clip in (("ours", ours), ("per_frame", per_frame)):
        if (clip.width, clip.height, clip.num_frames) != (src.clip.width, src.clip.height, n):
            raise vs.Error(
                f"colorgan-eval: the filter's {name} output is {clip.width}x{clip.height}, {clip.num_frames} frames; "
                f"expected {src.clip.width}x{src.clip.height}, {n} frames like its input"
            )
    clips = {
        "truth": rgb24(src.clip, src.matrix),
        "ours": rgb24(ours, src.matrix),
        "per_frame": rgb24(per_frame, src.matrix),
        "gray": rgb24(gray, src.matrix),
        "luma": luma8(gray),
    }
    scorers = {name: SequenceScorer(is_reference=name == "reference") for name in VARIANTS}
    picks = set(np.linspace(0, n - 1, min(sheet_frames, n)).round().astype(int).tolist()) if sheet_frames > 0 else set()
    sheet: list[tuple[int, list[np.ndarray]]] = []
    valid: list[float] = []
    prev_luma = None
    streams = [clip.frames(close=True) for clip in clips.values()]
    with tqdm(total=n, unit="frame", desc="colorgan-eval", disable=not progress, file=sys.stderr) as bar:
        for i, frames in enumerate(zip(*streams, strict=True)):
            arr = {name: frame_array(f) for name, f in zip(clips, frames, strict=True)}
            pair = None
            if prev_luma is not None:
                pair = metrics.flow_pair(prev_luma, arr["luma"])
                valid.append(pair.valid_fraction)
            prev_luma = arr["luma"]
            truth = arr["truth"]
            for name, scorer in scorers.items():
                scorer.add(truth if name == "reference" else arr[name], truth, pair)
            if i in picks:
                sheet.append((i, [arr["gray"], arr["ours"], truth]))
            bar.update(1)
    return scorers, sheet, (float(np.mean(valid)) if valid else None)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    try:
        src = open_source(args.source, frames=args.frames, size=args.size)
        gray = gray_input(src)
        ours, per_frame = colorize_variants(gray, args)
        scorers, sheet, valid = evaluate(src, ours, per_frame, gray, sheet_frames=args.sheet_frames)
    except (vs.Error, ValueError, OSError) as e:
        print(f"colorgan-eval: {e}", file=sys.stderr)
        return 2
    ref_cf = scorers["reference"].summary(None)["colorfulness"]
    results = {name: s.summary(ref_cf) for name, s in scorers.items()}
    out = {
        "frames": src.clip.num_frames,
        "size": [src.clip.width, src.clip.height],
        "source": str(args.source),
        "model": str(args.model) if args.model else "default",
        "warp_mask_valid_fraction": valid,
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    series = {
        name: {"psnr": [finite_or_none(v) for v in s.psnr], "ssim": s.ssim, "colorfulness": s.colorfulness,
               "chroma_change": s.chroma_change, "warp_error": s.warp_error}
        for name, s in scorers.items()
    }
    (args.out / "metrics.json").write_text(json.dumps({**out, "per_frame_series": series}, indent=1))
    if sheet:
        report.contact_sheet(sheet, args.out / "contact_sheet.png", titles=("gray input", "ours", "ground truth"))
    report.flicker_plot(scorers, args.out / "flicker.png", title=f"{args.source.name}: {src.clip.num_frames} frames")
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{args.source} - {src.clip.num_frames} frames, {src.clip.width}x{src.clip.height}, model: {out['model']}\n")
        print(report.markdown_table(results))
        print(
            "\nCDC and warp error reward flat, desaturated output (the gray baseline is near-perfect on them): "
            "read them beside colourfulness."
        )
        if valid is not None:
            print(f"Warp error: DIS flow on the gray input; Lai et al.'s mask kept {100 * valid:.1f}% of pixels.")
    print(f"colorgan-eval: {time.perf_counter() - t0:.1f} s; wrote {args.out}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
