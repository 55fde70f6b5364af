"""Speed of vs_colorgan.colorize beside vs-mlrt's ``core.ort.Model``, a render-size sweep, and memory over a long render.

    python benchmarks/speed.py [--model M] [--clip FILE] [--sizes 480p,1080p] [--frames 48] [--rounds 3]
                               [--pipelines NAME,...] [--render-sizes 128,256,384,512] [--memory-frames 2000]
                               [--device cpu|cuda] [--json]

    # issue 15's table: colorize (ORT) against the vs-mlrt script on the same model, one run
    python benchmarks/speed.py --pipelines "colorize ort r=0,colorize ort,vs-mlrt ort.Model" \
        --render-sizes "" --memory-frames 0 --rounds 5

Pipelines, each on the same clip and the same generator:

* ``colorize torch`` / ``colorize ort``: the filter with ``backend="torch"`` / ``"ort"`` and its default
  temporal smoothing; ``... r=0`` the same with ``temporal_radius=0`` (per-frame colour).
* ``vs-mlrt ort.Model``: what a vs-mlrt user would script with our ``--target vsmlrt`` export: the luma
  resized to the render size in VapourSynth, ``core.ort.Model`` there (GRAYS -> RGBS), its colour made
  YUV at the render size and resized to the clip's format, and the source luma kept (``ShufflePlanes``).
  Per-frame colour, bicubic chroma upsampling; the reference of the ``x ref`` column.
* ``vs-mlrt full-res graph``: the same export fed the full-resolution luma, so the graph's own resize,
  Lab conversion and upsampling run at the clip's size (what the README compared against before).

The reference of the ``x ref`` column is ``vs-mlrt ort.Model`` when it runs, else the first pipeline
(the table says which). Frames are rendered in order through VapourSynth (``clip.frames()``, which
prefetches ``core.num_threads`` frames), after a few untimed warm-up frames; the clip is a generated
black-and-white one with moving content (``--clip`` for a real file). ``source`` is the clip alone.
The pipelines run in ``--rounds`` alternating rounds (each round a rotated order), so that a neighbour's
load on a shared machine falls on all of them alike; each row gives the median fps of its rounds, and
each size the load average (``/proc/loadavg``, 1 min) before and after its rounds.

Memory: RSS at the start, middle and end of a ``--memory-frames`` render of ``colorize torch`` at the
first size, plus the peak, and the end again after glibc's ``malloc_trim(0)``: a flat line shows that
caches are bounded; growth that the trim gives back is the allocator keeping freed memory, not a leak
(the filter itself trims every ``vs_colorgan.filter.TRIM_EVERY`` frames), and VapourSynth's own frame
cache (``core.used_cache_size``, bounded by ``core.max_cache_size``) at the end, reported apart. With ``--device cuda``: the
torch backend in fp16, ORT's CUDA provider, vs-mlrt's CUDA provider in fp16.

Prints markdown tables on stdout (``--json``: one JSON object instead). Timings are figures to read,
never asserted by tests.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import vapoursynth as vs  # noqa: E402

from common import (  # noqa: E402
    ModelFiles, file_clip, machine, markdown_table, parse_sizes, peak_rss_mib, prepare_models, rss_mib,
    run_in_workdir, trimmed_rss_mib,
    synthetic_clip, time_frames,
)

core = vs.core
VSMLRT = "vs-mlrt ort.Model"
VSMLRT_FULL = "vs-mlrt full-res graph"


@dataclass
class Pipeline:
    name: str
    build: Callable[[vs.VideoNode], vs.VideoNode]


def _clip_matrix(clip: vs.VideoNode) -> int:
    matrix = clip.get_frame(0).props.get("_Matrix", 1)
    return matrix if matrix not in (0, 2) else 1


def vsmlrt_pipeline(clip: vs.VideoNode, network: Path, *, cuda: bool) -> vs.VideoNode:
    """Full-resolution luma -> GRAYS in [0, 1] -> core.ort.Model (the vsmlrt export) -> RGBS -> the clip's format."""
    y = core.std.ShufflePlanes(clip, 0, vs.GRAY).resize.Point(format=vs.GRAYS)
    kw = {"provider": "CUDA", "fp16": 1} if cuda else {"provider": "CPU"}
    rgb = core.std.SetFrameProps(core.ort.Model(y, network_path=str(network), **kw), _Matrix=0)
    return rgb.resize.Bicubic(format=clip.format.id, matrix=_clip_matrix(clip))


