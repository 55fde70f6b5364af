"""``colorgan-render --workers N`` / ``--cluster ADDRESS``: one film rendered in chunks on a Ray cluster.

Frame n of a colourized film depends only on the clip and the options (the filter is deterministic per
frame), so a render splits into frame ranges that any machine can do. This module plans the chunks, runs
each as a Ray task and stitches the results; it never schedules anything itself (Ray does).

* The plan: fixed chunks of K frames (a multiple of the codec's GOP), identified by a key hashed from the
  input's fingerprint, the options, the model's hash and K. The chunks live in a hidden parts folder next to
  OUTPUT (``.OUTPUT.parts-KEY``), which must be on storage every node sees, as must INPUT and the model.
* A chunk task renders its range through :func:`vs_colorgan.render.render_range` (the single render's own
  code), writes it under a temporary name in the parts folder, checks its frame count and renames it into
  place, then writes a small JSON beside it. It returns only that metadata (frames, sha256, the worker's
  hardware fingerprint). Ray retries it when its worker dies (``max_retries``); a duplicate attempt writes
  the same bytes, so at-least-once execution is harmless. The model is loaded once per worker process
  (a cached loader), not once per chunk.
* Resume: a chunk whose file and JSON are in place is not rendered again.
* Stitch: the chunks are remuxed in order with PyAV, timestamps rewritten from the global frame index, the
  source's audio added exactly as the single render adds it; the result goes to a temporary name, is renamed
  to OUTPUT, and only then is the parts folder removed.
* Determinism: FFV1 (every frame a key frame, bit-exact muxing) gives the same bytes as the single render on
  identical hardware. Chunks made on different hardware fingerprints are refused unless
  ``--allow-mixed-hardware``: floating-point results can differ between CPUs, GPUs and library versions.
"""
from __future__ import annotations

import argparse
import functools
import glob
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from .render import (PROG, START_KEY, AudioCopy, RenderError, Stopped, _raise_terminated, choose_codec,
                     colorize_options, muxer_options, render_range, temporary_path)

# frames per GOP the chunk size K is a multiple of. FFV1 writes every frame as a key frame (GOP 1). An H.264/H.265
# chunk is an encode of its own, so it opens with an IDR frame and its GOPs are closed: any K joins cleanly, and
# the default K is a multiple of x264/x265's key-frame interval (250) so chunks add few key frames
GOP = {"ffv1": 1, "h264": 1, "h265": 1}
DEFAULT_ALIGN = {"ffv1": 1, "h264": 250, "h265": 250}
CHUNKS_PER_WORKER = 4  # default K: about this many chunks per worker, for balance and cheap retries
MIN_CHUNK = 32  # ... but no shorter than this (each chunk re-infers up to temporal_radius frames before it)
PLAN_VERSION = 1
DEFAULT_RETRIES = 3
HEAD_TAIL = 8 << 20  # bytes of INPUT's head and tail hashed into its fingerprint (with its size)
EXTRA_HINT = "pip install 'vs_colorgan[cluster]'"


class ClusterError(RenderError):
    """Ray is missing, the cluster cannot be joined, or the chunks do not fit together (exit status 2)."""


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


# -- fingerprints --------------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    from .backends import file_sha256

    return file_sha256(path)


def input_fingerprint(path: Path) -> dict[str, Any]:
    """INPUT's size and the sha256 of its first and last 8 MiB (a film is too big to hash whole each run)."""
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(HEAD_TAIL))
        if size > HEAD_TAIL:
            f.seek(max(HEAD_TAIL, size - HEAD_TAIL))
            h.update(f.read())
    return {"size": size, "head_tail_sha256": h.hexdigest()}


def model_fingerprint(model: str | None) -> dict[str, str]:
    """sha256 of the model file and of its .safetensors/.onnx sibling (either may be what a worker runs)."""
    from .backends import model_paths
    from .errors import ColorizeError

    try:
        _, st, onnx = model_paths(model)
    except ColorizeError as e:
        raise RenderError(f"vs_colorgan.colorize: {e}") from None
    return {p.suffix[1:]: _sha256(p) for p in (st, onnx) if p is not None}


