"""Where the time of one colourized frame goes: the filter's stages timed one by one.

    python benchmarks/stages.py [--model M] [--clip FILE] [--sizes 480p,1080p] [--frames 32]
                                [--backend torch|ort] [--device cpu|cuda] [--render-size R] [--json]

Runs the per-frame sequence of ``vs_colorgan.filter.FrameProcessor.process`` on one thread, frame after
frame, with the filter's own stage functions (:class:`vs_colorgan.pipeline.Colorizer`, docs/filter.md)
and a clock around each:

* ``source``          the clip's frame n (generated or decoded; not the filter's cost)
* ``resize``          VapourSynth resize of the luma to render size, GRAYS (``core.resize.Bicubic``)
* ``vs->array``       render-size plane into a torch tensor (``Colorizer.preprocess`` minus the L* maths)
* ``preprocess``      Y' -> L* -> L_norm
* ``inference``       the generator (``Colorizer.infer``)
* ``temporal``        scene-cut test and weighted combination over the window (``window_length`` + ``combine``)
* ``luma guide``      full-size luma -> Y' on the chroma grid (``Colorizer.luma_guide``)
* ``chroma upsample`` Lab -> Cb/Cr at render size, guided upsampling, gamut limit (``Colorizer.chroma``)
* ``quantise``        Cb/Cr -> integer planes (``formats.quantize_chroma``)
* ``array->vs``       new frame sharing the luma, chroma planes copied in

Glue is everything but ``source`` and ``inference``; the goal is glue <= 10% of inference. With
``--device cuda`` the GPU is synchronised after each stage so that the clock sees its work. Prints a
markdown table per size on stdout (``--json``: one JSON object). Figures to read, never asserted.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import vapoursynth as vs  # noqa: E402

from common import file_clip, machine, markdown_table, parse_sizes, prepare_models, synthetic_clip  # noqa: E402

core = vs.core
STAGES = ("source", "resize", "vs->array", "preprocess", "inference", "temporal", "luma guide", "chroma upsample",
          "quantise", "array->vs")
NOT_GLUE = ("source", "inference")


class Clock:
    """Accumulates seconds per stage; ``sync`` is called before each reading (CUDA)."""

    def __init__(self, sync=None) -> None:
        self.sync = sync or (lambda: None)
        self.totals = dict.fromkeys(STAGES, 0.0)
        self.t = time.perf_counter()
        self.recording = True

    def start(self) -> None:
        self.sync()
        self.t = time.perf_counter()

    def lap(self, stage: str) -> None:
        self.sync()
        now = time.perf_counter()
        if self.recording:
            self.totals[stage] += now - self.t
        self.t = now


def profile(clip: vs.VideoNode, colorizer, *, render_size: int, warmup: int, frames: int) -> dict[str, float]:
    """Mean ms per frame of each stage over ``frames`` frames after ``warmup`` untimed ones."""
    import torch

    from vs_colorgan.formats import quantize_chroma, resolve_colorimetry
    from vs_colorgan.pipeline import render_shape

    c = colorizer
    rw, rh = render_shape(clip.width, clip.height, render_size, c.config.size_multiple)
    luma = core.std.ShufflePlanes(clip, 0, vs.GRAY)
    small = core.resize.Bicubic(luma, rw, rh, format=vs.GRAYS)
    fmt = clip.format
    radius = c.options.temporal_radius
    window: deque = deque(maxlen=radius + 1)  # (RenderLuma, ab_norm) of frames n, n-1, ... newest first
    sync = torch.cuda.synchronize if c.device.type == "cuda" else None
    clock = Clock(sync)
    with torch.inference_mode():
        for n in range(warmup + frames):
            clock.recording = n >= warmup
            clock.start()
            frame = clip.get_frame(n)
            clock.lap("source")
            sf = small.get_frame(n)
            clock.lap("resize")
            y = torch.from_numpy(np.array(sf[0], dtype=np.float32, copy=True)).to(c.device)
            clock.lap("vs->array")
            r = c.preprocess(y)
            clock.lap("preprocess")
            ab_n = c.infer(r.l_norm)
            clock.lap("inference")
            window.appendleft((r, ab_n))
            l_window = [w[0].l_norm for w in window]
            length = c.window_length(l_window)
            ab = c.combine([w[1] for w in list(window)[:length]], l_window)
            clock.lap("temporal")
            cm = resolve_colorimetry(frame.props, width=clip.width, height=clip.height, is_float=False,
                                     fallback_matrix=None)
            guide = c.luma_guide(np.asarray(frame[0]), bits=fmt.bits_per_sample, full_range=cm.full_range,
                                 subsampling_w=fmt.subsampling_w, subsampling_h=fmt.subsampling_h,
                                 chroma_location=int(frame.props.get("_ChromaLocation", 0)))
            clock.lap("luma guide")
            cbcr = c.chroma(r, ab, guide, matrix=cm.matrix)
            clock.lap("chroma upsample")
            cb, cr = (quantize_chroma(cbcr[0, i], bits=fmt.bits_per_sample, full_range=cm.full_range, is_float=False)
                      for i in (0, 1))
            clock.lap("quantise")
            out = frame.copy()
            np.copyto(np.asarray(out[1]), cb)
            np.copyto(np.asarray(out[2]), cr)
            out.props.update(cm.output_props())
            del out
            clock.lap("array->vs")
    return {k: 1000.0 * v / frames for k, v in clock.totals.items()}


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
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="colorgan-bench-") as tmp:
        return run(args, Path(tmp))


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
    result = {"device": args.device, "backend": args.backend, "machine": machine(), "model": str(args.model or "default"),
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
                     "goal ≤ 10%"))
        out += [f"### {run['size']} ({run['width']}x{run['height']})\n",
                markdown_table(("stage", "ms/frame", "share", ""), rows), ""]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
