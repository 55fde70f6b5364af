"""Colour from keyframes (issue 9): quality against the gray baseline and the automatic model, and speed.

    .venv/bin/python benchmarks/references.py --data data/opencv-doc/usr/share/doc/opencv-doc/examples/data
    .venv/bin/python benchmarks/references.py --tune          # synthetic pan/zoom clips only (tuning set)

Figures printed (PSNR over R'G'B' 8-bit against the colour original, per frame, then averaged):

* vtest and tree, first 100 frames (tree has 68), the original's frame 0 as the only reference: mean
  ΔPSNR against the gray baseline (the luma alone, neutral chroma), the worst 10-frame span against gray
  and against the automatic model, and the same with a reference every 50 frames; ΔE00 (CIEDE2000, mean over
  the frame) of the keyframe against its reference.
* a pan-and-zoom clip cut from a large photograph (opencv-doc's aloeL.jpg, 1282x1110), 120 frames, 640x360,
  the key at frame 0 only: ΔPSNR against gray by distance from the key.
* speed at 480p and 1080p, one key, beside the automatic mode, 2 VapourSynth threads, alternating rounds.

``--tune`` runs the same pan/zoom measure on photographs the report does not use (scikit-image's coffee,
rocket and astronaut): the propagation constants (vs_colorgan.reference.propagate.PropagationOptions) were set there.
Source clips are read with OpenCV; the gray input is their luma (SMPTE 170M, limited range, GRAY8).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import cv2
import numpy as np
import vapoursynth as vs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import vs_colorgan  # noqa: E402
from vs_colorgan.reference import propagate  # noqa: E402

core = vs.core


# ------------------------------------------------------------------------------------------------ clips
def read_video(path: Path, frames: int) -> list[np.ndarray]:
    """The first ``frames`` frames of a video as uint8 R'G'B' (h, w, 3)."""
    cap = cv2.VideoCapture(str(path))
    out = []
    while len(out) < frames:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(np.ascontiguousarray(bgr[..., ::-1]))
    if not out:
        raise SystemExit(f"cannot read {path}")
    return out