@functools.lru_cache(maxsize=1)
def _code_hash() -> str:
    """sha256 of vs_colorgan's Python sources as this process loaded them (read once: an upgrade while a worker
    runs does not change what it runs): workers must run the code the single render runs."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for path in sorted(root.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def hardware_fingerprint(args: argparse.Namespace) -> dict[str, str]:
    """What a chunk's bytes may depend on besides the input, options and model: the CPU or GPU, the backend
    colorize picks here, and the versions of the libraries that compute and encode the frames."""
    import av
    import numpy as np
    import torch
    import vapoursynth as vs

    from .backends import choose_backend

    settings, _ = choose_backend(model=args.model, backend=args.backend, device=args.device,
                                 fp16=args.fp16, num_streams=args.num_streams or 1, tensorrt=args.tensorrt)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    fp = {"machine": platform.machine(), "cpu": cpu, "backend": settings.backend, "device": settings.device,
          "torch": torch.__version__, "numpy": np.__version__, "vapoursynth": str(vs.__version__),
          "av": av.__version__, "ffmpeg": str(av.library_versions.get("libavcodec")), "code": _code_hash()}
    if settings.is_cuda:
        fp["gpu"] = torch.cuda.get_device_name(int(settings.device.partition(":")[2] or 0))
        fp["cuda"] = str(torch.version.cuda)
    if settings.backend == "ort":
        import onnxruntime

        fp["onnxruntime"] = onnxruntime.__version__
    return fp


def fingerprint_id(fp: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:12]


# -- the plan ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # first frame (of the source clip)
    stop: int  # one past the last

    @property
    def frames(self) -> int:
        return self.stop - self.start

    def name(self, suffix: str) -> str:
        return f"chunk-{self.index:06d}-{self.start:08d}-{self.stop - 1:08d}{suffix}"


@dataclass(frozen=True)
class Plan:
    key: str
    folder: Path
    k: int
    start: int
    end: int  # inclusive
    suffix: str
    chunks: tuple[Chunk, ...]
    base: str = ""  # the key without K: the same render with any K

    def path(self, chunk: Chunk) -> Path:
        return self.folder / chunk.name(self.suffix)

    def meta(self, chunk: Chunk) -> Path:
        return self.folder / (chunk.name(self.suffix) + ".json")

    @property
    def stop_file(self) -> Path:
        """Written by an interrupted driver: every chunk task that sees it ends before its next frame."""
        return self.folder / "STOP"


def default_chunk_frames(frames: int, workers: int, gop: int) -> int:
    """About CHUNKS_PER_WORKER chunks per worker, at least MIN_CHUNK frames, rounded up to a multiple of ``gop``."""
    k = max(math.ceil(frames / (max(workers, 1) * CHUNKS_PER_WORKER)), min(MIN_CHUNK, frames), 1)
    return math.ceil(k / gop) * gop


def plan_options(args: argparse.Namespace, codec: str) -> dict[str, Any]:
    """Everything besides INPUT, the model and K that decides a chunk's bytes."""
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in colorize_options(args).items() if k != "model"}
    return {"codec": codec, "crf": args.crf, "preset": args.preset if codec != "ffv1" else None, **options}


def make_plan(args: argparse.Namespace, *, num_frames: int, workers: int, codec: str) -> Plan:
    start = 0 if args.start is None else args.start
    end = num_frames - 1 if args.end is None else args.end
    if start > end:
        raise RenderError(f"--start ({start}) must not be after --end ({end})")
    if end >= num_frames:
        raise RenderError(f"--end must be a frame of the clip (0 to {num_frames - 1}), not {end}")
    gop = GOP[codec]
    frames = end - start + 1
    base_data = {"version": PLAN_VERSION, "input": input_fingerprint(args.input), "model": model_fingerprint(args.model),
                 "options": plan_options(args, codec), "start": start, "end": end}
    base = _hash(base_data)
    # K by default: the one of an earlier, interrupted run of the same render (so a resume finds its chunks even
    # when the worker count changed, e.g. a node was lost), else from the clip length and the worker count
    k = args.chunk_frames or earlier_k(args.output, base) or default_chunk_frames(frames, workers, DEFAULT_ALIGN[codec])
    if k % gop:
        raise RenderError(f"--chunk-frames must be a multiple of {codec}'s GOP ({gop} frames), not {k}")
    key = _hash({**base_data, "k": k})
    chunks = tuple(Chunk(i, s, min(s + k, end + 1)) for i, s in enumerate(range(start, end + 1, k)))
    folder = args.output.parent / f".{args.output.name}.parts-{key}"
    return Plan(key=key, folder=folder, k=k, start=start, end=end, suffix=args.output.suffix, chunks=chunks, base=base)