def vsmlrt_user_pipeline(clip: vs.VideoNode, network: Path, *, render_size: int, multiple: int,
                         cuda: bool) -> vs.VideoNode:
    """What a vs-mlrt user writes: the network at the render size, its chroma enlarged, the source luma kept.

        small = core.resize.Bicubic(luma, rw, rh, format=vs.GRAYS)
        rgb = core.ort.Model(small, network_path="colour_vsmlrt.onnx")
        uv = rgb.resize.Bicubic(format=vs.YUV444PS, matrix=m).resize.Bicubic(w, h, format=clip.format)
        out = core.std.ShufflePlanes([clip, uv], [0, 1, 2], vs.YUV)
    """
    from vs_colorgan.pipeline import render_shape

    rw, rh = render_shape(clip.width, clip.height, render_size, multiple)  # the filter's render grid
    y = core.std.ShufflePlanes(clip, 0, vs.GRAY)
    small = y.resize.Bicubic(rw, rh, format=vs.GRAYS)
    kw = {"provider": "CUDA", "fp16": 1} if cuda else {"provider": "CPU"}
    rgb = core.std.SetFrameProps(core.ort.Model(small, network_path=str(network), **kw), _Matrix=0)
    yuv = rgb.resize.Bicubic(format=vs.YUV444PS, matrix=_clip_matrix(clip))
    uv = yuv.resize.Bicubic(clip.width, clip.height, format=clip.format.id)
    return core.std.ShufflePlanes([clip, uv], [0, 1, 2], vs.YUV)


def pipelines(models: ModelFiles, *, device: str) -> tuple[list[Pipeline], dict[str, str]]:
    """The pipelines that can run here, and for the others why not."""
    import vs_colorgan

    cuda = device.startswith("cuda")
    ok: list[Pipeline] = []
    missing: dict[str, str] = {}
    backends = []
    if models.safetensors is not None:
        backends.append(("torch", {"backend": "torch", "device": device, "fp16": cuda}))
    else:
        missing["colorize torch"] = models.note
    if models.onnx is not None:
        backends.append(("ort", {"backend": "ort", "device": device}))
    model = models.safetensors or models.onnx
    for name, opts in backends:
        for label, extra in ((f"colorize {name}", {}), (f"colorize {name} r=0", {"temporal_radius": 0})):
            def build(clip, opts=opts, extra=extra):
                return vs_colorgan.colorize(clip, model=model, **opts, **extra)
            ok.append(Pipeline(label, build))
    if models.vsmlrt is None:
        missing[VSMLRT] = missing[VSMLRT_FULL] = models.note or "no vs-mlrt export"
    elif not hasattr(core, "ort"):
        missing[VSMLRT] = missing[VSMLRT_FULL] = "vs-mlrt's ORT plugin is not installed (pip install vapoursynth-mlrt-ort)"
    else:
        from vs_colorgan.model_io import read_config

        cfg = read_config(models.vsmlrt)  # the render size the export runs at, and the size multiple
        ok.append(Pipeline(VSMLRT, lambda clip: vsmlrt_user_pipeline(
            clip, models.vsmlrt, render_size=cfg.render_size, multiple=cfg.size_multiple, cuda=cuda)))
        ok.append(Pipeline(VSMLRT_FULL, lambda clip: vsmlrt_pipeline(clip, models.vsmlrt, cuda=cuda)))
    return ok, missing


def run_one(pipe: Pipeline, clip: vs.VideoNode, *, warmup: int, frames: int) -> dict:
    try:
        out = pipe.build(clip)
        spf = time_frames(out, warmup=warmup, frames=frames)
    except (vs.Error, RuntimeError, ValueError) as e:
        return {"pipeline": pipe.name, "fps": None, "ms_per_frame": None, "error": str(e).splitlines()[0][:200]}
    return {"pipeline": pipe.name, "fps": 1.0 / spf, "ms_per_frame": 1000.0 * spf}


