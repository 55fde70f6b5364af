"""The filter with and without inference one frame ahead (vs_colorgan/lookahead.py), side by side.

    python benchmarks/lookahead.py [--model M] [--backend ort|torch] [--size 480p] [--pairs 4] [--json]

Each pair renders the same generated black-and-white clip twice in order through VapourSynth (2 threads),
once as the filter is and once with its look-ahead switched off, alternating which goes first. For each run
it prints the fps and the CPU time stolen by other guests of the machine meanwhile (``/proc/stat``, where
there is one), so that runs disturbed by a neighbour can be told apart; the summary gives medians and the
ratio. Figures to read, never asserted by tests.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys

import vapoursynth as vs

from common import parse_sizes, synthetic_clip, time_frames


def steal_ticks() -> int | None:
    try:
        with open("/proc/stat") as f:
            return int(f.readline().split()[8])
    except (OSError, IndexError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    from vs_colorgan.filter import build
    from vs_colorgan.pipeline import Colorizer

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a .safetensors (with its .onnx beside it for --backend ort); default: bundled")
    p.add_argument("--backend", default="ort", choices=("ort", "torch"))
    p.add_argument("--size", default="480p", help="one size, as benchmarks/speed.py --sizes takes it")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    (label, width, height), = parse_sizes(args.size)
    vs.core.num_threads = 2
    colorizer = Colorizer.load(args.model, backend=args.backend)
    runs: list[dict] = []
    for pair in range(args.pairs):
        for ahead in ((True, False) if pair % 2 == 0 else (False, True)):
            clip = synthetic_clip(width, height, args.warmup + args.frames, seed=pair)
            node, processor = build(clip, colorizer, render_size=colorizer.config.render_size)
            if not ahead:
                processor.auto.lookahead = None
            before = steal_ticks()
            fps = 1 / time_frames(node, warmup=args.warmup, frames=args.frames)
            after = steal_ticks()
            runs.append({"pair": pair, "lookahead": ahead, "fps": fps,
                         "steal_ticks": None if before is None or after is None else after - before})
            if not args.json:
                print(f"  pair {pair}: {'with' if ahead else 'without'} look-ahead {fps:6.2f} fps, "
                      f"steal {runs[-1]['steal_ticks']}", file=sys.stderr)
    med = {a: statistics.median(r["fps"] for r in runs if r["lookahead"] == a) for a in (True, False)}
    result = {"size": label, "backend": args.backend, "frames": args.frames, "runs": runs,
              "median_fps": {"with": med[True], "without": med[False]}, "ratio": med[True] / med[False]}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{label} {args.backend}: without look-ahead {med[False]:.2f} fps, with {med[True]:.2f} fps "
              f"(x{result['ratio']:.2f}), medians of {args.pairs} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
