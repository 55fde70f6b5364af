"""A render job: INPUT opened with BestSource and colourized (:func:`prepare`), and a frame range of it encoded
(:func:`render_range`, the body of the single render and of each cluster chunk alike)."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from .arguments import RenderError, check_codec_options, check_files, check_references, frame_range
from .encode import Job, choose_codec, color_tags, encode_format, write
from .options import options_from_arguments


def prepare(args: argparse.Namespace) -> Job:
    """Check the arguments, open INPUT with BestSource and build the colourized clip (raises :class:`RenderError`).

    OUTPUT's extension and ``--codec`` choose the container and codec; nothing is written.
    """
    import vapoursynth as vs

    import vs_colorgan

    core = vs.core
    if not args.input.is_file():
        raise RenderError(f"INPUT {str(args.input)!r} is not a file")
    muxer, codec = choose_codec(args.output, args.codec)
    check_files(args)
    check_codec_options(args, codec)
    if args.threads < 0:
        raise RenderError(f"--threads must be 0 (all cores) or more, not {args.threads}")
    check_references(args.references)
    if args.threads:
        core.num_threads = args.threads
    if not hasattr(core, "bs"):
        raise RenderError("VapourSynth's BestSource plugin is missing: pip install vapoursynth-bestsource")

    try:
        src = core.bs.VideoSource(str(args.input))
    except vs.Error as e:
        raise RenderError(f"BestSource cannot open {str(args.input)!r}: {e}") from None
    start, end = frame_range(args, src.num_frames)
    try:
        colour = vs_colorgan.colorize(src, **options_from_arguments(args))
    except vs.Error as e:
        raise RenderError(str(e)) from None
    enc = encode_format(colour.format, codec, gray_source=src.format.color_family == vs.GRAY)
    if enc.convert_to is not None:
        if colour.format.color_family == vs.RGB:
            colour = core.resize.Bicubic(colour, format=enc.convert_to, matrix=1)
        else:  # depth or subsampling only: zimg leaves the matrix and range as they are
            colour = core.resize.Bicubic(colour, format=enc.convert_to)
    chunk = colour[start:end + 1]
    fps = Fraction(src.fps.numerator, src.fps.denominator) if src.fps.numerator else Fraction(25)
    first_props = chunk.get_frame(0).props
    return Job(input=args.input, muxer=muxer, codec=codec, enc=enc, clip=chunk, start=start, end=end,
               source_frames=src.num_frames, fps=fps, tags=color_tags(first_props))


def render_range(args: argparse.Namespace, start: int, stop: int, path: Path,
                 should_stop: Callable[[], bool] | None = None) -> int:
    """Render frames [start, stop) of the colourized INPUT, without audio, into ``path`` exactly as a single
    ``colorgan-render --start start --end stop-1 --no-audio`` writes them (container and codec by
    ``args.output``'s extension and ``--codec``); returns the number of frames written. No temporary, no rename:
    the caller owns ``path`` (the cluster render writes its chunks this way). ``should_stop``: see ``write``."""
    chunk_args = argparse.Namespace(**{**vars(args), "start": start, "end": stop - 1, "no_audio": True})
    job = prepare(chunk_args)
    return write(job, chunk_args, path, audio=False, bar=False, stop=should_stop)
