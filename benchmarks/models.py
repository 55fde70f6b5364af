"""Frames per second of two generator files through the filter, side by side in one run.

    .venv/bin/python benchmarks/models.py --models OLD.safetensors NEW.safetensors [--sizes 480p,1080p]

Issue 8 asks that a new default model (another render size, a confidence head) renders at least as fast
as the one it replaces. Each model runs through ``vs_colorgan.colorize`` with its own defaults (its own
render size) on the same generated black-and-white clip, torch and ORT backends (ORT when a ``.onnx``
lies next to the ``.safetensors``), rounds alternating between the models so that a change in the
machine's load hits both; the table gives the median fps of the rounds and the ratio to the first model.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import vapoursynth as vs

import vs_colorgan
from vs_colorgan.model_io import read_config
from common import markdown_table, parse_sizes, synthetic_clip, time_frames

core = vs.core


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", type=Path, required=True, help="generator .safetensors files")
    p.add_argument("--sizes", default="480p")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    rows = []
    for label, w, h in parse_sizes(args.sizes):
        clip = synthetic_clip(w, h, args.warmup + args.frames)
        for backend in ("torch", "ort"):
            fps: dict[Path, list[float]] = {m: [] for m in args.models}
            runnable = [m for m in args.models if backend == "torch" or m.with_suffix(".onnx").is_file()]
            if not runnable:
                continue
            for _ in range(args.rounds):
                for m in runnable:
                    out = vs_colorgan.colorize(clip, model=str(m), backend=backend)
                    fps[m].append(1.0 / time_frames(out, warmup=args.warmup, frames=args.frames))
            base = statistics.median(fps[runnable[0]])
            for m in runnable:
                med = statistics.median(fps[m])
                rs = read_config(m).render_size
                rows.append((label, backend, m.name, rs, f"{med:.1f}", f"{med / base:.2f}"))
    print(markdown_table(("size", "backend", "model", "render size", "fps (median)", "x first"), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