def _hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


PLAN_FILE = "plan.json"


def earlier_k(output: Path, base: str) -> int | None:
    """K of a parts folder that an earlier run of the same render (input, model, options, range) left."""
    for folder in sorted(output.parent.glob(f".{glob.escape(output.name)}.parts-*")):
        try:
            data = json.loads((folder / PLAN_FILE).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("base") == base and isinstance(data.get("k"), int) and data["k"] > 0:
            return data["k"]
    return None


def write_plan_file(plan: Plan) -> None:
    path = plan.folder / PLAN_FILE
    if path.exists():
        return
    tmp = temporary_path(path)
    try:
        tmp.write_text(json.dumps({"base": plan.base, "key": plan.key, "k": plan.k, "start": plan.start,
                                   "end": plan.end, "chunks": len(plan.chunks)}, indent=1))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_meta(plan: Plan, chunk: Chunk) -> dict[str, Any] | None:
    """The chunk's metadata when the chunk is complete and in place (file and JSON agree), else None."""
    try:
        meta = json.loads(plan.meta(chunk).read_text())
        size = plan.path(chunk).stat().st_size
    except (OSError, ValueError):
        return None
    if meta.get("plan") != plan.key or meta.get("frames") != chunk.frames or meta.get("size") != size:
        return None
    return meta


# -- the chunk task (runs in a Ray worker) -------------------------------------------------------------------

_RUNNERS: dict[Any, Any] = {}
_LOADS = [0]


def _install_runner_cache() -> None:
    """Make colorize in this worker process reuse the runner (the loaded model) for the same settings and file:
    the model is loaded once per worker, not once per chunk. The runner is what a fresh load would build."""
    from . import backends, filter as filter_module

    if getattr(filter_module.load_runner, "_vs_colorgan_cached", False):
        return
    load = backends.load_runner

    def cached(settings: Any, path: Any) -> Any:
        key = (settings, str(Path(path).resolve()), _sha256(Path(path)))
        if key not in _RUNNERS:
            _RUNNERS[key] = load(settings, path)
            _LOADS[0] += 1
        return _RUNNERS[key]

    cached._vs_colorgan_cached = True  # type: ignore[attr-defined]
    filter_module.load_runner = cached


def count_frames(path: Path) -> int:
    """Video packets (= frames) in ``path``, read without decoding."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return sum(1 for p in c.demux(stream) if p.size)


def render_chunk(args: argparse.Namespace, plan: Plan, chunk: Chunk) -> dict[str, Any]:
    """Render one chunk into place and return its metadata (the Ray task's body)."""
    import socket

    _install_runner_cache()
    final = plan.path(chunk)
    done = read_meta(plan, chunk)
    if done is not None:  # a duplicate attempt of a chunk already in place: the same bytes, nothing to do
        return {**done, "worker": _worker_info(socket)}
    from .backends import sha256_file

    stopped = {"stopped": True, "index": chunk.index, "worker": _worker_info(socket)}
    if plan.stop_file.exists():  # queued before the driver was interrupted: nothing to do
        return stopped
    chunk_args = argparse.Namespace(**{**vars(args), "output": final})
    tmp = temporary_path(final)
    try:
        written = render_range(chunk_args, chunk.start, chunk.stop, tmp, should_stop=plan.stop_file.exists)
        counted = count_frames(tmp)
        if written != chunk.frames or counted != chunk.frames:
            raise RuntimeError(f"chunk {chunk.index} (frames {chunk.start}-{chunk.stop - 1}) has {counted} frames "
                               f"({written} encoded), not {chunk.frames}")
        fp = hardware_fingerprint(args)
        meta = {"plan": plan.key, "index": chunk.index, "start": chunk.start, "frames": chunk.frames,
                "size": tmp.stat().st_size, "sha256": sha256_file(tmp), "fingerprint": fp,
                "fingerprint_id": fingerprint_id(fp)}
        os.replace(tmp, final)
    except Stopped:
        tmp.unlink(missing_ok=True)
        return stopped
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    meta_tmp = temporary_path(plan.meta(chunk))
    try:
        meta_tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
        os.replace(meta_tmp, plan.meta(chunk))
    except BaseException:
        meta_tmp.unlink(missing_ok=True)
        raise
    return {**meta, "worker": _worker_info(socket)}


def _worker_info(socket: Any) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "model_loads": _LOADS[0]}


def probe(args: argparse.Namespace) -> dict[str, Any]:
    """On a worker: check the options as the single render does (RenderError for bad ones), and say what the
    clip is and which hardware renders it."""
    from importlib.metadata import PackageNotFoundError, version

    from .render import prepare

    _install_runner_cache()
    job = prepare(argparse.Namespace(**{**vars(args), "start": 0, "end": 0}))
    try:
        ours = version("vs_colorgan")
    except PackageNotFoundError:
        ours = "unknown"
    fp = hardware_fingerprint(args)
    return {"num_frames": job.source_frames, "fps": (job.fps.numerator, job.fps.denominator),
            "fingerprint": fp, "fingerprint_id": fingerprint_id(fp), "vs_colorgan": ours}


# -- stitching -----------------------------------------------------------------------------------------------

def stitch(plan: Plan, args: argparse.Namespace, path: Path, *, muxer: str, codec: str, fps: Fraction) -> int:
    """Remux the plan's chunks in order into ``path``: the video packets as they are, timestamps from the global
    frame index, then the source's audio for the same time range, interleaved as the single render does."""
    import av

    tb = 1 / fps
    copy = None
    frames = 0
    try:
        with av.open(str(path), mode="w", format=muxer, options=muxer_options(codec)) as out:
            out.metadata[START_KEY] = str(plan.start)
            with av.open(str(plan.path(plan.chunks[0]))) as first:
                stream = out.add_stream_from_template(first.streams.video[0])
            stream.codec_context.framerate = fps  # as add_stream(rate=fps) sets it (Matroska: the default duration)
            if not args.no_audio:
                copy = AudioCopy(args.input, out, Fraction(plan.start) / fps, Fraction(plan.end + 1) / fps)
            for chunk in plan.chunks:
                offset = chunk.start - plan.start
                with av.open(str(plan.path(chunk))) as c:
                    src = c.streams.video[0]
                    for packet in c.demux(src):
                        if not packet.size:
                            continue
                        pts = int(round(packet.pts * src.time_base * fps)) + offset
                        dts = pts if packet.dts is None or codec == "ffv1" else \
                            int(round(packet.dts * src.time_base * fps)) + offset
                        packet.pts, packet.dts, packet.duration = pts, dts, 0
                        packet.time_base = tb
                        packet.stream = stream
                        out.mux(packet)
                        frames += 1
                        if copy is not None and codec == "ffv1":
                            copy.write_until(Fraction(frames) / fps)
                if copy is not None and codec != "ffv1":
                    copy.write_until(Fraction(offset + chunk.frames) / fps)
            if copy is not None:
                copy.write_until(None)
    finally:
        if copy is not None:
            copy.close()
    return frames


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
    if not args.input.is_file():
        raise RenderError(f"INPUT {str(args.input)!r} is not a file")
    if args.output.exists() and args.output.resolve() == args.input.resolve():
        raise RenderError("OUTPUT must not be INPUT: the render reads INPUT while it writes")
    if args.output.is_dir():
        raise RenderError(f"OUTPUT {str(args.output)!r} is a folder; name the file to write")
    if not args.output.parent.is_dir():
        raise RenderError(f"OUTPUT's folder {str(args.output.parent)!r} does not exist")


def _task_error(e: Exception) -> BaseException:
    """A failed chunk task's own exception (RenderError stays a RenderError: exit status 2)."""
    cause = getattr(e, "cause", None)
    return cause if isinstance(cause, Exception) else e


def _fingerprint_check(metas: dict[int, dict[str, Any]], allow_mixed: bool) -> dict[str, list[int]]:
    """Chunks by hardware fingerprint id; ClusterError when there are several and mixing is not allowed.
    Index -1 stands for this run's workers (the probe), before they have rendered anything."""
    by_fp: dict[str, list[int]] = {}
    fps: dict[str, dict[str, str]] = {}
    for index, meta in sorted(metas.items()):
        by_fp.setdefault(meta["fingerprint_id"], []).append(index)
        fps[meta["fingerprint_id"]] = meta["fingerprint"]
    if len(by_fp) > 1 and not allow_mixed:
        def who(ix: list[int]) -> str:
            chunks = [i for i in ix if i >= 0]
            said = [f"{len(chunks)} chunk{'s' if len(chunks) != 1 else ''} (e.g. {chunks[0]})"] if chunks else []
            return ", ".join(said + (["this run's workers"] if -1 in ix else []))

        lines = "; ".join(f"{fid} [{who(ix)}]: {fps[fid]}" for fid, ix in by_fp.items())
        raise ClusterError(f"the chunks come from {len(by_fp)} different hardware fingerprints, whose floating-point "
                           f"results can differ: {lines}. Render on one kind of worker, remove the parts folder to "
                           "start over, or pass --allow-mixed-hardware to accept the mix")
    return {fid: [i for i in ix if i >= 0] for fid, ix in by_fp.items() if any(i >= 0 for i in ix)}


def render_cluster(args: argparse.Namespace) -> Result:
    """The whole clustered render (``--workers`` / ``--cluster``); raises RenderError/ClusterError for the user."""
    from tqdm import tqdm

    from .model_io import clear_stale_temporaries

    check_arguments(args)
    muxer, codec = choose_codec(args.output, args.codec)
    if args.crf is not None and codec == "ffv1":
        raise RenderError("--crf applies to h264/h265; FFV1 is lossless")
    ray = import_ray()
    started = connect(ray, args)
    signals = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    previous = {s: signal.signal(s, _raise_terminated) for s in signals}
    pending: list[Any] = []
    try:
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
        remote_probe = ray.remote(probe).options(max_retries=args.retries, **task_resources)
        remote_chunk = ray.remote(render_chunk).options(max_retries=args.retries, retry_exceptions=False,
                                                        **task_resources)
        try:
            info = ray.get(remote_probe.remote(worker_args))
        except ray.exceptions.RayTaskError as e:
            raise _task_error(e) from None
        fps = Fraction(*info["fps"])
        plan = make_plan(args, num_frames=info["num_frames"], workers=workers, codec=codec)
        plan.folder.mkdir(exist_ok=True)
        plan.stop_file.unlink(missing_ok=True)  # an earlier interrupted run's; its tasks have ended or been killed
        write_plan_file(plan)
        metas: dict[int, dict[str, Any]] = {}
        for chunk in plan.chunks:
            meta = read_meta(plan, chunk)
            if meta is not None:
                metas[chunk.index] = meta
        reused = sorted(metas)
        _fingerprint_check({**metas, -1: info}, args.allow_mixed_hardware)
        missing = [c for c in plan.chunks if c.index not in metas]
        total = plan.end - plan.start + 1
        print(f"{PROG}: {args.input} -> {args.output}: frames {plan.start}-{plan.end} in {len(plan.chunks)} chunks of "
              f"{plan.k} on {workers} Ray worker{'s' if workers != 1 else ''} ({'GPU' if on_gpu else 'CPU'}), "
              f"{len(reused)} already rendered; parts in {plan.folder}", file=sys.stderr)
        # --workers N: at most N chunks in flight, also on a Ray that was already running with more CPUs;
        # --cluster: all of them at once, Ray queues what the cluster cannot run yet
        window = args.workers or len(missing)
        queue = list(missing)
        by_ref: dict[Any, Chunk] = {}
        t0 = time.perf_counter()
        with tqdm(total=total, initial=sum(c.frames for c in plan.chunks if c.index in metas), unit="frame",
                  desc="colorize", file=sys.stderr, disable=args.quiet) as bar:
            while queue or pending:
                while queue and len(pending) < window:
                    chunk = queue.pop(0)
                    ref = remote_chunk.remote(worker_args, plan, chunk)
                    by_ref[ref] = chunk
                    pending.append(ref)
                ready, pending = ray.wait(pending, num_returns=1)  # Ray's completion events feed the bar
                for ref in ready:
                    try:
                        meta = ray.get(ref)
                    except ray.exceptions.RayTaskError as e:
                        raise _task_error(e) from None
                    if meta.get("stopped"):  # only after another driver of this plan was interrupted
                        raise ClusterError(f"chunk {meta['index']} was stopped by {plan.stop_file}: is another "
                                           f"render of {args.output} with the same options running?")
                    metas[by_ref[ref].index] = meta
                    bar.update(meta["frames"])
                    _fingerprint_check(metas, args.allow_mixed_hardware)  # stop at the first foreign chunk
        seconds = {"render": time.perf_counter() - t0}
        fingerprints = _fingerprint_check(metas, args.allow_mixed_hardware)
        for stale in clear_stale_temporaries(args.output):
            print(f"{PROG}: removed {stale.name}, left by an interrupted render", file=sys.stderr)
        tmp = temporary_path(args.output)
        t0 = time.perf_counter()
        try:
            frames = stitch(plan, args, tmp, muxer=muxer, codec=codec, fps=fps)
            if frames != total:
                raise RuntimeError(f"the stitched file has {frames} frames, not {total}")
            os.replace(tmp, args.output)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        seconds["stitch"] = time.perf_counter() - t0
        shutil.rmtree(plan.folder, ignore_errors=True)
        others = sorted(p.name for p in args.output.parent.glob(f".{glob.escape(args.output.name)}.parts-*"))
        if others:
            print(f"{PROG}: note: {', '.join(others)} in {args.output.parent}: the parts of renders of {args.output.name} "
                  "with other options, model or input; remove them when they are not needed", file=sys.stderr)
    except BaseException:
        # interrupted or failed: stop the chunks still running (the finished ones stay for a resume) and wait for
        # them to stop, so that no chunk lands after this returns. Cooperatively, through a file in the shared
        # parts folder that each task checks between frames, never ray.cancel: in Ray 2.x a cancel whose task
        # finishes at the same moment aborts the driver (task_manager.cc "Tried to complete task that was not
        # pending"), seen in our CI.
        if pending:
            try:
                plan.stop_file.write_text("interrupted\n")
                ray.wait(pending, num_returns=len(pending), timeout=60)
            except Exception:
                pass
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if started:
            ray.shutdown()
    print(f"{PROG}: wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB) from {len(plan.chunks)} chunks, "
          f"{len(plan.chunks) - len(reused)} rendered now", file=sys.stderr)
    rendered = sorted(set(metas) - set(reused))
    return Result(rendered=rendered, reused=reused, fingerprints=fingerprints, chunk_frames=plan.k, plan=plan.key,
                  workers=[metas[i]["worker"] for i in rendered], seconds=seconds)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("cluster (Ray; pip install 'vs_colorgan[cluster]'; see README, section Rendering on a cluster)")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="render in chunks on a local Ray cluster of N workers")
    g.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="render in chunks on an existing Ray cluster (host:6379, 'auto', or ray://host:10001); "
                        "INPUT, OUTPUT's folder and the model must be on storage every node sees")
    g.add_argument("--chunk-frames", type=int, default=None, metavar="K",
                   help="frames per chunk (default: about 4 chunks per worker, at least 32 frames; for "
                        "H.264/H.265 a multiple of 250, their key-frame interval)")
    g.add_argument("--worker-cpus", type=int, default=1, metavar="C", help="CPUs each chunk task holds (default 1)")
    g.add_argument("--retries", type=int, default=DEFAULT_RETRIES, metavar="R",
                   help=f"times Ray reruns a chunk whose worker died (default {DEFAULT_RETRIES})")
    g.add_argument("--allow-mixed-hardware", action="store_true",
                   help="accept chunks rendered on different hardware fingerprints (their pixels may differ slightly)")

