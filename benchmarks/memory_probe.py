"""Where does RSS go over a long render of ``vs_colorgan.colorize``? One fresh process per hypothesis.

    .venv/bin/python benchmarks/memory_probe.py [--frames 2000] [--size 160x96] [--width 8] [--modes a,b,...]

Each mode renders a ``--frames`` synthetic clip (benchmarks/common.synthetic_clip: a panning texture,
black-and-white YUV420P8) in order through ``clip.frames()`` in a child process and reads, at frames
0, 1/4, 1/2, 3/4 and the last: RSS (``/proc/self/statm``), VapourSynth's frame cache
(``core.used_cache_size``) and the filter's two prediction caches (entries). At the end, RSS after
glibc's ``malloc_trim(0)``. Modes (the hypotheses for growth):

* ``source``: the clip alone (VapourSynth + the source's own callback);
* ``default``: colorize, torch backend, defaults (what speed.py's memory run measures), with the
  filter's own ``malloc_trim(0)`` every ``vs_colorgan.filter.TRIM_EVERY`` frames (timed);
* ``notrim``: the same with that periodic trim switched off (the filter before the fix); the modes
  below all run with it off too, to test each hypothesis alone;
* ``vscache64``: the same with ``core.max_cache_size = 64`` (MB): VapourSynth's frame cache kept small;
* ``arena2``: the same with ``MALLOC_ARENA_MAX=2`` (glibc: at most two malloc arenas for all threads);
* ``trim``: the same with ``malloc_trim(0)`` every 100 frames;
* ``r0``: ``temporal_radius=0`` (no temporal window: the prediction caches hold one frame each);
* ``ort``: ``backend="ort"`` (ONNX Runtime CPU);
* ``vscache64_arena2``: both bounds together;
* ``mmap128k``: ``MALLOC_MMAP_THRESHOLD_=131072``: glibc's mmap threshold fixed at its initial 128 KiB
  (by default the first free of a large mmapped block raises it up to 32 MiB, after which the frame-sized
  tensors, ~0.4 MiB each at render size 256, come from the heap and fragment it).

Prints a markdown table on stdout. Figures are for reading (the machine is shared); nothing asserts them.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

MODES = ("source", "default", "notrim", "vscache64", "arena2", "trim", "r0", "ort", "vscache64_arena2", "mmap128k")


def child(mode: str, frames: int, width: int, height: int, model: Path) -> dict:
    import torch
    import vapoursynth as vs

    from common import rss_mib, synthetic_clip

    torch.set_num_threads(1)
    core = vs.core
    core.num_threads = 2
    if "vscache64" in mode:
        core.max_cache_size = 64
    libc = ctypes.CDLL("libc.so.6")
    clip = synthetic_clip(width, height, frames)
    processor, trim_time = None, None
    if mode == "source":
        out = clip
    else:
        from vs_colorgan.filter import build
        from vs_colorgan.backends import choose_backend, load_runner
        from vs_colorgan.pipeline import ColorOptions, Colorizer

        backend = "ort" if mode == "ort" else "torch"
        settings, path = choose_backend(model=model, backend=backend, device="cpu")
        options = ColorOptions(temporal_radius=0 if mode == "r0" else 3)
        out, processor = build(clip, Colorizer(load_runner(settings, path), options), render_size=256)
        if mode not in ("default",):
            processor.trim = None
        elif processor.trim is not None:  # time the filter's own periodic trim
            import time

            trim, spent = processor.trim, [0.0]

            def timed() -> None:
                t0 = time.perf_counter()
                trim()
                spent[0] += time.perf_counter() - t0
            processor.trim, trim_time = timed, spent
    marks = {0, frames // 4, frames // 2, 3 * frames // 4, frames - 1}
    rows = []
    for i, _ in enumerate(out.frames(close=True)):
        if mode == "trim" and i % 100 == 99:
            libc.malloc_trim(0)
        if i in marks:
            rows.append({"frame": i, "rss": round(rss_mib(), 1), "vs_cache": round(core.used_cache_size / 2**20, 1),
                         "caches": None if processor is None else (len(processor.auto.lumas), len(processor.auto.predictions))})
    libc.malloc_trim(0)
    return {"mode": mode, "rows": rows, "trimmed": round(rss_mib(), 1), "max_cache_size": core.max_cache_size,
            "filter_trims": getattr(processor, "trims", None),
            "ms_per_trim": round(1000 * trim_time[0] / max(1, processor.trims), 2) if trim_time else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--size", default="160x96")
    ap.add_argument("--width", type=int, default=8, help="unet width of the untrained test generator")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--model", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    if args.child:
        print(json.dumps(child(args.child, args.frames, w, h, args.model)))
        return 0
    import torch

    from vs_colorgan.export.onnx_export import export_onnx
    from vs_colorgan.model_io import ModelConfig, save_generator
    from vs_colorgan.networks import build_generator

    results = []
    with tempfile.TemporaryDirectory(prefix="colorgan-memprobe-") as tmp:
        torch.manual_seed(0)
        net, cfg = build_generator("unet", width=args.width).eval(), ModelConfig(arch="unet", width=args.width)
        model = Path(tmp) / "g.safetensors"
        save_generator(model, net, cfg)
        export_onnx(net, cfg, model.with_suffix(".onnx"))
        for mode in args.modes.split(","):
            env = dict(os.environ)
            if "arena2" in mode:
                env["MALLOC_ARENA_MAX"] = "2"
            if mode == "mmap128k":  # a fixed mmap threshold: no dynamic raise after the first large free
                env["MALLOC_MMAP_THRESHOLD_"] = "131072"
            print(f"memory_probe: {mode} ...", file=sys.stderr)
            res = subprocess.run([sys.executable, __file__, "--child", mode, "--frames", str(args.frames),
                                  "--size", args.size, "--model", str(model)], env=env, capture_output=True,
                                 text=True, check=False)
            if res.returncode:
                print(res.stderr[-2000:], file=sys.stderr)
                continue
            results.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), file=sys.stderr)
    marks = [r["frame"] for r in results[0]["rows"]] if results else []
    print("| mode | " + " | ".join(f"RSS@{m}" for m in marks) + " | after trim | VS cache MiB @0/end | caches (lumas, preds) @end |")
    print("|---|" + "---:|" * (len(marks) + 3))
    for r in results:
        rss = " | ".join(str(x["rss"]) for x in r["rows"])
        vs_c = f"{r['rows'][0]['vs_cache']} / {r['rows'][-1]['vs_cache']}"
        print(f"| {r['mode']} | {rss} | {r['trimmed']} | {vs_c} | {r['rows'][-1]['caches']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