def pan_zoom(photo: np.ndarray, *, frames: int = 120, size: tuple[int, int] = (640, 360),
             zoom: tuple[float, float] = (1.0, 1.4), travel: float = 0.3) -> list[np.ndarray]:
    """A camera moving over ``photo`` (uint8 RGB): the crop window (60 % of the photo's width at first) slides
    by ``travel`` of the photo's width (and a third of that down) while it narrows by the ``zoom`` ratio; each
    crop resized to ``size``. 100 frames from the start a fifth of the picture was never in frame 0."""
    h, w = photo.shape[:2]
    ow, oh = size
    base = min(w * 0.6 / ow, h * 0.8 / oh)  # photo pixels per output pixel at zoom 1
    out = []
    for n in range(frames):
        t = n / max(1, frames - 1)
        scale = base / (zoom[0] + (zoom[1] - zoom[0]) * t)  # photo pixels per output pixel (<= ~1: no aliasing)
        x0 = (w - base * ow) * 0.05 + travel * w * t
        y0 = (h - base * oh) * 0.1 + travel * h / 3 * t
        m = np.array([[1 / scale, 0, -x0 / scale], [0, 1 / scale, -y0 / scale]], np.float32)
        out.append(cv2.warpAffine(photo, m, (ow, oh), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
    return out


def occluders(photo: np.ndarray, other: np.ndarray, *, frames: int = 120, size: tuple[int, int] = (320, 180),
              count: int = 3) -> list[np.ndarray]:
    """A slow pan over ``photo`` with ``count`` patches of ``other`` crossing it at different speeds: moving
    objects that hide and then uncover the background (tuning clip for occlusion handling)."""
    background = pan_zoom(photo, frames=frames, size=size, zoom=(1.0, 1.1), travel=0.1)
    ow, oh = size
    patch = cv2.resize(other, (ow // 4, oh // 3), interpolation=cv2.INTER_AREA)
    ph, pw = patch.shape[:2]
    out = []
    for n, bg in enumerate(background):
        f = bg.copy()
        for i in range(count):
            x = int((ow + pw) * ((0.1 + 0.3 * i + n * (0.004 + 0.003 * i)) % 1.0)) - pw
            y = int((oh - ph) * (0.15 + 0.35 * i)) % max(1, oh - ph)
            x0, x1 = max(0, x), min(ow, x + pw)
            if x1 > x0:
                f[y:y + ph, x0:x1] = patch[:, x0 - x:x1 - x]
        out.append(f)
    return out


def rgb_clip(frames: list[np.ndarray]) -> vs.VideoNode:
    h, w = frames[0].shape[:2]
    blank = core.std.BlankClip(format=vs.RGB24, width=w, height=h, length=len(frames))

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        for p in range(3):
            np.copyto(np.asarray(out[p]), frames[n][..., p])
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def gray_of(frames: list[np.ndarray]) -> vs.VideoNode:
    """The black-and-white input: the originals' luma, SMPTE 170M limited range, GRAY8."""
    gray = core.resize.Bicubic(rgb_clip(frames), format=vs.GRAY8, matrix_s="170m")
    return core.std.SetFrameProps(gray, _Matrix=6)


def to_rgb(clip: vs.VideoNode) -> list[np.ndarray]:
    rgb = core.resize.Bicubic(clip, format=vs.RGB24)
    return [np.dstack([np.asarray(f[p]) for p in range(3)]) for f in rgb.frames()]


def gray_baseline(gray: vs.VideoNode) -> list[np.ndarray]:
    out = []
    for f in gray.frames():
        y = (np.asarray(f[0]).astype(np.float32) - 16.0) * (255.0 / 219.0)
        out.append(np.repeat(np.clip(y + 0.5, 0, 255).astype(np.uint8)[..., None], 3, axis=2))
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10.0 * math.log10(255.0 ** 2 / max(mse, 1e-10))


def delta_e00(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).mean())


def worst_span(values: np.ndarray, span: int = 10) -> float:
    if len(values) < span:
        return float(values.mean())
    return float(np.convolve(values, np.ones(span) / span, mode="valid").min())


# ------------------------------------------------------------------------------------------------ measures
def render(gray: vs.VideoNode, model: str | None, references: dict | None) -> list[np.ndarray]:
    return to_rgb(vs_colorgan.colorize(gray, model=model, references=references))


def clip_report(name: str, frames: list[np.ndarray], model: str | None) -> None:
    gray = gray_of(frames)
    base = np.array([psnr(g, t) for g, t in zip(gray_baseline(gray), frames)])
    auto = np.array([psnr(o, t) for o, t in zip(render(gray, model, None), frames)])
    for label, keys in (("key at 0", [0]), ("keys every 50", list(range(0, len(frames), 50)))):
        out = render(gray, model, {k: frames[k] for k in keys})
        ours = np.array([psnr(o, t) for o, t in zip(out, frames)])
        d_gray, d_auto = ours - base, ours - auto
        de = delta_e00(out[0], frames[0])
        print(f"{name:6s} {label:14s} frames {len(frames):3d}: ΔPSNR vs gray {d_gray.mean():+6.2f} dB "
              f"(ours {ours.mean():.2f}, gray {base.mean():.2f}, automatic {auto.mean():.2f}); "
              f"worst 10-frame span vs gray {worst_span(d_gray):+6.2f}, vs automatic {worst_span(d_auto):+6.2f}; "
              f"keyframe ΔE00 {de:.2f}", flush=True)


def pan_report(name: str, frames: list[np.ndarray], model: str | None, with_automatic: bool = False) -> None:
    gray = gray_of(frames)
    base = np.array([psnr(g, t) for g, t in zip(gray_baseline(gray), frames)])
    out = render(gray, model, {0: frames[0]})
    ours = np.array([psnr(o, t) for o, t in zip(out, frames)])
    bins = [(1, 10), (11, 25), (26, 50), (51, 75), (76, 100), (101, len(frames) - 1)]

    def cells(d: np.ndarray) -> str:
        return " ".join(f"{a}-{b}: {d[a:b + 1].mean():+5.2f}" for a, b in bins if a < len(frames))

    print(f"pan {name:10s} ΔPSNR vs gray by distance from the key (dB): {cells(ours - base)}; "
          f"mean {(ours - base)[1:].mean():+5.2f}", flush=True)
    if with_automatic:
        auto = np.array([psnr(o, t) for o, t in zip(render(gray, model, None), frames)])
        print(f"pan {name:10s} automatic model, ΔPSNR vs gray:              {cells(auto - base)}", flush=True)


def speed_report(photo: np.ndarray, model: str | None, frames: int = 48, warmup: int = 4,
                 sizes: tuple[tuple[int, int], ...] = ((854, 480), (1920, 1080)), rounds: int = 3) -> None:
    """fps of one key against the automatic mode on the pan clip, 2 VapourSynth threads, in ``rounds``
    alternating rounds (medians), with the load average beside them."""
    import statistics

    core.num_threads = 2
    for w, h in sizes:
        clip = gray_of(pan_zoom(photo, frames=frames + warmup, size=(w, h)))
        ref = pan_zoom(photo, frames=1, size=(w, h))[0]
        load = [open("/proc/loadavg").read().split()[0]]
        fps: dict[str, list[float]] = {"automatic": [], "one key": []}
        for r in range(rounds):
            for label in (("automatic", "one key") if r % 2 == 0 else ("one key", "automatic")):
                out = vs_colorgan.colorize(clip, model=model, references=None if label == "automatic" else {0: ref})
                for n in range(warmup):
                    out.get_frame(n)
                t = time.perf_counter()
                for _ in out[warmup:].frames():
                    pass
                fps[label].append(frames / (time.perf_counter() - t))
        load.append(open("/proc/loadavg").read().split()[0])
        auto, key = statistics.median(fps["automatic"]), statistics.median(fps["one key"])
        print(f"speed {w}x{h}, 2 threads, medians of {rounds} alternating rounds: automatic {auto:5.2f} fps, "
              f"one key {key:5.2f} fps, x{key / auto:.2f} (load average {load[0]} before, {load[1]} after)",
              flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="opencv-doc's examples/data folder (vtest.avi, tree.avi, aloeL.jpg)")
    parser.add_argument("--model", help="generator file (default: the bundled model)")
    parser.add_argument("--tune", action="store_true", help="pan/zoom clips of the tuning photographs only")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a PropagationOptions field (tuning)")
    parser.add_argument("--automatic", action="store_true", help="--tune: also the automatic model's figures")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: clips,pan,speed")
    args = parser.parse_args()
    names = {f.name for f in fields(propagate.PropagationOptions)}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in names:
            raise SystemExit(f"--set: {key!r} is not one of {', '.join(sorted(names))}")
        kind = type(getattr(propagate.DEFAULT_OPTIONS, key))
        propagate.DEFAULT_OPTIONS = replace(propagate.DEFAULT_OPTIONS, **{key: kind(value)})
    print(f"options: {propagate.DEFAULT_OPTIONS}", flush=True)
    if args.tune:
        from skimage import data

        for name in ("coffee", "rocket", "astronaut"):
            photo = getattr(data, name)()
            pan_report(name, pan_zoom(photo, frames=120, size=(320, 180)), args.model, args.automatic)
        pan_report("occluders", occluders(data.rocket(), data.chelsea()), args.model, args.automatic)
        return 0
    if args.data is None:
        raise SystemExit("--data is required (opencv-doc's examples/data folder), unless --tune")
    skip = set(args.skip.split(","))
    if "clips" not in skip:
        clip_report("vtest", read_video(args.data / "vtest.avi", 100), args.model)
        clip_report("tree", read_video(args.data / "tree.avi", 100), args.model)
    photo = cv2.imread(str(args.data / "aloeL.jpg"))[..., ::-1]
    if "pan" not in skip:
        pan_report("aloeL", pan_zoom(np.ascontiguousarray(photo)), args.model)
    if "speed" not in skip:
        speed_report(np.ascontiguousarray(photo), args.model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
