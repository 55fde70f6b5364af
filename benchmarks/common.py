"""What the benchmark scripts share: the test clip, the model files, memory readings, tables.

Imported by ``benchmarks/speed.py`` and ``benchmarks/stages.py`` (run as scripts from the repository
root, so this folder is on ``sys.path``).
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import vapoursynth as vs

from vs_colorgan.formats import default_matrix

core = vs.core

SIZES = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080), "2160p": (3840, 2160)}


def parse_sizes(text: str) -> list[tuple[str, int, int]]:
    """``"480p,1080p"`` or ``"640x360"`` items -> [(label, width, height)]."""
    out = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        if item in SIZES:
            out.append((item, *SIZES[item]))
        else:
            try:
                w, h = (int(v) for v in item.lower().split("x"))
            except ValueError:
                raise SystemExit(f"--sizes: {item!r} is neither one of {', '.join(SIZES)} nor WxH") from None
            out.append((f"{w}x{h}", w, h))
    return out


def run_in_workdir(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace, Path], int],
                   argv: list[str] | None = None) -> int:
    """A script's ``main``: parse ``argv`` with ``parser``, then ``run(args, workdir)`` in a temporary
    folder (the model copies and exports) that is removed afterwards; returns ``run``'s exit status."""
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="colorgan-bench-") as tmp:
        return run(args, Path(tmp))


# ------------------------------------------------------------------------------------------------ clip


def synthetic_clip(width: int, height: int, frames: int, *, fps: int = 24, seed: int = 0) -> vs.VideoNode:
    """A black-and-white YUV420P8 clip (neutral chroma, BT.709 or 170M tags by size) whose luma is a
    textured background panning 3 px/frame right and 2 px/frame down, plus a bright square crossing
    the frame: content that changes every frame, made with a slice and a memcpy (about what a
    decoder costs), so the benchmark measures the filter rather than the source."""
    rng = np.random.default_rng(seed)
    pad = 96
    small = rng.integers(0, 256, ((height + pad) // 8 + 1, (width + pad) // 8 + 1), dtype=np.uint8)
    import cv2

    texture = cv2.resize(small, ((width + pad) // 8 * 8 + 8, (height + pad) // 8 * 8 + 8), interpolation=cv2.INTER_CUBIC)
    texture = (16 + texture.astype(np.uint16) * 219 // 255).astype(np.uint8)  # limited range
    side = max(8, height // 6)
    blank = core.std.BlankClip(format=vs.YUV420P8, width=width, height=height, length=frames, fpsnum=fps,
                               fpsden=1, color=[16, 128, 128])

    def draw(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        y = np.asarray(out[0])
        dx, dy = (3 * n) % pad, (2 * n) % pad
        np.copyto(y, texture[dy : dy + height, dx : dx + width])
        x0 = (7 * n) % max(1, width - side)
        y0 = (height - side) // 2
        y[y0 : y0 + side, x0 : x0 + side] = 220
        return out

    clip = core.std.ModifyFrame(blank, blank, draw)
    matrix = default_matrix(width, height)
    return core.std.SetFrameProps(clip, _Matrix=matrix, _Transfer=1 if matrix == 1 else 6, _Primaries=matrix,
                                  _ChromaLocation=0)


def file_clip(path: Path, width: int, height: int, frames: int) -> vs.VideoNode:
    """A real file (BestSource), resized to ``width x height`` (bicubic, 4:2:0 8-bit), looped to ``frames``."""
    src = core.bs.VideoSource(str(path))
    clip = src.resize.Bicubic(width=width, height=height, format=vs.YUV420P8) \
        if (src.width, src.height, src.format.id) != (width, height, vs.YUV420P8) else src
    if clip.num_frames < frames:
        clip = clip * (frames // clip.num_frames + 1)
    return clip[:frames]


# ------------------------------------------------------------------------------------------------ models


@dataclass(frozen=True)
class ModelFiles:
    """The same generator as the three files the pipelines load."""

    safetensors: Path | None  # torch backend (with the native .onnx next to it: the ort backend)
    onnx: Path | None  # native interface, next to ``safetensors`` (same stem)
    vsmlrt: Path | None  # GRAYS -> RGBS, for core.ort.Model
    note: str = ""  # why a file is missing


def prepare_models(model: Path | None, workdir: Path, *, vsmlrt: Path | None = None, fp16_vsmlrt: bool = False,
                   render_size: int | None = None) -> ModelFiles:
    """Put ``model`` (a .safetensors; default: the bundled one) into ``workdir`` next to its native
    ``.onnx`` and export the vs-mlrt graph, unless given (``vsmlrt``) or found next to it."""
    from vs_colorgan.model_io import DEFAULT_MODEL, load_generator

    src = Path(model) if model is not None else DEFAULT_MODEL
    if src.suffix == ".onnx":
        st = src.with_suffix(".safetensors")
        if not st.is_file():
            return ModelFiles(None, src, vsmlrt, note="an .onnx alone runs on the ort backend only; pass the .safetensors")
        src = st
    if not src.is_file():
        raise SystemExit(f"model file {str(src)!r} does not exist; pass --model path/to/generator.safetensors")
    workdir.mkdir(parents=True, exist_ok=True)
    st = workdir / "model.safetensors"
    shutil.copyfile(src, st)
    onnx = workdir / "model.onnx"
    note = ""
    net, cfg = load_generator(st)
    from vs_colorgan.export.onnx_export import export_onnx

    if src.with_suffix(".onnx").is_file():
        shutil.copyfile(src.with_suffix(".onnx"), onnx)
    else:
        export_onnx(net, cfg, onnx)
    if vsmlrt is None:
        for cand in (src.with_name(src.stem + "_vsmlrt.onnx"), src.with_name(src.stem + ".vsmlrt.onnx")):
            if cand.is_file():
                vsmlrt = cand
                break
    if vsmlrt is None:
        try:
            vsmlrt = workdir / "model_vsmlrt.onnx"
            export_onnx(net, cfg, vsmlrt, target="vsmlrt", fp16=fp16_vsmlrt, render_size=render_size)
        except (TypeError, ValueError) as e:  # an export without the vs-mlrt target
            vsmlrt, note = None, f"vs-mlrt export not available: {e}"
    return ModelFiles(st, onnx, vsmlrt, note)


# ------------------------------------------------------------------------------------------------ timing


def time_frames(clip: vs.VideoNode, *, warmup: int, frames: int) -> float:
    """Seconds per frame to render frames ``warmup .. warmup + frames - 1`` in order (VapourSynth's
    own prefetching, ``core.num_threads`` at a time), after rendering ``0 .. warmup - 1`` untimed."""
    if warmup:
        for _ in clip[:warmup].frames(close=True):
            pass
    t0 = time.perf_counter()
    for _ in clip[warmup : warmup + frames].frames(close=True):
        pass
    return (time.perf_counter() - t0) / frames


def rss_mib() -> float:
    """Resident set size now, MiB (Linux ``/proc/self/statm``; peak RSS where that is unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_rss_mib()


def trimmed_rss_mib() -> float | None:
    """RSS after glibc's ``malloc_trim(0)`` hands freed heap pages back to the system; None without glibc.

    Growth that disappears here is allocator retention (fragmented free memory across threads' arenas),
    not a leak: live objects cannot be trimmed."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is None or not hasattr(libc, "malloc_trim"):
            return None
        libc.malloc_trim(0)
    except OSError:
        return None
    return rss_mib()


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (``getrusage``; KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if platform.system() == "Darwin" else peak / 2**10


def machine() -> dict:
    import torch

    info = {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "vs_threads": core.num_threads, "torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
