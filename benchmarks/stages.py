"""Where the time of one colourized frame goes: the filter's stages timed inside the real graph.

    python benchmarks/stages.py [--model M] [--clip FILE] [--sizes 480p,1080p] [--frames 32]
                                [--backend torch|ort] [--device cpu|cuda] [--render-size R] [--json]

The clip goes through the filter's own graph (``vs_colorgan.filter.build``, what ``colorize`` wires) with
one VapourSynth thread, and each stage method of its :class:`vs_colorgan.pipeline.Colorizer` (docs/filter.md)
is wrapped with a clock; times are exclusive (a stage that calls another is charged only for its own work):

* ``source``          the clip alone (generated or decoded; not the filter's cost)
* ``resize``          VapourSynth resize of the luma to render size, GRAYS (the filter's ``core.resize`` node)
* ``preprocess``      render-size plane -> tensor, Y' -> L* -> L_norm (``Colorizer.preprocess``)
* ``inference``       the generator (``Colorizer.infer``)
* ``temporal``        work-grid shrink of the prediction, scene-cut test, weighted combination
                      (``predict`` minus ``infer``, ``window_length``, ``combine``)
* ``luma guide``      full-size luma -> Y' on the chroma grid (``Colorizer.luma_guide``)
* ``chroma upsample`` Lab -> Cb/Cr, guided upsampling, gamut limit (``Colorizer.chroma``); where the fused
                      CPU kernel runs (``Colorizer.finish``, vs_colorgan/chroma_kernel.py) also the luma
                      guide and the quantisation, which then read 0
* ``quantise``        Cb/Cr -> integer planes (``postprocess`` minus ``chroma``)
* ``callback glue``   the rest of the ModifyFrame callback: frame copies in and out, properties, caches
* ``graph overhead``  the rest of the frame's wall time: VapourSynth scheduling, ModifyFrame, Python entry

Glue is everything but ``source`` and ``inference``; the goal (issue 15) is glue <= 20% of inference at
480p and <= 35% at 1080p (ORT, CPU). The look-ahead thread is switched off so that the clocks measure each
stage alone (its overlap is measured by ``benchmarks/lookahead.py`` and ``benchmarks/speed.py``). With
``--device cuda`` the GPU is synchronised at each clock reading. Prints a markdown table per size on stdout
(``--json``: one JSON object). Figures to read, never asserted by tests.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import vapoursynth as vs  # noqa: E402

from common import (  # noqa: E402
    file_clip, machine, markdown_table, parse_sizes, prepare_models, run_in_workdir, synthetic_clip,
)

core = vs.core
STAGES = ("source", "resize", "preprocess", "inference", "temporal", "luma guide", "chroma upsample", "quantise",
          "callback glue", "graph overhead")
NOT_GLUE = ("source", "inference")
GOALS = {"480p": "goal ≤ 20%", "1080p": "goal ≤ 35%"}  # issue 15, ORT on the CPU
# Colorizer method -> the stage its exclusive time is charged to.
METHODS = {"preprocess": "preprocess", "infer": "inference", "predict": "temporal", "window_length": "temporal",
           "combine": "temporal", "luma_guide": "luma guide", "chroma": "chroma upsample", "postprocess": "quantise",
           "finish": "chroma upsample", "finish_cbcr": "chroma upsample", "upsample": "chroma upsample"}


class StageClock:
    """Exclusive time per stage of nested calls (a per-thread stack of running clocks)."""

    def __init__(self, sync=None) -> None:
        self.sync = sync or (lambda: None)
        self.totals: dict[str, float] = {}
        self.recording = False
        self._local = threading.local()

    def wrap(self, stage: str, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            stack = self._local.__dict__.setdefault("stack", [])
            self.sync()
            stack.append(0.0)  # time spent in nested timed calls
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.sync()
                elapsed = time.perf_counter() - t0
                nested = stack.pop()
                if stack:
                    stack[-1] += elapsed
                if self.recording:
                    self.totals[stage] = self.totals.get(stage, 0.0) + elapsed - nested
        return timed


def render_time(clip: vs.VideoNode, warmup: int, frames: int) -> float:
    """Seconds to render frames ``warmup ..`` of ``clip`` one by one (no prefetching)."""
    for n in range(warmup):
        clip.get_frame(n)
    t0 = time.perf_counter()
    for n in range(warmup, warmup + frames):
        clip.get_frame(n)
    return time.perf_counter() - t0


def profile(clip: vs.VideoNode, colorizer, *, render_size: int, warmup: int, frames: int) -> dict[str, float]:
    """Mean ms per frame of each stage over ``frames`` frames after ``warmup`` untimed ones."""
    import torch

    from vs_colorgan import filter as vsfilter
    from vs_colorgan.pipeline import render_shape

    threads = core.num_threads
    core.num_threads = 1  # one frame at a time: the clocks do not overlap
    try:
        c = colorizer
        sync = torch.cuda.synchronize if c.device.type == "cuda" else None
        clock = StageClock(sync)
        for name, stage in METHODS.items():
            if hasattr(c, name):
                setattr(c, name, clock.wrap(stage, getattr(c, name)))
        out, processor = vsfilter.build(clip, c, render_size=render_size)
        # no look-ahead: its thread would run frame n + 1's preprocess and inference while the callback of n
        # runs, so the callback's wait for them was charged to "callback glue" and both threads' stages
        # slowed each other (480p ORT: "callback glue" 42 ms of which ~40 ms was that wait). The stages are
        # timed one at a time here; what the overlap buys is benchmarks/lookahead.py's and speed.py's figure
        processor.auto.lookahead = None
        processor.process = clock.wrap("callback glue", processor.process)
        # the same source and resize nodes as the filter's, rendered alone (fresh nodes: no shared cache)
        rw, rh = render_shape(clip.width, clip.height, render_size, c.config.size_multiple)
        src_s = render_time(clip, warmup, frames)
        small = vsfilter.render_luma_clip(core.std.ShufflePlanes(clip, 0, vs.GRAY), rw, rh)
        resize_s = render_time(small, warmup, frames) - src_s
        for n in range(warmup):
            out.get_frame(n)
        clock.recording = True
        t0 = time.perf_counter()
        for n in range(warmup, warmup + frames):
            out.get_frame(n)
        wall = time.perf_counter() - t0
    finally:
        core.num_threads = threads
    ms = {k: 0.0 for k in STAGES}
    for k, v in clock.totals.items():
        ms[k] += 1000.0 * v / frames
    ms["source"] = 1000.0 * src_s / frames
    ms["resize"] = max(0.0, 1000.0 * resize_s / frames)
    inside = sum(v for k, v in ms.items() if k not in ("source", "resize", "graph overhead"))
    ms["graph overhead"] = max(0.0, 1000.0 * wall / frames - inside - ms["source"] - ms["resize"])
    return ms


def summarise(ms: dict[str, float]) -> dict:
    glue = sum(v for k, v in ms.items() if k not in NOT_GLUE)
    inference = ms["inference"]
    return {"ms": ms, "glue_ms": glue, "inference_ms": inference,
            "glue_over_inference": glue / inference if inference > 0 else None,
            "total_ms": sum(ms.values())}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="generator .safetensors (default: the bundled model)")
    ap.add_argument("--clip", type=Path, default=None, help="a real video instead of the generated clip")
    ap.add_argument("--sizes", default="480p,1080p", help="comma list of 480p/720p/1080p/2160p or WxH")
    ap.add_argument("--frames", type=int, default=32, help="timed frames per size (default 32)")
    ap.add_argument("--warmup", type=int, default=4, help="untimed frames first (default 4)")
    ap.add_argument("--backend", default="torch", choices=("torch", "ort"))
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    ap.add_argument("--render-size", type=int, default=None, help="default: the model's")
    ap.add_argument("--temporal-radius", type=int, default=None, help="default: the filter's")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    return ap


def main(argv: list[str] | None = None) -> int:
    return run_in_workdir(build_parser(), run, argv)


def run(args: argparse.Namespace, tmp: Path) -> int:
    from vs_colorgan.pipeline import ColorOptions, Colorizer

    models = prepare_models(args.model, tmp)
    model = models.safetensors or models.onnx
    cuda = args.device.startswith("cuda")
    options = ColorOptions() if args.temporal_radius is None else ColorOptions(temporal_radius=args.temporal_radius)
    colorizer = Colorizer.load(model, backend=args.backend, device=args.device, fp16=cuda and args.backend == "torch",
                               options=options)
    render_size = args.render_size or colorizer.config.render_size
    runs = []
    for label, w, h in parse_sizes(args.sizes):
        n = args.warmup + args.frames
        clip = file_clip(args.clip, w, h, n) if args.clip else synthetic_clip(w, h, n)
        print(f"stages.py: {label} ...", file=sys.stderr)
        ms = profile(clip, colorizer, render_size=render_size, warmup=args.warmup, frames=args.frames)
        runs.append({"size": label, "width": w, "height": h, **summarise(ms)})
    from vs_colorgan import chroma_kernel

    result = {"device": args.device, "backend": args.backend, "machine": machine(), "model": str(args.model or "default"),
              "fused_stage4": chroma_kernel.available() and not cuda,
              "render_size": render_size, "temporal_radius": colorizer.options.temporal_radius,
              "frames": args.frames, "runs": runs}
    if args.json:
        print(json.dumps(result))
    else:
        print(render_markdown(result))
    return 0


def render_markdown(result: dict) -> str:
    m = result["machine"]
    out = [f"Backend {result['backend']} on {result['device']} ({m.get('gpu') or m['cpu']}, {m['torch_threads']} torch "
           f"threads); model: {result['model']}; render_size {result['render_size']}; temporal_radius "
           f"{result['temporal_radius']}; {result['frames']} frames, one at a time.", ""]
    for run in result["runs"]:
        total = run["total_ms"]
        rows = [(k, f"{v:.2f}", f"{100 * v / total:.1f}%", "" if k in NOT_GLUE else "glue") for k, v in run["ms"].items()]
        rows.append(("**glue / inference**", f"{run['glue_ms']:.2f} / {run['inference_ms']:.2f}",
                     "–" if run["glue_over_inference"] is None else f"{100 * run['glue_over_inference']:.1f}%",
                     GOALS.get(run["size"], "")))
        out += [f"### {run['size']} ({run['width']}x{run['height']})\n",
                markdown_table(("stage", "ms/frame", "share", ""), rows), ""]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
