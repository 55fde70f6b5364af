"""``colorgan-render --workers N`` / ``--cluster ADDRESS``: the driver of a film rendered in chunks on Ray.

Frame n of a colourized film depends only on the clip and the options (the filter is deterministic per
frame), so a render splits into frame ranges that any machine can do. The driver plans the chunks
(:mod:`~vs_colorgan.render.plan`), hands each to Ray as a task (:mod:`~vs_colorgan.render.tasks`), and
stitches the results; it never schedules anything itself (Ray does). Its steps: :func:`_start` (join Ray,
probe a worker, plan, find the chunks an earlier run left), :func:`_schedule` (the chunk tasks, at most
``--workers`` in flight), :func:`_finish` (stitch, rename, remove the parts folder) and, when interrupted or
failed, :func:`_stop`.

* INPUT, OUTPUT's folder and the model must be on storage every node sees.
* Resume: a chunk whose file and JSON are in place is not rendered again.
* Stitch: the chunks are remuxed in order with PyAV (:func:`vs_colorgan.render.encode.stitch`), timestamps
  rewritten from the global frame index, the source's audio added exactly as the single render adds it; the
  result goes to a temporary name, is renamed to OUTPUT, and only then is the parts folder removed.
* Determinism: FFV1 (every frame a key frame, bit-exact muxing) gives the same bytes as the single render on
  identical hardware. Chunks made on different hardware fingerprints are refused unless
  ``--allow-mixed-hardware``: floating-point results can differ between CPUs, GPUs and library versions.
"""
from __future__ import annotations

import argparse
import glob
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ..model_io import atomic_path, clear_stale_temporaries
from .arguments import PROG, RenderError, check_codec_options, check_files, signals_deferred, terminated_on_signals
from .encode import Part, choose_codec, stitch
from .plan import ClusterError, Chunk, Plan, check_fingerprints, make_plan, read_meta, write_plan_file
from .tasks import probe, render_chunk

__all__ = ["ClusterError", "Result", "render_cluster", "add_arguments"]

DEFAULT_RETRIES = 3
EXTRA_HINT = "pip install 'vs_colorgan[cluster]'"


# -- Ray -----------------------------------------------------------------------------------------------------

def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--workers and --cluster render on Ray, which is not installed: {EXTRA_HINT}") from None
    major, minor = (int(x) for x in ray.__version__.split(".")[:2])
    if (major, minor) < (2, 9):
        raise ClusterError(f"--workers and --cluster need ray>=2.9, this is ray {ray.__version__}: {EXTRA_HINT}")
    return ray


