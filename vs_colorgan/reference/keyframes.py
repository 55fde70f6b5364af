"""``colorgan-keyframes VIDEO --out DIR``: the frames a user should colour for ``colorize(references=DIR)``.

Writes the first frame of every shot (and, with ``--every N``, every N-th frame of a shot) as a gray
``ref_NNNNNN.png`` (three equal channels, so paint programs open it in RGB mode), and a contact sheet of them.
Shots are found exactly as the filter finds them (:func:`scene_cuts`): ``_SceneChangePrev``/``_SceneChangeNext``
frame properties where the source has them, else the mean absolute L* difference between consecutive frames on
the filter's work grid (:func:`vs_colorgan.temporal.scene_cut` on
:func:`vs_colorgan.pipeline.render_luma`) above ``--scene-threshold``.

    colorgan-keyframes film.mkv --out refs/            # then colour refs/ref_*.png, delete the ones not coloured
    colorgan-keyframes film.mkv --out refs/ --every 120
    colorgan-keyframes film.mkv --out next/ --suggest 5 --model film.safetensors   # after colorgan-adapt: paint next

Nothing goes to stdout but the summary line; progress and problems go to stderr.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import vapoursynth as vs

from ..filter import render_luma_clip
from ..formats import frame_range_is_full, luma_to_unit
from ..color import MATRIX_COEFFICIENTS
from ..errors import ColorizeError
from ..model_io import DEFAULT_MODEL, ModelFileError, check_render_size, read_config
from ..networks import LOG_VAR_RANGE
from ..pipeline import render_luma, render_shape
from ..temporal import cut_flag, scene_cut

log = logging.getLogger("vs_colorgan")
SHEET_COLUMNS = 6
SHEET_THUMB = 240  # thumbnail width on the contact sheet, pixels
SHEET_PAGE = 60  # thumbnails per sheet


def scene_cuts(clip: vs.VideoNode, *, render_size: int, multiple: int, scene_threshold: float) -> Iterator[tuple[int, bool]]:
    """(n, cut before n) for every frame of ``clip`` (frame 0 counts as a cut), as the filter decides them."""
    core = vs.core
    luma = core_luma(clip)
    rw, rh = render_shape(clip.width, clip.height, render_size, multiple)
    small = render_luma_clip(luma, rw, rh)  # what filter.build feeds stage 1
    prev_frame, prev_l = None, None
    for n, frame in enumerate(small.frames()):
        y = torch.from_numpy(np.array(frame[0], dtype=np.float32, copy=True))[None, None]
        l_work = render_luma(y).l_work
        cut = prev_frame is None or scene_cut(cut_flag(frame.props, prev_frame.props), lambda: (l_work, prev_l),
                                              scene_threshold=scene_threshold)
        yield n, cut
        prev_frame, prev_l = frame, l_work


def keyframe_numbers(clip: vs.VideoNode, *, render_size: int, multiple: int, scene_threshold: float,
                     every: int | None = None) -> list[int]:
    """The first frame of every shot, plus every ``every``-th frame of a shot counted from its start."""
    keys, start = [], 0
    for n, cut in scene_cuts(clip, render_size=render_size, multiple=multiple, scene_threshold=scene_threshold):
        if cut:
            start = n
        if cut or (every and (n - start) % every == 0):
            keys.append(n)
    return keys


def gray_image(frame: vs.VideoFrame) -> np.ndarray:
    """A frame's luma as an 8-bit full-range gray image (h, w, 3): the Y' the filter compares a reference with."""
    fmt = frame.format
    if fmt.color_family == vs.RGB:  # the filter converts RGB to YUV with BT.709 (or matrix=)
        rgb = np.dstack([np.asarray(frame[p]) for p in range(3)]).astype(np.float32)
        scale = 1.0 if fmt.sample_type == vs.FLOAT else float((1 << fmt.bits_per_sample) - 1)
        kr, kb = MATRIX_COEFFICIENTS[1]  # BT.709
        y = (kr * rgb[..., 0] + (1.0 - kr - kb) * rgb[..., 1] + kb * rgb[..., 2]) / scale
    else:
        is_float = fmt.sample_type == vs.FLOAT
        y = luma_to_unit(np.asarray(frame[0]), bits=fmt.bits_per_sample, is_float=is_float,
                         full_range=frame_range_is_full(frame.props, is_float))[0, 0].numpy()
    gray = np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def contact_sheets(images: list[tuple[int, np.ndarray]], out: Path) -> list[Path]:
    """Thumbnails with their frame numbers, :data:`SHEET_COLUMNS` across, :data:`SHEET_PAGE` per sheet."""
    import cv2

    paths = []
    for page in range(math.ceil(len(images) / SHEET_PAGE)):
        chunk = images[page * SHEET_PAGE:(page + 1) * SHEET_PAGE]
        h, w = chunk[0][1].shape[:2]
        th = max(1, round(h * SHEET_THUMB / w))
        rows = math.ceil(len(chunk) / SHEET_COLUMNS)
        sheet = np.full((rows * (th + 24), SHEET_COLUMNS * (SHEET_THUMB + 8), 3), 32, np.uint8)
        for i, (n, img) in enumerate(chunk):
            r, c = divmod(i, SHEET_COLUMNS)
            y0, x0 = r * (th + 24) + 20, c * (SHEET_THUMB + 8) + 4
            sheet[y0:y0 + th, x0:x0 + SHEET_THUMB] = cv2.resize(img, (SHEET_THUMB, th), interpolation=cv2.INTER_AREA)
            cv2.putText(sheet, f"ref_{n:06d}", (x0, y0 - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 230, 230), 1,
                        cv2.LINE_AA)
        name = "contact_sheet.png" if len(images) <= SHEET_PAGE else f"contact_sheet_{page + 1:02d}.png"
        cv2.imwrite(str(out / name), sheet)
        paths.append(out / name)
    return paths


def export_keyframes(clip: vs.VideoNode, out: Path, *, render_size: int, multiple: int,
                     scene_threshold: float = 10.0, every: int | None = None) -> list[int]:
    """Write ``ref_NNNNNN.png`` for the keyframes of ``clip`` and the contact sheet(s) into ``out``.

    >>> export_keyframes(core.bs.VideoSource("film.mkv"), Path("refs"), render_size=256, multiple=16)
    """
    import cv2

    keys = keyframe_numbers(clip, render_size=render_size, multiple=multiple, scene_threshold=scene_threshold,
                            every=every)
    out.mkdir(parents=True, exist_ok=True)
    images = []
    for n in keys:
        img = gray_image(clip.get_frame(n))
        cv2.imwrite(str(out / f"ref_{n:06d}.png"), img)
        images.append((n, img))
    contact_sheets(images, out)
    return keys


@torch.no_grad()
def unsureness(net: torch.nn.Module, arch: str, l_norm: torch.Tensor) -> float:
    """How little the model knows this picture, in [0, 1] for an adapted model (the share of the picture its
    gate gives to the base model: unlike every painted key), else the mean predicted ab error (confidence
    head, ab_norm units; 0 for a model without one)."""
    if arch == "unet-adapted":
        return float(1.0 - net.gate(net.base.encoder(l_norm)[4], l_norm.shape[-2:]).mean())
    distribution = getattr(net, "distribution", None)
    log_var = distribution(l_norm)[1] if distribution is not None else None
    return 0.0 if log_var is None else float(log_var.clamp(*LOG_VAR_RANGE).exp().sqrt().mean())


def suggest_shots(clip: vs.VideoNode, model: Path, *, render_size: int, scene_threshold: float,
                  count: int) -> list[tuple[int, float]]:
    """The ``count`` shots to paint next, as (first frame, unsureness), most unsure first: each shot scored on its
    first and middle frames by :func:`unsureness`."""
    from ..model_io import load_generator

    net, config = load_generator(model)
    starts = keyframe_numbers(clip, render_size=render_size, multiple=config.size_multiple,
                              scene_threshold=scene_threshold)
    luma = core_luma(clip)
    rw, rh = render_shape(clip.width, clip.height, render_size, config.size_multiple)
    small = render_luma_clip(luma, rw, rh)
    ends = starts[1:] + [clip.num_frames]
    scores = []
    for start, end in zip(starts, ends, strict=True):
        frames = sorted({start, (start + end - 1) // 2})
        values = []
        for n in frames:
            y = torch.from_numpy(np.array(small.get_frame(n)[0], dtype=np.float32, copy=True))[None, None]
            values.append(unsureness(net, config.arch, render_luma(y).l_norm))
        scores.append((start, float(np.mean(values))))
    return sorted(scores, key=lambda s: (-s[1], s[0]))[:count]


def core_luma(clip: vs.VideoNode) -> vs.VideoNode:
    """The luma plane the filter reads (RGB: BT.709 Y')."""
    core = vs.core
    return core.std.ShufflePlanes(clip, 0, vs.GRAY) if clip.format.color_family != vs.RGB else \
        core.resize.Point(clip, format=vs.GRAYS, matrix=1)


def write_suggestions(clip: vs.VideoNode, out: Path, suggestions: list[tuple[int, float]]) -> list[Path]:
    """The suggested shots' first frames as gray ``ref_NNNNNN.png`` (never over an existing one: it may be
    painted already) and ``suggested.txt`` (frame, unsureness), most unsure first."""
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for n, _ in suggestions:
        path = out / f"ref_{n:06d}.png"
        if not path.exists() and not path.with_suffix(".jpg").exists():
            cv2.imwrite(str(path), gray_image(clip.get_frame(n)))
            written.append(path)
    (out / "suggested.txt").write_text("".join(f"{n} {score:.4f}\n" for n, score in suggestions))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="colorgan-keyframes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path, help="the black-and-white video (read with VapourSynth's bestsource)")
    parser.add_argument("--out", type=Path, required=True, help="folder for ref_NNNNNN.png and contact_sheet.png")
    parser.add_argument("--every", type=int, default=None, metavar="N", help="also every N-th frame of each shot")
    parser.add_argument("--scene-threshold", type=float, default=10.0,
                        help="mean |delta L*| between frames that counts as a cut (colorize's scene_threshold)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help="the generator colorize will use (its render size sets the detection grid)")
    parser.add_argument("--render-size", type=int, default=None, help="colorize's render_size, if you set one")
    parser.add_argument("--suggest", type=int, default=None, metavar="N",
                        help="only the N shots --model is least sure of (an adapted model: least like its painted "
                             "keys); existing ref files are kept")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    if args.every is not None and args.every < 1:
        parser.error(f"--every must be a positive number of frames, not {args.every}")
    if not args.scene_threshold > 0:
        parser.error(f"--scene-threshold must be positive, not {args.scene_threshold}")
    try:
        config = read_config(args.model)
    except ModelFileError as e:
        parser.error(f"--model: {e}")
    size = args.render_size or config.render_size
    try:
        check_render_size(size, config.size_multiple, name="--render-size")
    except ColorizeError as e:
        parser.error(str(e))
    if not args.video.is_file():
        parser.error(f"{args.video}: no such file")
    core = vs.core
    if not hasattr(core, "bs"):
        parser.error("the bestsource plugin is missing: pip install vapoursynth-bestsource")
    try:
        clip = core.bs.VideoSource(str(args.video))
    except vs.Error as e:
        parser.error(f"{args.video}: cannot be read: {e}")
    if args.suggest is not None:
        if args.suggest < 1:
            parser.error(f"--suggest must be a positive number of shots, not {args.suggest}")
        suggestions = suggest_shots(clip, args.model, render_size=size, scene_threshold=args.scene_threshold,
                                    count=args.suggest)
        written = write_suggestions(clip, args.out, suggestions)
        print(f"paint next: {', '.join(f'{n} ({score:.2f})' for n, score in suggestions)} (frame (unsureness), "
              f"{args.out / 'suggested.txt'}); {len(written)} new gray ref files in {args.out}")
        return 0
    keys = export_keyframes(clip, args.out, render_size=size, multiple=config.size_multiple,
                            scene_threshold=args.scene_threshold, every=args.every)
    print(f"{len(keys)} keyframes of {clip.num_frames} frames written to {args.out}: colour them (or paint strokes "
          f"on a transparent layer), delete the ones you do not colour, then colorize(clip, references={str(args.out)!r})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
