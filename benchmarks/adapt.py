"""Does a model adapted to a film's painted keyframes colour its *unpainted* shots better? (colorgan-adapt)

    .venv/bin/python benchmarks/adapt.py --data DIR      # DIR: opencv-doc's examples/data (vtest.avi, tree.avi)

Films are cut from real colour material, shown to the filter as gray (the originals' luma) and scored against
the originals (PSNR over R'G'B', :func:`vs_colorgan.evaluate.metrics.psnr`):

* **multi-shot film**, 640x480, 30 frames a shot, shot / reverse shot: A = vtest 0-29, B = tree 0-29,
  C = a pan over scikit-image's chelsea, then A' = vtest 60-89, B' = tree 38-67, C' = the same pan 80 frames
  later (another part of the photo, zoomed), then three unrelated pans (astronaut, rocket, coffee). The first
  frame of A, B and C is painted (its true colour); every other shot is scored in automatic mode (no
  references) with the adapted model against the base model and the gray input.
* **single shot**: vtest (and tree), frame 0 painted, frames 50-99 (tree: 50-67) scored without references.
* **timing**: 10 keys at 854x480 (pans over 10 photographs), the default options, wall-clock seconds.

Everything is printed as markdown tables. ``--set NAME=VALUE`` overrides an AdaptOptions field (tuning).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import vs_colorgan  # noqa: E402
from references import gray_baseline, gray_of, pan_zoom, read_video, to_rgb  # noqa: E402
from vs_colorgan.evaluate.metrics import psnr  # noqa: E402
from vs_colorgan.training.adapt import AdaptOptions, adapt, save_adapted  # noqa: E402

SIZE = (640, 480)
SHOT = 30


@dataclass(frozen=True)
class Shot:
    name: str
    setup: str  # shots of one set-up share it; "unrelated" shots have a set-up no key shows
    frames: list
    painted: bool


def fit(frames: list[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    return [np.ascontiguousarray(cv2.resize(f, size, interpolation=cv2.INTER_AREA if f.shape[1] > size[0]
                                            else cv2.INTER_CUBIC)) for f in frames]


def photo(name: str) -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(getattr(data, name)())


def film(data_dir: Path) -> list[Shot]:
    vtest = fit(read_video(data_dir / "vtest.avi", 90), SIZE)
    tree = fit(read_video(data_dir / "tree.avi", 68), SIZE)
    chelsea = pan_zoom(photo("chelsea"), frames=120, size=SIZE)
    return [
        Shot("A  vtest 0-29", "vtest", vtest[0:30], True),
        Shot("B  tree 0-29", "tree", tree[0:30], True),
        Shot("C  chelsea pan 0-29", "chelsea", chelsea[0:30], True),
        Shot("A' vtest 60-89", "vtest", vtest[60:90], False),
        Shot("B' tree 38-67", "tree", tree[38:68], False),
        Shot("C' chelsea pan 80-109", "chelsea", chelsea[80:110], False),
        Shot("U1 astronaut pan", "unrelated", pan_zoom(photo("astronaut"), frames=SHOT, size=SIZE), False),
        Shot("U2 rocket pan", "unrelated", pan_zoom(photo("rocket"), frames=SHOT, size=SIZE), False),
        Shot("U3 coffee pan", "unrelated", pan_zoom(photo("coffee"), frames=SHOT, size=SIZE), False),
    ]


def render(gray, model: str | None) -> list[np.ndarray]:
    return to_rgb(vs_colorgan.colorize(gray, model=model))


# the base model adapted from and compared against (--base; None: the bundled model)
BASE: str | None = None


def adapted_model(gray, refs: dict, options: AdaptOptions, workdir: Path, name: str) -> tuple[str, object]:
    result = adapt(gray, refs, base=BASE, options=options, progress=False)
    path = workdir / f"{name}.safetensors"
    save_adapted(path, result, base=BASE, video=name, options=options)
    return str(path), result


def contact_sheet(path: Path, rows: list[tuple[str, int]], columns: list[tuple[str, list]], thumb: int = 200) -> None:
    """One row per (shot, frame), one column per variant, labelled; saved as a 256-colour PNG (small)."""
    from PIL import Image, ImageDraw

    h = thumb * SIZE[1] // SIZE[0]
    sheet = Image.new("RGB", (thumb * len(columns), (h + 16) * len(rows) + 16), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, (label, _) in enumerate(columns):
        draw.text((j * thumb + 4, 2), label, fill=(0, 0, 0))
    for i, (name, n) in enumerate(rows):
        y0 = 16 + i * (h + 16)
        draw.text((4, y0 + 2), f"{name}, frame {n} (unpainted shot)", fill=(0, 0, 0))
        for j, (_, frames) in enumerate(columns):
            sheet.paste(Image.fromarray(cv2.resize(frames[n], (thumb, h), interpolation=cv2.INTER_AREA)),
                        (j * thumb, y0 + 16))
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"contact sheet: {path} ({path.stat().st_size // 1024} KB)")


def film_report(data_dir: Path, options: AdaptOptions, workdir: Path, sheet: Path | None = None) -> None:
    shots = film(data_dir)
    frames = [f for s in shots for f in s.frames]
    starts = np.cumsum([0] + [len(s.frames) for s in shots])
    gray = gray_of(frames)
    refs = {int(starts[i]): s.frames[0] for i, s in enumerate(shots) if s.painted}
    model, result = adapted_model(gray, refs, options, workdir, "film")
    base_out, ours_out, gray_out = render(gray, BASE), render(gray, model), gray_baseline(gray)
    print(f"\nmulti-shot film {SIZE[0]}x{SIZE[1]}, {len(shots)} shots of {SHOT} frames, keys at {sorted(refs)}: "
          f"adapted in {result.seconds:.0f} s ({result.steps_run} steps, kept step {result.best_step}, held-out "
          f"loss {result.val_base:.4f} -> {result.val_best:.4f})\n")
    print("| shot | set-up | painted | gray dB | base dB | adapted dB | adapted − base | adapted − gray |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    groups: dict[str, list[float]] = {}
    for i, s in enumerate(shots):
        sl = slice(starts[i], starts[i + 1])
        score = {k: float(np.mean([psnr(o, t) for o, t in zip(out[sl], frames[sl])]))
                 for k, out in (("gray", gray_out), ("base", base_out), ("ours", ours_out))}
        kind = "painted shot" if s.painted else ("unrelated" if s.setup == "unrelated" else "unpainted, painted set-up")
        groups.setdefault(kind, []).append(score["ours"] - score["base"])
        print(f"| {s.name} | {s.setup} | {'key at frame 0' if s.painted else 'no'} | {score['gray']:.2f} | "
              f"{score['base']:.2f} | {score['ours']:.2f} | {score['ours'] - score['base']:+.2f} | "
              f"{score['ours'] - score['gray']:+.2f} |")
    if sheet is not None:
        rows = [(s.name, int(starts[i]) + len(s.frames) // 2) for i, s in enumerate(shots)
                if not s.painted and s.name[:2] in ("A'", "C'", "U2")]
        contact_sheet(sheet, rows, [("gray", gray_out), ("base model", base_out), ("adapted", ours_out),
                                    ("truth", frames)])
    print()
    for kind, deltas in groups.items():
        print(f"- {kind}: adapted − base {np.mean(deltas):+.2f} dB on average (min {min(deltas):+.2f})")


def single_report(data_dir: Path, name: str, options: AdaptOptions, workdir: Path) -> None:
    frames = read_video(data_dir / f"{name}.avi", 100)
    gray = gray_of(frames)
    model, result = adapted_model(gray, {0: frames[0]}, options, workdir, name)
    scored = slice(50, len(frames))
    rows = {k: float(np.mean([psnr(o, t) for o, t in zip(out[scored], frames[scored])]))
            for k, out in (("gray", gray_baseline(gray)), ("base", render(gray, BASE)), ("ours", render(gray, model)))}
    print(f"| {name} {frames[0].shape[1]}x{frames[0].shape[0]} | 0 | 50-{len(frames) - 1} | {rows['gray']:.2f} | "
          f"{rows['base']:.2f} | {rows['ours']:.2f} | {rows['ours'] - rows['base']:+.2f} | "
          f"{rows['ours'] - rows['gray']:+.2f} | {result.seconds:.0f} s ({result.steps_run} steps) |")


def timing_report(data_dir: Path, options: AdaptOptions) -> None:
    size = (854, 480)
    names = ["astronaut", "coffee", "chelsea", "rocket"]
    files = ["fruits.jpg", "baboon.jpg", "aloeL.jpg", "building.jpg", "orange.jpg", "home.jpg"]
    pictures = [photo(n) for n in names] + [np.ascontiguousarray(cv2.imread(str(data_dir / f))[..., ::-1])
                                            for f in files]
    frames, refs = [], {}
    for p in pictures:
        shot = pan_zoom(p, frames=4, size=size)
        refs[len(frames)] = shot[0]
        frames += shot
    gray = gray_of(frames)
    t0 = time.perf_counter()
    result = adapt(gray, refs, base=BASE, options=options, progress=False)
    total = time.perf_counter() - t0
    print(f"\ntiming: {len(refs)} keys at {size[0]}x{size[1]}: {total:.0f} s wall-clock ({result.steps_run} steps, "
          f"kept step {result.best_step}), options {options}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="opencv-doc's examples/data folder")
    ap.add_argument("--parts", default="film,single,timing", help="comma list: film, single, timing")
    ap.add_argument("--sheet", type=Path, default=None, help="film: save a before/after contact sheet PNG here")
    ap.add_argument("--base", default=None, help="base generator file to adapt and compare against (default: bundled)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override an AdaptOptions field")
    args = ap.parse_args()
    global BASE
    BASE = args.base
    options = AdaptOptions()
    kinds = {f.name: f.type for f in fields(AdaptOptions)}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in kinds:
            raise SystemExit(f"--set: {key!r} is not one of {', '.join(sorted(kinds))}")
        current = getattr(options, key)
        options = replace(options, **{key: float(value) if current is None else type(current)(value)})
    print(f"base: {BASE or 'the bundled model'}; options: {options}", flush=True)
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "film" in parts:
            film_report(args.data, options, work, args.sheet)
        if "single" in parts:
            print("\n| clip | painted | scored | gray dB | base dB | adapted dB | adapted − base | "
                  "adapted − gray | "
                  "adaptation |")
            print("|---|---|---|---:|---:|---:|---:|---:|---|")
            for name in ("vtest", "tree"):
                single_report(args.data, name, options, work)
        if "timing" in parts:
            timing_report(args.data, options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
