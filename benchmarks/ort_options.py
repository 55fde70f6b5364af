"""ONNX Runtime session options for the generator on the CPU, measured side by side.

    python benchmarks/ort_options.py [--model M.onnx] [--clip-size 854x480] [--runs 20] [--rounds 5] [--busy] [--json]

Each variant is a session of the bundled (or given) native ONNX model with one option changed from the
filter's (``vs_colorgan.backends.OrtRunner``: intra-op threads = usable cores - 1, ORT's default graph
optimisation and memory arena, spinning off); the variants run in alternating rounds of ``--runs`` inferences at render size and each row
gives the median of the rounds' ms per inference. ``--busy`` keeps one other core busy with numpy work
meanwhile, as the filter's glue of the previous frame does while the look-ahead infers the next. Prints the
load average beside the table. Figures to read, never asserted by tests.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def variants(ort) -> dict[str, dict]:
    """name -> settings changed from the filter's."""
    import os

    level = ort.GraphOptimizationLevel
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return {
        "filter (cores - 1 threads, ORT_ENABLE_ALL, arena, no spinning)": {"threads": max(1, cores - 1)},
        "ORT's default threads": {},
        "spinning on (ORT's default)": {"threads": max(1, cores - 1), "spin": True},
        "intra_op_num_threads=2": {"threads": 2},
        "graph optimisation: basic": {"threads": max(1, cores - 1), "level": level.ORT_ENABLE_BASIC},
        "graph optimisation: extended": {"threads": max(1, cores - 1), "level": level.ORT_ENABLE_EXTENDED},
        "no CPU memory arena": {"threads": max(1, cores - 1), "arena": False},
    }


def session(ort, path: Path, *, spin: bool = False, threads: int = 0, level=None, arena: bool = True):
    o = ort.SessionOptions()
    o.log_severity_level = 3
    o.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if threads:
        o.intra_op_num_threads = threads
    if level is not None:
        o.graph_optimization_level = level
    o.enable_cpu_mem_arena = arena
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def main(argv: list[str] | None = None) -> int:
    import onnxruntime as ort

    from vs_colorgan.model_io import DEFAULT_MODEL
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL.with_suffix(".onnx"))
    p.add_argument("--clip-size", default="854x480", help="WxH of the clip; the input is its render grid (the model's)")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--busy", action="store_true", help="keep a numpy thread busy meanwhile")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from vs_colorgan.model_io import read_config
    from vs_colorgan.pipeline import render_shape

    cfg = read_config(args.model)
    w, h = render_shape(*(int(v) for v in args.clip_size.split("x")), cfg.render_size, cfg.size_multiple)
    sessions = {name: session(ort, args.model, **kw) for name, kw in variants(ort).items()}
    name_in = next(iter(sessions.values())).get_inputs()[0].name
    x = {name_in: np.random.default_rng(0).random((1, 1, h, w), dtype=np.float32) * 2 - 1}
    stop = threading.Event()
    if args.busy:
        def busy() -> None:
            a = np.random.default_rng(1).random((540, 960), dtype=np.float32)
            while not stop.is_set():
                np.sqrt(a * a + 1.0)
        threading.Thread(target=busy, daemon=True).start()
    load = [open("/proc/loadavg").read().split()[0]]
    for s in sessions.values():
        s.run(None, x)  # warm-up
    ms: dict[str, list[float]] = {k: [] for k in sessions}
    names = list(sessions)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            t0 = time.perf_counter()
            for _ in range(args.runs):
                sessions[name].run(None, x)
            ms[name].append(1000 * (time.perf_counter() - t0) / args.runs)
    stop.set()
    load.append(open("/proc/loadavg").read().split()[0])
    med = {k: statistics.median(v) for k, v in ms.items()}
    base = med[names[0]]
    if args.json:
        print(json.dumps({"size": [w, h], "busy": args.busy, "ms": ms, "median_ms": med, "load_average": load}))
        return 0
    print(f"ORT {ort.__version__}, input {w}x{h}, {args.runs} runs x {args.rounds} alternating rounds, "
          f"{'one core kept busy' if args.busy else 'nothing else running'}; load average {load[0]} before, {load[1]} after\n")
    print("| session | ms / inference (median) | × filter's |\n|---|---:|---:|")
    for k in names:
        print(f"| {k} | {med[k]:.1f} | {med[k] / base:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
