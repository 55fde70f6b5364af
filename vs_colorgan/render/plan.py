"""The plan of a clustered render: which chunks, and the key that identifies them. Needs no Ray.

* Fixed chunks of K frames. Any K joins cleanly: an FFV1 chunk is all key frames, an H.264/H.265 chunk is an
  encode of its own that opens with a key frame and closes its GOPs. The default K is about
  :data:`CHUNKS_PER_WORKER` chunks per worker, at least :data:`MIN_CHUNK` frames, and for H.264/H.265 a
  multiple of x264/x265's key-frame interval (250), so that chunks add few key frames.
* The key: a hash of INPUT's fingerprint (size, first and last 8 MiB), the options, the model's sha256 and K.
  The chunks live in a hidden parts folder next to OUTPUT (``.OUTPUT.parts-KEY``), so a second run of the same
  render finds them (resume) and a render with other options does not.
* A chunk is complete when its file and its JSON (frames, size, sha256, hardware fingerprint) agree.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..model_io import atomic_write_text
from .arguments import RenderError, frame_range
from .options import options_from_arguments

# the default K: a multiple of x264/x265's key-frame interval for H.264/H.265, so that chunks add few key frames
DEFAULT_ALIGN = {"ffv1": 1, "h264": 250, "h265": 250}
CHUNKS_PER_WORKER = 4  # default K: about this many chunks per worker, for balance and cheap retries
MIN_CHUNK = 32  # ... but no shorter than this (each chunk re-infers up to temporal_radius frames before it)
PLAN_VERSION = 1
HEAD_TAIL = 8 << 20  # bytes of INPUT's head and tail hashed into its fingerprint (with its size)


class ClusterError(RenderError):
    """Ray is missing, the cluster cannot be joined, or the chunks do not fit together (exit status 2)."""


# -- fingerprints --------------------------------------------------------------------------------------------

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
    from ..backends import file_sha256, model_paths
    from ..errors import ColorizeError

    try:
        _, st, onnx = model_paths(model)
    except ColorizeError as e:
        raise RenderError(f"vs_colorgan.colorize: {e}") from None
    return {p.suffix[1:]: file_sha256(p) for p in (st, onnx) if p is not None}


def fingerprint_id(fp: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:12]


def check_fingerprints(metas: dict[int, dict[str, Any]], allow_mixed: bool) -> dict[str, list[int]]:
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


def default_chunk_frames(frames: int, workers: int, align: int) -> int:
    """About CHUNKS_PER_WORKER chunks per worker, at least MIN_CHUNK frames, rounded up to a multiple of ``align``."""
    k = max(math.ceil(frames / (max(workers, 1) * CHUNKS_PER_WORKER)), min(MIN_CHUNK, frames), 1)
    return math.ceil(k / align) * align


def plan_options(args: argparse.Namespace, codec: str) -> dict[str, Any]:
    """Everything besides INPUT, the model and K that decides a chunk's bytes."""
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in options_from_arguments(args).items() if k != "model"}
    return {"codec": codec, "crf": args.crf, "preset": args.preset if codec != "ffv1" else None, **options}


def make_plan(args: argparse.Namespace, *, num_frames: int, workers: int, codec: str) -> Plan:
    """The chunks of the render ``args`` asks for, of a clip of ``num_frames`` frames (see the module docstring)."""
    start, end = frame_range(args, num_frames)
    frames = end - start + 1
    base_data = {"version": PLAN_VERSION, "input": input_fingerprint(args.input), "model": model_fingerprint(args.model),
                 "options": plan_options(args, codec), "start": start, "end": end}
    base = _hash(base_data)
    # K by default: the one of an earlier, interrupted run of the same render (so a resume finds its chunks even
    # when the worker count changed, e.g. a node was lost), else from the clip length and the worker count
    k = args.chunk_frames or earlier_k(args.output, base) or default_chunk_frames(frames, workers, DEFAULT_ALIGN[codec])
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
    if not path.exists():
        atomic_write_text(path, json.dumps({"base": plan.base, "key": plan.key, "k": plan.k, "start": plan.start,
                                            "end": plan.end, "chunks": len(plan.chunks)}, indent=1))


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
