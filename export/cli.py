"""``colorgan-export``: a generator checkpoint -> an ONNX file, checked against PyTorch before it lands.

    colorgan-export CHECKPOINT [-o MODEL.onnx] [--target native|vsmlrt] [--fp16] [--opset 17]
                    [--simplify] [--render-size N] [--matrix 709|170m|...] [--threads N] [--no-check]

CHECKPOINT is a generator ``.safetensors`` (vs_colorgan.model_io format) or a training run folder
(its ``generator.safetensors``). The export is written to a temporary file next to the output,
checked with ONNX Runtime against the PyTorch model (random inputs and real images; see
``export/verify.py`` for the tolerances), and only then renamed into place: on any error, or a
parity failure, no ``.onnx`` (and no temporary file) is left behind.

Exit status: 0 written and within tolerance; 1 parity failure (nothing written); 2 bad arguments
or an unreadable checkpoint.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vs_colorgan.backends import sha256_file
from vs_colorgan.formats import MATRIX_ALIASES
from vs_colorgan.model_io import ModelFileError, load_generator
from vs_colorgan.model_io import resolve_generator_path as resolve_checkpoint

from .onnx_export import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, SOURCE_KEY, TARGETS, export_onnx, read_export_info
from .verify import ParityError, verify_onnx

PROG = "colorgan-export"


def default_output(checkpoint: Path, *, target: str, fp16: bool) -> Path:
    """``RUN/generator.safetensors`` -> ``RUN/generator[_vsmlrt][_fp16].onnx``."""
    suffix = ("_vsmlrt" if target == "vsmlrt" else "") + ("_fp16" if fp16 else "")
    return checkpoint.with_name(checkpoint.stem + suffix + ".onnx")


def _opset(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer from {MIN_OPSET} to {MAX_OPSET}, not {text!r}") from None
    if not MIN_OPSET <= value <= MAX_OPSET:
        raise argparse.ArgumentTypeError(f"must be from {MIN_OPSET} to {MAX_OPSET}, not {value}")
    return value


def _matrix(text: str) -> int:
    value = MATRIX_ALIASES.get(text.lower())
    if value is None and text.isdigit() and int(text) in MATRIX_ALIASES.values():
        value = int(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(MATRIX_ALIASES)} or 1, 4, 5, 6, 7, 9, not {text!r}")
    return value


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (all cores) or a positive integer, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description="Export a vs_colorgan generator checkpoint to ONNX, "
                                 "checked against PyTorch with ONNX Runtime before it is written.",
                                 epilog="See docs/export.md for using the files in vs-mlrt and onnxruntime.")
    ap.add_argument("checkpoint", type=Path, help="generator .safetensors, or a training run folder")
    ap.add_argument("-o", "--output", type=Path, default=None,
                    help="the .onnx to write (default: next to the checkpoint, named after it and the options)")
    ap.add_argument("--target", choices=TARGETS, default="native",
                    help="native: l (L_norm) -> ab (ab_norm) for vs_colorgan.colorize(backend='ort'); "
                         "vsmlrt: GRAYS -> RGBS for vs-mlrt's core.ort.Model (default: native)")
    ap.add_argument("--fp16", action="store_true", help="float16 weights and arithmetic (inputs/outputs stay float32)")
    ap.add_argument("--opset", type=_opset, default=DEFAULT_OPSET, help=f"ONNX opset, {MIN_OPSET}-{MAX_OPSET} (default {DEFAULT_OPSET})")
    ap.add_argument("--simplify", action="store_true",
                    help="run onnxslim on the graph (fewer nodes; no measurable speed change in ONNX Runtime)")
    ap.add_argument("--render-size", type=int, default=None,
                    help="vsmlrt only: short side the model runs at (default: the checkpoint's render_size)")
    ap.add_argument("--matrix", type=_matrix, default=None,
                    help="vsmlrt only: keep the input as Y' of this YCbCr matrix, like the filter (709, 170m, "
                         "470bg, 240m, 2020, fcc, or its ITU-T H.273 number); default: keep the input's L*")
    ap.add_argument("--threads", type=_threads, default=0, help="ONNX Runtime threads for the check (default: all cores)")
    ap.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime parity check (not recommended)")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.render_size is not None and args.target != "vsmlrt":
        ap.error("--render-size applies to --target vsmlrt only (the native model takes the filter's render size)")
    if args.matrix is not None and args.target != "vsmlrt":
        ap.error("--matrix applies to --target vsmlrt only (the filter reads the matrix from the frames)")
    try:
        checkpoint = resolve_checkpoint(args.checkpoint)
        model, config = load_generator(checkpoint)
    except ModelFileError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    out = args.output or default_output(checkpoint, target=args.target, fp16=args.fp16)
    if out.suffix != ".onnx":
        ap.error(f"-o/--output must end in .onnx, not {str(out)!r}")
    options = dict(target=args.target, fp16=args.fp16, render_size=args.render_size, matrix=args.matrix)
    reports = []

    def check(tmp: str) -> None:
        reports.append(verify_onnx(tmp, model, config, threads=args.threads, strict=False, **options))
        if not reports[-1].passed:
            raise ParityError(reports[-1])

    start = time.perf_counter()
    try:
        export_onnx(model, config, out, opset=args.opset, simplify=args.simplify,
                    extra_metadata={SOURCE_KEY: sha256_file(checkpoint)},
                    check=None if args.no_check else check, **options)
    except ValueError as e:  # option errors from export_onnx (render size, opset)
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # output folder not writable, output path is a folder, disk full ...
        print(f"{PROG}: error: cannot write {out}: {e}", file=sys.stderr)
        return 2
    except ParityError as e:
        print("\n".join(e.report.lines()), file=sys.stderr)
        print(f"{PROG}: error: {e}; {out} not written", file=sys.stderr)
        return 1
    info = read_export_info(out)
    cfg = info.config
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - start:.1f} s): {cfg.arch} width {cfg.width}, "
          f"preset {cfg.preset or '-'}, render size {cfg.render_size}, interface {info.interface}, {info.precision}, "
          f"opset {info.opset}, simplified: {info.metadata.get('vs_colorgan.simplified', 'no')}"
          + (f", keeps {info.metadata.get('vs_colorgan.luma')}" if info.interface == "vsmlrt" else ""))
    print(f"  inputs {', '.join(info.input_names)} -> outputs {', '.join(info.output_names)}")
    if reports:
        print("\n".join(reports[-1].lines()))
    else:
        print("  parity check skipped (--no-check)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
