"""Time the filter's four stages separately (the figures in docs/filter.md).

    python benchmarks/stage_timings.py                       # 854x480, untrained U-Net width 32, torch CPU
    python benchmarks/stage_timings.py --backend ort --threads 1
    python benchmarks/stage_timings.py --model run/generator.safetensors --width 1920 --height 1080

Runs the stage methods of :class:`vs_colorgan.pipeline.Colorizer` on frames of a synthetic grainy pan
(VapourSynth frames, as the filter sees them) and prints per-stage medians and minimums in ms, the glue /
inference ratio, and the whole filter's speed through VapourSynth (a command-line report, on stdout).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import vapoursynth as vs

from vs_colorgan.filter import build, render_luma_clip
from vs_colorgan.model_io import ModelConfig, save_generator
from vs_colorgan.networks import build_generator
from vs_colorgan.pipeline import Colorizer, render_shape

STAGES = ("1a zimg downscale", "1b pre-processing", "1c luma guide", "2 inference", "3 temporal", "4 chroma+write")


def synthetic_clip(width: int, height: int, frames: int) -> vs.VideoNode:
    """A YUV420P8 pan over gradients, discs and stripes, with grain: deterministic, no data files."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width + frames].astype(np.float32)
    scene = 60 + 120 * xx / (width + frames) + 30 * np.sin(yy / 23.0)
    for cx, cy, r, v in ((0.3, 0.4, 0.15, 220), (0.7, 0.6, 0.2, 40), (0.5, 0.2, 0.08, 180)):
        scene[(xx - cx * width) ** 2 + (yy - cy * height) ** 2 < (r * height) ** 2] = v
    scene[:, ::9] += 25
    pics = [np.clip(scene[:, i:i + width] + rng.normal(0, 3, (height, width)), 16, 235).astype(np.uint8)
            for i in range(frames)]
    blank = vs.core.std.BlankClip(format=vs.GRAY8, width=width, height=height, length=frames)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        np.copyto(np.asarray(out[0]), pics[n])
        return out

    return vs.core.resize.Bicubic(vs.core.std.ModifyFrame(blank, blank, fill), format=vs.YUV420P8)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help=".safetensors/.onnx to time (default: an untrained U-Net, see --model-width)")
    p.add_argument("--arch", default="unet")
    p.add_argument("--model-width", type=int, default=32)
    p.add_argument("--render-size", type=int, default=256)
    p.add_argument("--backend", default="torch", choices=("torch", "ort"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave torch's default)")
    p.add_argument("--width", type=int, default=854)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--frames", type=int, default=36)
    p.add_argument("--radius", type=int, default=3)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else Path(tmp) / "timing.safetensors"
        if not args.model:
            cfg = ModelConfig(arch=args.arch, width=args.model_width, render_size=args.render_size)
            net = build_generator(args.arch, args.model_width).eval()
            save_generator(model, net, cfg)
            if args.backend == "ort":
                from vs_colorgan.export.onnx_export import export_onnx

                export_onnx(net, cfg, model.with_suffix(".onnx"))
        c = Colorizer.load(model, backend=args.backend, device=args.device)
        src = synthetic_clip(args.width, args.height, args.frames)
        rw, rh = render_shape(args.width, args.height, args.render_size, c.config.size_multiple)
        small = render_luma_clip(vs.core.std.ShufflePlanes(src, 0, vs.GRAY), rw, rh)
        frames = [src.get_frame(n) for n in range(args.frames)]  # decoding is not the filter's cost
        times: dict[str, list[float]] = {k: [] for k in STAGES}
        lumas, preds = [], []
        with torch.inference_mode():
            for n in range(args.frames):
                t0 = time.perf_counter()
                y = np.asarray(small.get_frame(n)[0])
                t1 = time.perf_counter()
                r = c.preprocess(y)
                t2 = time.perf_counter()
                guide = c.luma_guide(np.asarray(frames[n][0]), bits=8, full_range=False, subsampling_w=1,
                                     subsampling_h=1)
                t3 = time.perf_counter()
                ab = c.predict(r)
                if c.device.type == "cuda":
                    torch.cuda.synchronize(c.device)
                t4 = time.perf_counter()
                lumas.insert(0, r)
                preds.insert(0, ab)
                del lumas[args.radius + 1:], preds[args.radius + 1:]
                blended = c.combine(preds[: c.window_length(lumas)], lumas)
                t5 = time.perf_counter()
                cb, cr = c.postprocess(r, blended, guide, matrix=6, bits=8, full_range=False)
                out = frames[n].copy()
                np.copyto(np.asarray(out[1]), cb)
                np.copyto(np.asarray(out[2]), cr)
                t6 = time.perf_counter()
                if n > args.radius:  # warm-up: caches, allocator, a full window
                    for key, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True):
                        times[key].append(1000 * dt)
        med = {k: statistics.median(v) for k, v in times.items()}
        low = {k: min(v) for k, v in times.items()}
        print(f"{args.width}x{args.height}, render {rw}x{rh}, {c.config.arch} width {c.config.width}, "
              f"{args.backend} on {args.device}, torch threads {torch.get_num_threads()}")
        for k in STAGES:
            print(f"  {k:22s} median {med[k]:8.2f} ms   min {low[k]:8.2f} ms")
        for name, d in (("median", med), ("min", low)):
            glue = sum(v for k, v in d.items() if not k.startswith("2"))
            print(f"  glue ({name}) {glue:.2f} ms = {100 * glue / d['2 inference']:.1f} % of inference")
        vs.core.num_threads = 2
        node, _ = build(synthetic_clip(args.width, args.height, args.frames), c, render_size=args.render_size)
        start = time.perf_counter()
        for n in range(args.frames):
            node.get_frame(n)
        per = (time.perf_counter() - start) / args.frames
        print(f"  whole filter, core.num_threads=2: {1000 * per:.1f} ms/frame ({1 / per:.2f} fps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