def connect(ray: Any, args: argparse.Namespace) -> bool:
    """Start a local cluster (``--workers``) or join one (``--cluster``); True when this call started Ray
    (and so must shut it down). A Ray already initialised in this process (library use, tests) is used as is."""
    if ray.is_initialized():
        return False
    if args.cluster is None:
        ray.init(address="local", num_cpus=args.workers * args.worker_cpus, object_store_memory=128 << 20,
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
        return True
    try:
        ray.init(address=args.cluster, log_to_driver=False, configure_logging=False)
    except Exception as e:  # version mismatch, unreachable address: Ray's own words, with what to do
        text = str(e)
        hint = (f"; the cluster's ray and Python must be this machine's: ray {ray.__version__}, Python "
                f"{platform.python_version()} (pip install 'ray=={ray.__version__}' on every node)"
                if "version" in text.lower() else
                "; is the cluster running (ray start --head on its head node) and is ADDRESS its head's "
                "host:6379, or 'auto' on a node of it? A cluster with token authentication (ray start's "
                "default in recent Ray) also needs RAY_AUTH_MODE=token here, and its token in ~/.ray/auth_token "
                "or RAY_AUTH_TOKEN")
        raise ClusterError(f"cannot join the Ray cluster at {args.cluster!r}: {text.strip().splitlines()[0] if text.strip() else type(e).__name__}{hint}") from None
    return True


# -- the command ---------------------------------------------------------------------------------------------

@dataclass
class Result:
    """What a clustered render did: the chunks rendered now and those found in place, by index."""

    rendered: list[int]
    reused: list[int]
    fingerprints: dict[str, list[int]]  # hardware fingerprint id -> chunks
    chunk_frames: int
    plan: str
    workers: list[dict[str, Any]]  # per chunk rendered now: the worker's host, pid and model loads so far
    seconds: dict[str, float]  # wall time of the chunk renders and of the stitch


def check_arguments(args: argparse.Namespace) -> None:
    if args.workers is not None and args.cluster is not None:
        raise RenderError("give --workers N (a local Ray cluster) or --cluster ADDRESS (an existing one), not both")
    if args.workers is not None and args.workers < 1:
        raise RenderError(f"--workers must be 1 or more, not {args.workers}")
    if args.worker_cpus < 1:
        raise RenderError(f"--worker-cpus must be 1 or more, not {args.worker_cpus}")
    if args.chunk_frames is not None and args.chunk_frames < 1:
        raise RenderError(f"--chunk-frames must be 1 or more, not {args.chunk_frames}")
    if args.retries < 0:
        raise RenderError(f"--retries must be 0 or more, not {args.retries}")
    check_files(args)


def _task_error(e: Exception) -> BaseException:
    """A failed chunk task's own exception (RenderError stays a RenderError: exit status 2)."""
    cause = getattr(e, "cause", None)
    return cause if isinstance(cause, Exception) else e


@dataclass
class _Run:
    """A clustered render in progress: what the driver's steps share."""

    ray: Any
    args: argparse.Namespace
    plan: Plan
    fps: Fraction
    muxer: str
    codec: str
    workers: int
    remote_chunk: Any  # render_chunk as a Ray remote function with its resources
    worker_args: argparse.Namespace  # args as the workers see them
    metas: dict[int, dict[str, Any]] = field(default_factory=dict)  # chunk index -> its metadata
    reused: list[int] = field(default_factory=list)  # chunks an earlier run left
    pending: list[Any] = field(default_factory=list)  # Ray object refs of the chunks in flight


def render_cluster(args: argparse.Namespace) -> Result:
    """The whole clustered render (``--workers`` / ``--cluster``); raises RenderError/ClusterError for the user."""
    check_arguments(args)
    muxer, codec = choose_codec(args.output, args.codec)
    check_codec_options(args, codec)
    ray = import_ray()
    started = connect(ray, args)
    try:
        with terminated_on_signals():
            return _render(ray, args, muxer=muxer, codec=codec)
    finally:
        if started:
            ray.shutdown()


def _render(ray: Any, args: argparse.Namespace, *, muxer: str, codec: str) -> Result:
    run = _start(ray, args, muxer=muxer, codec=codec)
    try:
        t0 = time.perf_counter()
        _schedule(run)
        seconds = {"render": time.perf_counter() - t0}
        fingerprints = check_fingerprints(run.metas, args.allow_mixed_hardware)
        seconds["stitch"] = _finish(run)
    except BaseException:
        _stop(run)
        raise
    plan = run.plan
    print(f"{PROG}: wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB) from {len(plan.chunks)} chunks, "
          f"{len(plan.chunks) - len(run.reused)} rendered now", file=sys.stderr)
    rendered = sorted(set(run.metas) - set(run.reused))
    return Result(rendered=rendered, reused=run.reused, fingerprints=fingerprints, chunk_frames=plan.k, plan=plan.key,
                  workers=[run.metas[i]["worker"] for i in rendered], seconds=seconds)


def _placement(ray: Any, args: argparse.Namespace) -> tuple[bool, dict[str, Any], int, argparse.Namespace]:
    """(on a GPU, each task's Ray resources, the number of workers, args as the workers see them)."""
    resources = ray.cluster_resources()
    gpus = resources.get("GPU", 0)
    on_gpu = args.device.startswith("cuda") or (args.device == "auto" and gpus > 0)
    if on_gpu and not gpus:
        raise ClusterError(f"--device {args.device} renders on CUDA, but the Ray cluster has no GPU resources "
                           "(start its nodes with ray start --num-gpus N, or use --device cpu)")
    task_resources = {"num_gpus": 1, "num_cpus": args.worker_cpus} if on_gpu else {"num_cpus": args.worker_cpus}
    workers = args.workers or max(1, int(gpus if on_gpu else resources.get("CPU", 1) // args.worker_cpus))
    worker_args = argparse.Namespace(**vars(args))
    if not worker_args.threads:  # VapourSynth threads: the CPUs the task holds, not the whole machine's
        worker_args.threads = args.worker_cpus
    if on_gpu and args.device.startswith("cuda"):  # Ray shows each task only its own GPU: cuda:0 there
        worker_args.device = "cuda"
    return on_gpu, task_resources, workers, worker_args


def _start(ray: Any, args: argparse.Namespace, *, muxer: str, codec: str) -> _Run:
    """Probe a worker, make the plan, and take in the chunks an earlier run of it left."""
    on_gpu, task_resources, workers, worker_args = _placement(ray, args)
    remote_probe = ray.remote(probe).options(max_retries=args.retries, **task_resources)
    remote_chunk = ray.remote(render_chunk).options(max_retries=args.retries, retry_exceptions=False, **task_resources)
    try:
        info = ray.get(remote_probe.remote(worker_args))
    except ray.exceptions.RayTaskError as e:
        raise _task_error(e) from None
    plan = make_plan(args, num_frames=info["num_frames"], workers=workers, codec=codec)
    plan.folder.mkdir(exist_ok=True)
    plan.stop_file.unlink(missing_ok=True)  # an earlier interrupted run's; its tasks have ended or been killed
    write_plan_file(plan)
    run = _Run(ray=ray, args=args, plan=plan, fps=Fraction(*info["fps"]), muxer=muxer, codec=codec, workers=workers,
               remote_chunk=remote_chunk, worker_args=worker_args)
    for chunk in plan.chunks:
        meta = read_meta(plan, chunk)
        if meta is not None:
            run.metas[chunk.index] = meta
    run.reused = sorted(run.metas)
    check_fingerprints({**run.metas, -1: info}, args.allow_mixed_hardware)
    print(f"{PROG}: {args.input} -> {args.output}: frames {plan.start}-{plan.end} in {len(plan.chunks)} chunks of "
          f"{plan.k} on {workers} Ray worker{'s' if workers != 1 else ''} ({'GPU' if on_gpu else 'CPU'}), "
          f"{len(run.reused)} already rendered; parts in {plan.folder}", file=sys.stderr)
    return run


def _schedule(run: _Run) -> None:
    """Run the missing chunks as Ray tasks until all are in place; the progress bar follows their completion."""
    from tqdm import tqdm

    ray, args, plan = run.ray, run.args, run.plan
    queue = [c for c in plan.chunks if c.index not in run.metas]
    # --workers N: at most N chunks in flight, also on a Ray that was already running with more CPUs;
    # --cluster: all of them at once, Ray queues what the cluster cannot run yet
    window = args.workers or len(queue)
    by_ref: dict[Any, Chunk] = {}
    with tqdm(total=plan.end - plan.start + 1, initial=sum(c.frames for c in plan.chunks if c.index in run.metas),
              unit="frame", desc="colorize", file=sys.stderr, disable=args.quiet) as bar:
        while queue or run.pending:
            while queue and len(run.pending) < window:
                chunk = queue.pop(0)
                with signals_deferred():  # a task submitted is in run.pending before a signal can stop the run
                    ref = run.remote_chunk.remote(run.worker_args, plan, chunk)
                    by_ref[ref] = chunk
                    run.pending.append(ref)
            ready, run.pending = ray.wait(run.pending, num_returns=1)  # Ray's completion events feed the bar
            for ref in ready:
                try:
                    meta = ray.get(ref)
                except ray.exceptions.RayTaskError as e:
                    raise _task_error(e) from None
                if meta.get("stopped"):  # only after another driver of this plan was interrupted
                    raise ClusterError(f"chunk {meta['index']} was stopped by {plan.stop_file}: is another "
                                       f"render of {args.output} with the same options running?")
                run.metas[by_ref[ref].index] = meta
                bar.update(meta["frames"])
                check_fingerprints(run.metas, args.allow_mixed_hardware)  # stop at the first foreign chunk


def _finish(run: _Run) -> float:
    """Stitch the chunks into OUTPUT (through a temporary) and remove the parts folder; returns the seconds."""
    args, plan = run.args, run.plan
    for stale in clear_stale_temporaries(args.output):
        print(f"{PROG}: removed {stale.name}, left by an interrupted render", file=sys.stderr)
    t0 = time.perf_counter()
    total = plan.end - plan.start + 1
    parts = [Part(plan.path(c), c.start - plan.start, c.frames) for c in plan.chunks]
    with atomic_path(args.output) as tmp:
        frames = stitch(parts, tmp, source=None if args.no_audio else args.input, start=plan.start, end=plan.end,
                        muxer=run.muxer, codec=run.codec, fps=run.fps)
        if frames != total:
            raise RuntimeError(f"the stitched file has {frames} frames, not {total}")
    seconds = time.perf_counter() - t0
    shutil.rmtree(plan.folder, ignore_errors=True)
    others = sorted(p.name for p in args.output.parent.glob(f".{glob.escape(args.output.name)}.parts-*"))
    if others:
        print(f"{PROG}: note: {', '.join(others)} in {args.output.parent}: the parts of renders of {args.output.name} "
              "with other options, model or input; remove them when they are not needed", file=sys.stderr)
    return seconds


def _stop(run: _Run) -> None:
    """Interrupted or failed: stop the chunks still running (the finished ones stay for a resume) and wait for
    them to stop, so that no chunk lands after the driver returns. Cooperatively, through a file in the shared
    parts folder that each task checks between frames, never ray.cancel: in Ray 2.x a cancel whose task
    finishes at the same moment aborts the driver (task_manager.cc "Tried to complete task that was not
    pending"), seen in our CI."""
    if not run.pending:
        return
    try:
        run.plan.stop_file.write_text("interrupted\n")
        run.ray.wait(run.pending, num_returns=len(run.pending), timeout=60)
    except Exception:
        pass


def add_arguments(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("cluster (Ray; pip install 'vs_colorgan[cluster]'; see README, section Rendering on a cluster)")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="render in chunks on a local Ray cluster of N workers")
    g.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="render in chunks on an existing Ray cluster (host:6379, 'auto', or ray://host:10001); "
                        "INPUT, OUTPUT's folder and the model must be on storage every node sees")
    g.add_argument("--chunk-frames", type=int, default=None, metavar="K",
                   help="frames per chunk, any number: each chunk opens with a key frame (default: about 4 "
                        "chunks per worker, at least 32 frames; for H.264/H.265 a multiple of 250, x264/x265's "
                        "key-frame interval, so that chunks add few key frames)")
    g.add_argument("--worker-cpus", type=int, default=1, metavar="C", help="CPUs each chunk task holds (default 1)")
    g.add_argument("--retries", type=int, default=DEFAULT_RETRIES, metavar="R",
                   help=f"times Ray reruns a chunk whose worker died (default {DEFAULT_RETRIES})")
    g.add_argument("--allow-mixed-hardware", action="store_true",
                   help="accept chunks rendered on different hardware fingerprints (their pixels may differ slightly)")

