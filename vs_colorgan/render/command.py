"""``colorgan-render``: one command from a black-and-white film to a colourized one.

    colorgan-render INPUT OUTPUT [--model M] [--references DIR [--adapt]] [--start N --end M] [--codec h264|h265|ffv1]
                    [--crf N] [--preset P] [colorize options: --render-size, --temporal-radius, --backend ...]
                    [--workers N | --cluster ADDRESS] [--chunk-frames K] [--allow-mixed-hardware]

INPUT is decoded by VapourSynth's BestSource (``core.bs.VideoSource``), colourized by
:func:`vs_colorgan.colorize` and encoded with PyAV (FFmpeg's libraries, bundled in the ``av`` wheel: no
system ffmpeg needed). The codec follows OUTPUT's extension (``.mp4``/``.mov``/``.m4v``: H.264,
``.mkv``: FFV1, lossless) unless ``--codec`` names one. The colour tags of the output stream (matrix,
primaries, transfer, range) are those the filter writes on its frames; the source's first audio stream is
copied (transcoded to AAC only when the output container cannot hold its codec).

The file is written under a hidden temporary name in OUTPUT's folder (``.NAME.PID.XXXX.tmp``) and renamed
to OUTPUT only when complete: Ctrl-C, SIGTERM or an error remove it, and a SIGKILL's leftover is removed
by the next run (its writer's process id is gone). OUTPUT never exists half-written.

``--start N --end M`` (inclusive, like ``vspipe -s/-e``) render frames N..M of the colourized clip; the
filter is deterministic per frame, so chunks equal the same frames of a whole render, and with a lossless
codec (FFV1) the decoded chunks concatenate to the decoded whole exactly. Each chunk file starts at
timestamp 0, has only intra frames (FFV1) or starts with a key frame (H.264/H.265), and records its first
source frame in the container metadata (``vs_colorgan_start``), so chunks can be remuxed into one file.

``--adapt`` first fine-tunes the model on the ``--references`` keyframes (``colorgan-adapt``, through its
console-script wrapper), keeps the result as ``OUTPUT.adapted.safetensors`` and renders with it.

``--workers N`` / ``--cluster ADDRESS`` render the film in chunks on Ray (:mod:`vs_colorgan.render.cluster`), each
chunk through :func:`vs_colorgan.render.job.render_range`, and stitch them; FFV1 output equals the single render's byte for byte.

Exit status: 0 written; 1 rendering or encoding failed; 2 bad arguments; 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..model_io import atomic_path, clear_stale_temporaries
from .arguments import PROG, RenderError, Terminated, check_references, frame_number, terminated_on_signals
from .cluster import add_arguments as add_cluster_arguments
from .encode import CODECS, write
from .job import prepare
from .options import add_colorize_arguments


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog=PROG, description="Colourize a black-and-white video: BestSource -> vs_colorgan.colorize -> "
        "an encoded file (PyAV), with colour tags and the source's audio.",
        epilog="Codec by extension: .mp4/.mov/.m4v -> H.264, .mkv -> FFV1 (lossless). See README.md, "
               "section colorgan-render.")
    ap.add_argument("input", type=Path, help="the black-and-white video (anything FFmpeg decodes)")
    ap.add_argument("output", type=Path, help="the file to write (.mp4, .mov, .m4v or .mkv)")
    ap.add_argument("--start", type=frame_number, default=None, help="first frame to render (default 0)")
    ap.add_argument("--end", type=frame_number, default=None, help="last frame to render, inclusive (default: the last)")
    ap.add_argument("--codec", choices=tuple(CODECS), default=None, help="default: by the output's extension")
    ap.add_argument("--crf", type=int, default=None, help="H.264/H.265 quality, lower is better (default 18 / 20)")
    ap.add_argument("--preset", default="medium", help="x264/x265 speed preset (default medium)")
    ap.add_argument("--no-audio", action="store_true", help="do not copy the source's audio")
    ap.add_argument("--threads", type=int, default=0, help="VapourSynth threads (default: all cores)")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    add_colorize_arguments(ap, help_override={
        "model": "generator .safetensors or .onnx (default: the bundled model)",
        "references": "folder of colour reference images, passed to colorize(references=...)"})
    g = ap.add_argument_group("adapting the model first (colorgan-adapt)")
    g.add_argument("--adapt", action="store_true",
                   help="first fine-tune the model on the --references keyframes (colorgan-adapt), kept as "
                        "OUTPUT.adapted.safetensors, then render with it")
    g.add_argument("--adapt-steps", type=int, default=None, help="--adapt: colorgan-adapt's --steps")
    add_cluster_arguments(ap)
    return ap


def adapted_path(output: Path) -> Path:
    """Where ``--adapt`` keeps the adapted model: next to OUTPUT, for reuse with ``--model``."""
    return output.with_name(output.name + ".adapted.safetensors")


def adapt_first(args: argparse.Namespace) -> int:
    """``--adapt``: run ``colorgan-adapt`` (through its console-script wrapper: the filter package does not import
    the training tools) and point ``args.model`` at its result; returns its exit status."""
    from ..entry_points import adapt

    if args.references is None:
        raise RenderError("--adapt needs --references DIR (the painted keyframes to adapt to)")
    check_references(args.references)
    out = adapted_path(args.output)
    argv = [str(args.input), "--references", str(args.references), "--out", str(out)]
    argv += ["--base", str(args.model)] if args.model is not None else []
    argv += ["--steps", str(args.adapt_steps)] if args.adapt_steps is not None else []
    argv += ["--device", args.device] + (["-q"] if args.quiet else [])
    status = adapt(argv)
    if status == 0:
        args.model = out
        print(f"{PROG}: rendering with the adapted model {out} (reuse it with --model)", file=sys.stderr)
    return status


def render(args: argparse.Namespace) -> int:
    """The single render: OUTPUT written through a temporary that SIGTERM, Ctrl-C and errors remove."""
    job = prepare(args)
    for stale in clear_stale_temporaries(args.output):
        print(f"{PROG}: removed {stale.name}, left by an interrupted render", file=sys.stderr)
    with terminated_on_signals(), atomic_path(args.output) as tmp:
        write(job, args, tmp, audio=not args.no_audio, bar=not args.quiet)
    print(f"{PROG}: wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.adapt and (status := adapt_first(args)) != 0:
            return status
        if args.workers is not None or args.cluster is not None:
            from .cluster import render_cluster

            render_cluster(args)
            return 0
        return render(args)
    except RenderError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; {args.output} not written", file=sys.stderr)
        return 130
    except Terminated as e:
        print(f"{PROG}: terminated; {args.output} not written", file=sys.stderr)
        return 128 + int(e.args[0])
    except Exception as e:  # decoding, inference or encoding failed mid-way: say what, keep the traceback short
        print(f"{PROG}: error: {type(e).__name__}: {e}; {args.output} not written", file=sys.stderr)
        return 1
