"""Seconds from a fresh Python process to the first colourized frame: what every ``vspipe`` start, preview
reload or ``colorgan-render`` pays before the first frame, per backend, side by side.

    python benchmarks/startup.py [--model M] [--repeats 3] [--json]

Each run is a new interpreter that imports VapourSynth and vs_colorgan, calls ``colorize`` on a small blank
clip and renders frame 0 (the model load and the backend's first inference included). The table gives the
median and the range of ``--repeats`` runs per backend, and which heavy modules the process imported
(torchvision is needed only to build a network, i.e. by the torch backend). Figures to read, never asserted.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from common import machine, markdown_table

SCRIPT = """
import sys, vapoursynth as vs, vs_colorgan
clip = vs.core.std.BlankClip(format=vs.YUV420P8, width=854, height=480, length=1)
kw = {"backend": sys.argv[1]}
if len(sys.argv) > 2:
    kw["model"] = sys.argv[2]
vs_colorgan.colorize(clip, **kw).get_frame(0)
print(",".join(m for m in ("torchvision", "torch._dynamo", "kornia", "onnxruntime") if m in sys.modules))
"""


def one_start(backend: str, model: str | None) -> tuple[float, list[str]]:
    args = [sys.executable, "-c", SCRIPT, backend] + ([model] if model else [])
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"startup.py: the {backend} run failed:\n{proc.stderr[-2000:]}")
    return seconds, [m for m in proc.stdout.strip().split(",") if m]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="a .safetensors with its .onnx beside it (default: the bundled model)")
    p.add_argument("--backends", default="ort,torch", help="comma-separated, in the order they are run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    backends = args.backends.split(",")
    times: dict[str, list[float]] = {b: [] for b in backends}
    modules: dict[str, list[str]] = {}
    for _ in range(args.repeats):  # interleaved, so that a slow moment of the machine hits both
        for b in backends:
            seconds, imported = one_start(b, args.model)
            times[b].append(seconds)
            modules[b] = imported
    result = {"machine": machine(), "model": args.model or "default", "runs": [
        {"backend": b, "median_s": statistics.median(t), "min_s": min(t), "max_s": max(t), "repeats": len(t),
         "imported": modules[b]} for b, t in times.items()]}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"Start to first frame (854x480), {args.repeats} fresh processes per backend, model: {result['model']}\n")
    print(markdown_table(["backend", "median s", "range s", "heavy modules imported"],
                         [[r["backend"], f"{r['median_s']:.2f}", f"{r['min_s']:.2f}-{r['max_s']:.2f}",
                           ", ".join(r["imported"]) or "-"] for r in result["runs"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
