"""Speed of ``colorgan-render --workers N`` (a local Ray cluster) beside the plain single render, and Ray's cost per chunk.

    python benchmarks/cluster.py [--model M] [--clip FILE] [--size 480x270] [--frames 240] [--workers 1,2]
                                 [--chunk-frames K] [--json]

Renders one clip (a generated black-and-white one with moving content, or ``--clip``) to FFV1 with

* ``single``: the plain ``colorgan-render IN OUT`` (VapourSynth on all cores);
* ``single --threads 1``: the same on one core, what one Ray worker gets (``--worker-cpus 1``);
* ``--workers N`` for each N of ``--workers``: the clustered render, from the first chunk task to the
  stitched file (probe, chunks, stitch), on one local Ray cluster of max(N) CPUs started beforehand (its start
  is reported apart) whose workers have been warmed up (model loaded) by a two-frame render.

Each clustered file is compared with the single render's: ``identical`` says whether the bytes are equal.
``Ray overhead per chunk`` comes from one more 1-worker render with chunks of ``--small-chunk`` frames: the
extra time over the 1-worker render above, divided by the extra chunks. It is what a chunk costs besides its
frames: the task round trip, the chunk's own set-up (source, graph, the temporal window's frames before its
start, the frame-count check, the rename) and its part of the stitch; ``no-op task`` is Ray's bare round trip. Prints a markdown table on stdout (``--json``: one JSON
object). Timings are figures to read, never asserted by tests.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from common import machine, markdown_table, run_in_workdir  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="generator .safetensors/.onnx (default: the bundled model)")
    ap.add_argument("--clip", type=Path, default=None, help="a video file to render (default: a generated clip)")
    ap.add_argument("--size", default="480x270", help="generated clip's WxH (default 480x270)")
    ap.add_argument("--frames", type=int, default=240, help="generated clip's length (default 240)")
    ap.add_argument("--workers", default="1,2", help="worker counts to run (default 1,2)")
    ap.add_argument("--chunk-frames", type=int, default=None, help="K (default: colorgan-render's choice)")
    ap.add_argument("--small-chunk", type=int, default=8, help="K of the overhead run (default 8)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout instead of tables")
    return ap


def write_clip(path: Path, width: int, height: int, frames: int, fps: int = 24) -> Path:
    """A gray clip: a textured background panning and a bright square crossing it (lossless H.264)."""
    import av

    rng = np.random.default_rng(0)
    texture = rng.integers(40, 200, (height // 8 + 8, width // 8 + 40), dtype=np.uint8)
    texture = np.kron(texture, np.ones((8, 8), np.uint8))
    side = max(8, height // 6)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.options = {"qp": "0", "preset": "ultrafast"}
        for t in range(frames):
            gray = texture[:height, t % 256: t % 256 + width].copy() if t % 256 + width <= texture.shape[1] \
                else texture[:height, :width].copy()
            x0 = (7 * t) % max(1, width - side)
            gray[(height - side) // 2:(height + side) // 2, x0:x0 + side] = 230
            frame = av.VideoFrame.from_ndarray(np.repeat(gray[:, :, None], 3, 2), format="rgb24").reformat(format="yuv420p")
            frame.pts = t
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
    return path


def run(args: argparse.Namespace, workdir: Path) -> int:
    import ray

    from vs_colorgan.render import cluster
    from vs_colorgan.render import build_parser as render_parser, main as render_main

    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    if args.clip is None:
        w, h = (int(v) for v in args.size.lower().split("x"))
        clip = write_clip(workdir / "clip.mp4", w, h, args.frames)
    else:
        clip = args.clip
    model = [] if args.model is None else ["--model", str(args.model)]
    common = [str(clip)] + model + ["--quiet", "--no-audio"]

    def timed_single(name: str, *extra: str) -> tuple[float, Path]:
        out = workdir / f"{name}.mkv"
        t0 = time.perf_counter()
        assert render_main([common[0], str(out), *common[1:], *extra]) == 0
        return time.perf_counter() - t0, out

    import vapoursynth as vs

    frames = vs.core.bs.VideoSource(str(clip)).num_frames
    render_main([common[0], str(workdir / "warm.mkv"), *common[1:], "--end", "1"])  # model files, BestSource index
    t_single, single = timed_single("single")
    t_single1, _ = timed_single("single1", "--threads", "1")

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=max(workers), object_store_memory=100 << 20, include_dashboard=False,
             log_to_driver=False, configure_logging=False)
    ray_start = time.perf_counter() - t0
    rows = []
    try:
        noop = ray.remote(lambda: None)
        ray.get([noop.remote() for _ in range(4)])
        t0 = time.perf_counter()
        for _ in range(20):
            ray.get(noop.remote())
        noop_ms = (time.perf_counter() - t0) / 20 * 1000
        warm = render_parser().parse_args([common[0], str(workdir / "warm_cluster.mkv"), *common[1:], "--end", "1",
                                           "--workers", str(max(workers)), "--chunk-frames", "1"])
        cluster.render_cluster(warm)  # start the worker processes, load the model in each
        def clustered(name: str, n: int, k: int | None) -> dict:
            out = workdir / f"{name}.mkv"
            argv = [common[0], str(out), *common[1:], "--workers", str(n)] + (["--chunk-frames", str(k)] if k else [])
            t0 = time.perf_counter()
            result = cluster.render_cluster(render_parser().parse_args(argv))
            seconds = time.perf_counter() - t0
            return {"run": f"--workers {n}", "workers": n, "chunks": len(result.rendered),
                    "chunk_frames": result.chunk_frames, "seconds": seconds, "fps": frames / seconds,
                    "stitch_seconds": result.seconds["stitch"], "identical": out.read_bytes() == single.read_bytes()}

        rows = [clustered(f"cluster{n}", n, args.chunk_frames) for n in workers]
        one = next((r for r in rows if r["workers"] == 1), None) or clustered("cluster1", 1, args.chunk_frames)
        small = clustered("small", 1, args.small_chunk)
        small["run"] += f" --chunk-frames {args.small_chunk}"
        rows.append(small)
    finally:
        ray.shutdown()
    extra = small["chunks"] - one["chunks"]
    overhead_ms = (small["seconds"] - one["seconds"]) / extra * 1000 if extra > 0 else None
    table = [{"run": "single", "workers": "-", "chunks": "-", "chunk_frames": "-", "seconds": t_single,
              "fps": frames / t_single, "identical": "-"},
             {"run": "single --threads 1", "workers": "-", "chunks": "-", "chunk_frames": "-", "seconds": t_single1,
              "fps": frames / t_single1, "identical": "-"}] + rows
    report = {"machine": {**machine(), "cpu_count": os.cpu_count()}, "clip": str(clip) if args.clip else args.size,
              "frames": frames, "ray_start_seconds": ray_start, "noop_task_ms": noop_ms,
              "ray_overhead_per_chunk_ms": overhead_ms, "runs": table}
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    m = report["machine"]
    print(f"{frames} frames ({report['clip']}), FFV1; {m['cpu']}, {m['cpu_count']} CPUs, torch {m['torch']}\n")
    print(markdown_table(["render", "chunks x K", "seconds", "fps", "x single", "identical to single"],
                         [[r["run"], "-" if r["chunks"] == "-" else f"{r['chunks']} x {r['chunk_frames']}",
                           f"{r['seconds']:.2f}", f"{r['fps']:.1f}", f"{t_single / r['seconds']:.2f}",
                           {True: "yes", False: "NO"}.get(r["identical"], "-")] for r in table]))
    print(f"\nRay start (local, {max(workers)} CPUs, not in the times above): {ray_start:.1f} s; "
          f"no-op task round trip: {noop_ms:.1f} ms")
    if overhead_ms is not None:
        print(f"Ray overhead per chunk ({small['chunks']} chunks of {small['chunk_frames']} vs {one['chunks']} of "
              f"{one['chunk_frames']} on 1 worker): {overhead_ms:.0f} ms")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_in_workdir(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
