"""Throughput of the vs-mlrt export beside the filter, on the same clip and the same generator.

    python benchmarks/export_throughput.py [--clip FILE] [--size 854x480] [--frames 48] [--width 32] [--repeats 3]

* ``vs-mlrt``: ``core.ort.Model`` (CPU provider) on the ``--target vsmlrt`` file: GRAYS -> RGBS.
* ``vs-mlrt slim``: the same file simplified with onnxslim; ``num_streams=2``: two sessions, two frames
  at once; ``--matrix``: the file exported with ``--matrix`` (170m for SD, 709 for HD).
* ``colorize ort r=0``: ``vs_colorgan.colorize(clip, model=<native .onnx>, backend="ort", temporal_radius=0)``.

The generator is a fresh U-Net of ``--width`` (random weights: speed does not depend on them), render
size 256. The clip is ``--clip`` (default: the bundled sample) resized to ``--size`` as 8-bit gray, or
a generated one when there is no file. Frames are rendered in order through VapourSynth after 4
untimed warm-up frames; each pipeline is timed ``--repeats`` times, interleaved; reported are the best
frame rate (other work on the machine only ever slows a run down) and the median CPU time per frame
(this process, all threads: what the pipeline costs, nearly independent of the machine's load). Also prints the colour difference
between the two outputs (RGBS, mean and max over a few frames), raw and with the source luma put back.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import vapoursynth as vs

from vs_colorgan.formats import default_matrix
from vs_colorgan.model_io import ModelConfig, load_generator, save_generator
from vs_colorgan.networks import build_generator

from vs_colorgan.model_io import resolve_generator_path as resolve_checkpoint
from vs_colorgan.export.onnx_export import export_onnx

core = vs.core
SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample_bw.mp4"


def source_clip(path: Path | None, width: int, height: int, frames: int) -> vs.VideoNode:
    if path is not None and path.is_file():
        clip = core.bs.VideoSource(str(path))
        clip = core.resize.Bicubic(core.std.ShufflePlanes(clip, 0, vs.GRAY), width, height)
        clip = clip * (1 + frames // clip.num_frames) if clip.num_frames < frames else clip
        return clip[:frames]
    # moving gradient + texture, 8-bit gray
    blank = core.std.BlankClip(width=width, height=height, format=vs.GRAY8, length=frames)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)

    def draw(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        img = 128 + 60 * np.sin((xx + 4 * n) / 37) * np.cos(yy / 23) + 30 * np.sin(xx * yy / 900)
        np.copyto(np.asarray(out[0]), np.clip(img, 16, 235).astype(np.uint8))
        return out

    return core.std.ModifyFrame(blank, blank, draw)


def timed(clip: vs.VideoNode, warmup: int = 4) -> tuple[float, float]:
    """(frames per second, CPU milliseconds per frame) rendering ``clip`` in order after ``warmup`` frames.

    CPU time is this process's user + system time over all threads (``getrusage``): unlike the wall
    clock it barely moves when other programs compete for the cores, so it compares pipelines fairly
    on a busy machine.
    """
    for _ in clip[:warmup].frames():
        pass
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    count = 0
    for _ in clip[warmup:].frames():
        count += 1
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return count / wall, 1000.0 * (usage.ru_utime + usage.ru_stime - cpu0) / count


def rgbs_planes(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack([np.asarray(frame[p]) for p in range(3)])


def main(argv: list[str] | None = None) -> int:
    import vs_colorgan

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", type=Path, default=SAMPLE)
    ap.add_argument("--size", default="854x480")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--width", type=int, default=32, help="U-Net base width")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="a generator .safetensors or run folder to use instead of a random U-Net")
    args = ap.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    work = Path(tempfile.mkdtemp(prefix="colorgan-bench-"))
    if args.checkpoint is not None:
        model, cfg = load_generator(resolve_checkpoint(args.checkpoint))
    else:
        torch.manual_seed(0)
        model = build_generator("unet", width=args.width).eval()
        cfg = ModelConfig(arch="unet", width=args.width, render_size=256, preset="benchmark")
    save_generator(work / "generator.safetensors", model, cfg)
    native, vsmlrt, slim = work / "native.onnx", work / "vsmlrt.onnx", work / "vsmlrt_slim.onnx"
    # the filter's default matrix for untagged frames; the sample clip is SD
    matrix_code = default_matrix(width, height)
    matrix_name = {6: "170m", 1: "709"}[matrix_code]
    with_matrix = work / f"vsmlrt_{matrix_name}.onnx"
    export_onnx(model, cfg, native)
    export_onnx(model, cfg, vsmlrt, target="vsmlrt")
    export_onnx(model, cfg, slim, target="vsmlrt", simplify=True)
    export_onnx(model, cfg, with_matrix, target="vsmlrt", matrix=matrix_code)

    src = source_clip(args.clip, width, height, args.frames + 4)
    gray = core.resize.Point(src, format=vs.GRAYS)  # zimg: limited -> [0, 1]
    pipelines = {
        "vs-mlrt core.ort.Model": core.ort.Model(gray, network_path=str(vsmlrt), provider="CPU"),
        "vs-mlrt core.ort.Model, onnxslim": core.ort.Model(gray, network_path=str(slim), provider="CPU"),
        "vs-mlrt core.ort.Model, num_streams=2": core.ort.Model(gray, network_path=str(vsmlrt), provider="CPU",
                                                               num_streams=2),
        f"vs-mlrt core.ort.Model, --matrix {matrix_name}": core.ort.Model(gray, network_path=str(with_matrix),
                                                                         provider="CPU"),
        "colorize ort r=0": vs_colorgan.colorize(src, model=str(native), backend="ort", temporal_radius=0),
        "source only": src,
    }
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in pipelines}
    for _ in range(args.repeats):
        for name, clip in pipelines.items():
            runs[name].append(timed(clip))

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, VapourSynth threads "
          f"{core.num_threads}, load average {os.getloadavg()[0]:.1f}; clip {width}x{height}, {args.frames} frames; "
          f"{cfg.arch} width {cfg.width}{' (random weights)' if args.checkpoint is None else ''}, "
          f"render size {cfg.render_size}, fp32")
    print(f"| pipeline | fps (best of {args.repeats}) | CPU ms per frame (median) |")
    print("|---|---|---|")
    for name, values in runs.items():
        print(f"| {name} | {max(v[0] for v in values):.2f} | {np.median([v[1] for v in values]):.0f} |")

    # colour difference between the two outputs, RGBS [0, 1]
    filtered = core.resize.Point(pipelines["colorize ort r=0"], format=vs.RGBS)
    # core.ort.Model copies the gray frames' properties; an RGB frame must not carry their YUV _Matrix
    rgb = core.std.SetFrameProps(pipelines["vs-mlrt core.ort.Model"], _Matrix=0)
    yuv = core.resize.Point(rgb, format=vs.YUV444PS, matrix_s=matrix_name)
    kept = core.resize.Point(core.std.ShufflePlanes([gray, yuv], [0, 1, 2], vs.YUV), format=vs.RGBS,
                             matrix_in_s=matrix_name)
    luma = core.std.SetFrameProps(pipelines[f"vs-mlrt core.ort.Model, --matrix {matrix_name}"], _Matrix=0)
    variants = {"L* kept (default)": rgb, "source luma put back (docs recipe b)": kept,
                f"--matrix {matrix_name}": luma}
    errors: dict[str, list[np.ndarray]] = {name: [] for name in variants}
    for n in np.linspace(0, args.frames - 1, 6).round().astype(int):
        want = np.clip(rgbs_planes(filtered.get_frame(int(n))), 0, 1)
        for name, clip in variants.items():
            errors[name].append(np.abs(np.clip(rgbs_planes(clip.get_frame(int(n))), 0, 1) - want))
    for name, errs in errors.items():
        e = np.stack(errs)
        print(f"vs-mlrt vs colorize, {name}: mean {e.mean():.4f}, p99 {np.percentile(e, 99):.4f}, "
              f"max {e.max():.4f} (sRGB [0, 1], 6 frames)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
