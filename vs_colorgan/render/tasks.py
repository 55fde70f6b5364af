"""What runs on a Ray worker of a clustered render: a chunk (:func:`render_chunk`) and the probe (:func:`probe`).

A chunk task renders its range through :func:`vs_colorgan.render.job.render_range` (the single render's own
code), writes it under a temporary name in the parts folder, checks its frame count and renames it into
place, then writes a small JSON beside it. It returns only that metadata (frames, sha256, the worker's
hardware fingerprint). Ray retries it when its worker dies; a duplicate attempt writes the same bytes, so
at-least-once execution is harmless. The model is loaded once per worker process
(:func:`vs_colorgan.backends.share_runners`), not once per chunk. A chunk ends before its next frame when
the driver writes the plan's STOP file (:attr:`Plan.stop_file`).
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import socket
from pathlib import Path
from typing import Any

from ..backends import sha256_file, share_runners
from ..model_io import atomic_path, atomic_write_text
from .encode import Stopped, count_frames
from .job import prepare, render_range
from .plan import Chunk, Plan, fingerprint_id, read_meta


@functools.lru_cache(maxsize=1)
def _code_hash() -> str:
    """sha256 of vs_colorgan's Python sources as this process loaded them (read once: an upgrade while a worker
    runs does not change what it runs): workers must run the code the single render runs."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]  # the vs_colorgan package, its sub-packages included
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def hardware_fingerprint(args: argparse.Namespace) -> dict[str, str]:
    """What a chunk's bytes may depend on besides the input, options and model: the CPU or GPU, the backend
    colorize picks here, and the versions of the libraries that compute and encode the frames."""
    import av
    import numpy as np
    import torch
    import vapoursynth as vs

    from ..backends import choose_backend

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


def _worker_info() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "model_loads": share_runners().loads}


def render_chunk(args: argparse.Namespace, plan: Plan, chunk: Chunk) -> dict[str, Any]:
    """Render one chunk into place and return its metadata (the Ray task's body); ``{"stopped": True, ...}``
    when the plan's STOP file ended it or kept it from starting."""
    share_runners()
    done = read_meta(plan, chunk)
    if done is not None:  # a duplicate attempt of a chunk already in place: the same bytes, nothing to do
        return {**done, "worker": _worker_info()}
    stopped = {"stopped": True, "index": chunk.index, "worker": _worker_info()}
    if plan.stop_file.exists():  # queued before the driver was interrupted: nothing to do
        return stopped
    final = plan.path(chunk)
    try:
        with atomic_path(final) as tmp:
            meta = _render_chunk_file(args, plan, chunk, tmp)
    except Stopped:  # the temporary is gone with the block
        return stopped
    atomic_write_text(plan.meta(chunk), json.dumps(meta, indent=1, sort_keys=True))
    return {**meta, "worker": _worker_info()}


def _render_chunk_file(args: argparse.Namespace, plan: Plan, chunk: Chunk, tmp: Path) -> dict[str, Any]:
    """Render ``chunk`` into ``tmp``, check its frames, and return its metadata."""
    chunk_args = argparse.Namespace(**{**vars(args), "output": plan.path(chunk)})
    written = render_range(chunk_args, chunk.start, chunk.stop, tmp, should_stop=plan.stop_file.exists)
    counted = count_frames(tmp)
    if written != chunk.frames or counted != chunk.frames:
        raise RuntimeError(f"chunk {chunk.index} (frames {chunk.start}-{chunk.stop - 1}) has {counted} frames "
                           f"({written} encoded), not {chunk.frames}")
    fp = hardware_fingerprint(args)
    return {"plan": plan.key, "index": chunk.index, "start": chunk.start, "frames": chunk.frames,
            "size": tmp.stat().st_size, "sha256": sha256_file(tmp), "fingerprint": fp,
            "fingerprint_id": fingerprint_id(fp)}


def probe(args: argparse.Namespace) -> dict[str, Any]:
    """On a worker: check the options as the single render does (RenderError for bad ones), and say what the
    clip is and which hardware renders it."""
    from importlib.metadata import PackageNotFoundError, version

    share_runners()
    job = prepare(argparse.Namespace(**{**vars(args), "start": 0, "end": 0}))
    try:
        ours = version("vs_colorgan")
    except PackageNotFoundError:
        ours = "unknown"
    fp = hardware_fingerprint(args)
    return {"num_frames": job.source_frames, "fps": (job.fps.numerator, job.fps.denominator),
            "fingerprint": fp, "fingerprint_id": fingerprint_id(fp), "vs_colorgan": ours}