def memory_run(build: Callable[[vs.VideoNode], vs.VideoNode], clip: vs.VideoNode) -> dict:
    """RSS at the first frame, the middle and the end of rendering all of ``clip`` through ``build``."""
    out = build(clip)
    n = out.num_frames
    marks = {0: "start", n // 2: "middle", n - 1: "end"}
    readings = {}
    t0 = time.perf_counter()
    for i, _ in enumerate(out.frames(close=True)):
        if i in marks:
            readings[marks[i]] = round(rss_mib(), 1)
    readings["peak"] = round(peak_rss_mib(), 1)
    vs_cache = round(core.used_cache_size / 2**20, 1)  # VapourSynth's frame cache (part of the RSS), at the end
    trimmed = trimmed_rss_mib()
    readings["end_trimmed"] = None if trimmed is None else round(trimmed, 1)
    return {"frames": n, "rss_mib": readings, "vs_cache_mib": vs_cache, "seconds": round(time.perf_counter() - t0, 1)}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="generator .safetensors (default: the bundled model)")
    ap.add_argument("--vsmlrt-model", type=Path, default=None, help="vs-mlrt export (default: exported from --model)")
    ap.add_argument("--clip", type=Path, default=None, help="a real video instead of the generated clip")
    ap.add_argument("--sizes", default="480p,1080p", help="comma list of 480p/720p/1080p/2160p or WxH (default 480p,1080p)")
    ap.add_argument("--frames", type=int, default=48, help="timed frames per pipeline and size (default 48)")
    ap.add_argument("--warmup", type=int, default=4, help="untimed frames first (default 4)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per size; rows are medians (default 3)")
    ap.add_argument("--pipelines", default="", help="comma list of pipeline names to run (default: all)")
    ap.add_argument("--render-sizes", default="128,256,384,512", help="render-size sweep ('' to skip)")
    ap.add_argument("--sweep-size", default=None, help="clip size of the sweep (default: the first of --sizes)")
    ap.add_argument("--memory-frames", type=int, default=2000, help="frames of the memory run (0 to skip; default 2000)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    ap.add_argument("--threads", type=int, default=None, help="VapourSynth threads (default: the core's)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    return ap


def main(argv: list[str] | None = None) -> int:
    return run_in_workdir(build_parser(), run, argv)


def run(args: argparse.Namespace, tmp: Path) -> int:
    if args.threads:
        core.num_threads = args.threads
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("speed.py: --device cuda but torch sees no CUDA GPU", file=sys.stderr)
            return 2
    sizes = parse_sizes(args.sizes)
    models = prepare_models(args.model, tmp, vsmlrt=args.vsmlrt_model, fp16_vsmlrt=False)
    pipes, missing = pipelines(models, device=args.device)
    length = args.warmup + args.frames

    def make_clip(w: int, h: int, n: int) -> vs.VideoNode:
        return file_clip(args.clip, w, h, n) if args.clip else synthetic_clip(w, h, n)

    # Memory first, while this process has loaded nothing else: the readings are the pipeline's own.
    torch_pipe = next((p for p in pipes if p.name == "colorize torch"), None)
    memory = None
    if args.memory_frames > 0 and torch_pipe is not None:
        label, w, h = sizes[0]
        print(f"speed.py: memory run, {args.memory_frames} frames at {label} ...", file=sys.stderr)
        memory = {"size": label, "pipeline": torch_pipe.name,
                  **memory_run(torch_pipe.build, make_clip(w, h, args.memory_frames))}

    if args.pipelines:
        wanted = [n.strip() for n in args.pipelines.split(",") if n.strip()]
        pipes = [p for p in pipes if p.name in wanted]
        missing = {k: v for k, v in missing.items() if k in wanted}
    runs = []
    for label, w, h in sizes:
        clip = make_clip(w, h, length)
        load_before = load_average()
        src_spf = time_frames(clip, warmup=args.warmup, frames=args.frames)
        rounds: dict[str, list[dict]] = {p.name: [] for p in pipes}
        for r in range(args.rounds):
            k = r % len(pipes) if pipes else 0
            for pipe in pipes[k:] + pipes[:k]:  # rotated: each pipeline first in some round
                print(f"speed.py: {label} round {r + 1}/{args.rounds} {pipe.name} ...", file=sys.stderr)
                rounds[pipe.name].append(run_one(pipe, clip, warmup=args.warmup, frames=args.frames))
        rows = [{"pipeline": "source", "fps": 1 / src_spf, "ms_per_frame": 1000 * src_spf}]
        for pipe in pipes:
            ok = [x["fps"] for x in rounds[pipe.name] if x["fps"]]
            if not ok:
                rows.append(rounds[pipe.name][0])
                continue
            fps = statistics.median(ok)
            rows.append({"pipeline": pipe.name, "fps": fps, "ms_per_frame": 1000.0 / fps,
                         "fps_rounds": [round(v, 2) for v in ok]})
        for name, why in missing.items():
            rows.append({"pipeline": name, "fps": None, "ms_per_frame": None, "error": f"not available: {why}"})
        ref = next((r for r in rows if r["pipeline"] == VSMLRT and r["fps"]), None) \
            or next((r for r in rows if r["pipeline"] != "source" and r["fps"]), None)
        for r in rows:
            r["ratio"] = r["fps"] / ref["fps"] if ref and r["fps"] and r["pipeline"] != "source" else None
        runs.append({"size": label, "width": w, "height": h, "reference": ref["pipeline"] if ref else None,
                     "rows": rows, "load_average": [load_before, load_average()]})

    sweep = []
    render_sizes = [int(v) for v in args.render_sizes.split(",") if v.strip()]
    if render_sizes and torch_pipe is not None:
        import vs_colorgan

        label, w, h = parse_sizes(args.sweep_size)[0] if args.sweep_size else sizes[0]
        clip = make_clip(w, h, length)
        for rs in render_sizes:
            print(f"speed.py: sweep {label} render_size={rs} ...", file=sys.stderr)
            pipe = Pipeline(f"render_size={rs}", lambda c, rs=rs: vs_colorgan.colorize(
                c, model=models.safetensors, backend="torch", device=args.device,
                fp16=args.device.startswith("cuda"), render_size=rs))
            sweep.append({"size": label, "render_size": rs, **run_one(pipe, clip, warmup=args.warmup, frames=args.frames)})

    result = {
        "device": args.device, "machine": machine(), "model": str(args.model or "default"),
        "clip": str(args.clip) if args.clip else "generated (moving texture, black-and-white YUV420P8)",
        "frames": args.frames, "warmup": args.warmup, "runs": runs, "render_size_sweep": sweep, "memory": memory,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(render_markdown(result))
    return 0


def load_average() -> float | None:
    """The 1-minute load average (Linux), printed beside the figures: on a shared machine it says how much
    of them is the neighbours'."""
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _f(x: float | None, fmt: str) -> str:
    return "–" if x is None else fmt.format(x)


def render_markdown(result: dict) -> str:
    m = result["machine"]
    out = [f"Device: {result['device']} ({m.get('gpu') or m['cpu']}, {m['cpu_count']} CPUs, "
           f"{m['vs_threads']} VapourSynth threads, {m['torch_threads']} torch threads); model: {result['model']}; "
           f"clip: {result['clip']}; {result['frames']} timed frames after {result['warmup']} warm-up.", ""]
    for run in result["runs"]:
        la = run.get("load_average") or [None, None]
        out.append(f"### {run['size']} ({run['width']}x{run['height']}), reference: {run['reference'] or 'none'}; "
                   f"load average {_f(la[0], '{:.2f}')} before, {_f(la[1], '{:.2f}')} after\n")
        rows = [(r["pipeline"], _f(r["fps"], "{:.2f}"), _f(r["ms_per_frame"], "{:.1f}"), _f(r.get("ratio"), "{:.2f}"),
                 r.get("error") or " ".join(map(str, r.get("fps_rounds", [])))) for r in run["rows"]]
        out += [markdown_table(("pipeline", "fps (median)", "ms/frame", "× ref", "rounds (fps) / note"), rows), ""]
    if result["render_size_sweep"]:
        out.append(f"### render-size sweep (colorize torch, {result['render_size_sweep'][0]['size']})\n")
        rows = [(r["render_size"], _f(r["fps"], "{:.2f}"), _f(r["ms_per_frame"], "{:.1f}"), r.get("error", ""))
                for r in result["render_size_sweep"]]
        out += [markdown_table(("render_size", "fps", "ms/frame", "note"), rows), ""]
    mem = result["memory"]
    if mem:
        out.append(f"### memory: {mem['pipeline']}, {mem['frames']} frames at {mem['size']} ({mem['seconds']} s)\n")
        r = mem["rss_mib"]
        out += [markdown_table(("RSS MiB at start", "middle", "end", "peak", "end after malloc_trim",
                                "of which VapourSynth's frame cache"),
                               [(r.get("start"), r.get("middle"), r.get("end"), r.get("peak"),
                                 _f(r.get("end_trimmed"), "{}"), _f(mem.get("vs_cache_mib"), "{}"))]), ""]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
