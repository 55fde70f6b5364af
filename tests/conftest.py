"""Helpers the test modules share: tiny models, generated frames and clips built from arrays.

Plain functions (imported with ``from conftest import ...``), not fixtures: several are called with
arguments, inside other helpers, or from scripts that vspipe runs in another process.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import vapoursynth as vs
from skimage import data
from skimage.color import rgb2gray
from skimage.transform import resize

from vs_colorgan.export.onnx_export import export_onnx
from vs_colorgan.model_io import ModelConfig, save_generator
from vs_colorgan.networks import build_generator

core = vs.core
RS = 64  # the smallest render size: fast tests
TINY = dict(width=8, d_width=8, image_size=64, batch_size=2, threads=1, val_batches=1, log_every=1)  # training options


# ---- clips

def run_vspipe(script: Path, *args: str, timeout: float = 300) -> bytes:
    """``vspipe ARGS SCRIPT -`` with this virtual environment's vspipe (its bin first on PATH, as activated):
    the raw frames on stdout, after checking that it succeeded."""
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
           "VIRTUAL_ENV": str(venv_bin.parent)}
    done = subprocess.run([str(venv_bin / "vspipe"), *args, str(script), "-"], env=env, capture_output=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def frames_clip(frames: list[np.ndarray], **props) -> vs.VideoNode:
    """A clip whose frame n is ``frames[n]``, its format from the arrays: (h, w) uint8 -> GRAY8, (h, w) float32
    -> GRAYS, (h, w, 3) uint8 -> RGB24; 24 fps; ``props`` set on every frame."""
    first = frames[0]
    if first.ndim == 3:
        fmt = vs.RGB24
    else:
        fmt = vs.GRAYS if first.dtype == np.float32 else vs.GRAY8
    h, w = first.shape[:2]
    blank = core.std.BlankClip(format=fmt, width=w, height=h, length=len(frames), fpsnum=24, fpsden=1)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        out = f.copy()
        arr = frames[n]
        for p in range(out.format.num_planes):
            np.copyto(np.asarray(out[p]), arr[..., p] if arr.ndim == 3 else arr)
        out.props.update(props)
        return out

    return core.std.ModifyFrame(blank, blank, fill)


def planes(frame: vs.VideoFrame) -> np.ndarray:
    """A frame's planes stacked (num_planes, h, w), copied."""
    return np.stack([np.asarray(frame[p]) for p in range(frame.format.num_planes)])


def gray_clip(frames: list[np.ndarray]) -> vs.VideoNode:
    """RGB frames' luma (SMPTE 170M, limited range) as GRAY8: the black-and-white input."""
    return core.std.SetFrameProps(core.resize.Bicubic(frames_clip(frames), format=vs.GRAY8, matrix_s="170m"), _Matrix=6)


def chroma(frame: vs.VideoFrame) -> np.ndarray:
    """Cb, Cr planes (h, w, 2) as signed values around 128."""
    return np.dstack([np.asarray(frame[1]).astype(np.int32) - 128, np.asarray(frame[2]).astype(np.int32) - 128])


def expected_chroma(rgb: np.ndarray) -> np.ndarray:
    """Cb, Cr of an RGB image through zimg (the values a keyframe should carry)."""
    yuv = core.resize.Point(frames_clip([rgb]), format=vs.YUV444P8, matrix_s="170m").get_frame(0)
    return chroma(yuv)


# ---- frames

def gray_frames(count: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    """A slow pan over the astronaut, with a little grain: uint8 (height, width) frames."""
    rng = np.random.default_rng(seed)
    base = resize(rgb2gray(data.astronaut()), (height + 8, width + count + 8), anti_aliasing=True) * 255
    out = []
    for i in range(count):
        crop = base[4:4 + height, i:i + width] + rng.normal(0, 2.0, (height, width))
        out.append(np.clip(np.rint(crop), 0, 255).astype(np.uint8))
    return out


def photo_frames(width: int, height: int) -> list[np.ndarray]:
    """Three real photographs (skimage.data) as gamma-encoded gray (BT.601 luma) frames in [0, 1], float32."""
    frames = []
    for name in ("astronaut", "coffee", "chelsea"):
        rgb = getattr(data, name)() / 255.0
        y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
        frames.append(resize(y, (height, width), anti_aliasing=True).astype(np.float32))
    return frames


def pan_frames(count: int, *, dx: int = 2, dy: int = 1, photo: np.ndarray | None = None, width: int = 96,
               height: int = 64) -> list[np.ndarray]:
    """``count`` uint8 RGB frames (height, width, 3): a window moving (dx, dy) pixels a frame over a photograph."""
    photo = data.coffee() if photo is None else photo
    small = cv2.resize(photo, (300, 200), interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(small[20 + dy * n:20 + dy * n + height, 30 + dx * n:30 + dx * n + width])
            for n in range(count)]


def make_images(folder: Path, n: int = 8, seed: int = 0) -> Path:
    """Colourful, textured little 'photographs' (gradients + noise), 80x96, as PNG files in ``folder``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:80, 0:96] / 96.0
    for i in range(n):
        c = rng.random(6)
        rgb = np.stack([c[0] * x + c[1] * y, c[2] * (1 - x) + c[3] * y, c[4] * x * y + c[5] * (1 - y)], -1)
        rgb = np.clip(rgb / max(rgb.max(), 1e-6) + rng.normal(0, 0.05, rgb.shape), 0, 1)
        Image.fromarray((rgb * 255).astype(np.uint8)).save(folder / f"img{i}.png")
    return folder


# ---- models

def tiny_generator(seed: int = 0) -> torch.nn.Module:
    """An untrained width-8 U-Net whose colours vary with the picture, about as much as a trained one's."""
    torch.manual_seed(seed)
    model = build_generator("unet", width=8).eval()
    with torch.no_grad():
        for m in model.modules():  # untrained batch norm maps everything to nearly one colour
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.2, 1.0)
        # calibrate the last convolution on a real picture: pre-tanh mean 0, std 0.3 (|a|, |b| ~ 30)
        gray = torch.tensor(rgb2gray(data.astronaut()), dtype=torch.float32)[None, None]
        l_norm = torch.nn.functional.interpolate(gray, size=(64, 96), mode="area") * 2 - 1
        conv = model.out[0]
        features = {}
        hook = conv.register_forward_hook(lambda mod, args, out: features.update(pre=out))
        model(l_norm)
        hook.remove()
        mean, std = features["pre"].mean(dim=(0, 2, 3)), features["pre"].std(dim=(0, 2, 3))
        conv.weight.mul_((0.3 / std).view(-1, 1, 1, 1))
        conv.bias.sub_(mean).mul_(0.3 / std)
    return model


def save_tiny_model(folder: Path) -> Path:
    """:func:`tiny_generator` saved in ``folder`` as ``g.safetensors`` with its ``g.onnx`` sibling (same stem)."""
    net, config = tiny_generator(), ModelConfig(arch="unet", width=8, render_size=RS)
    save_generator(folder / "g.safetensors", net, config)
    export_onnx(net, config, folder / "g.onnx")
    return folder / "g.safetensors"


def trained_like(arch: str, seed: int = 0) -> torch.nn.Module:
    """A random generator whose output layer is rescaled so that its colours are about as saturated as
    a trained one's (mean |ab_norm| ~ 0.1, about 11 a*b* units) rather than fresh weights' arbitrary
    0.02 ... 0.4 (garish or nearly gray, depending on the architecture)."""
    torch.manual_seed(seed)
    model = build_generator(arch, width=8).eval()
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    l_norm = torch.from_numpy(photo_frames(96, 64)[0])[None, None] * 2.0 - 1.0
    with torch.no_grad():
        for _ in range(3):  # tanh is nearly linear here: a few rescalings converge
            gain = 0.1 / float(model(l_norm).abs().mean())
            last.weight.mul_(gain)
            last.bias.mul_(gain)
    return model


def state_tensors(setup) -> dict[str, torch.Tensor]:
    """Every tensor of a training set-up's generator and discriminator, by name (to compare two runs)."""
    return {**{f"g.{k}": v for k, v in setup.generator.state_dict().items()},
            **{f"d.{k}": v for k, v in setup.nets["d"].state_dict().items()}}


# ---- video files (colorgan-render, the cluster)

VIDEO_W, VIDEO_H, VIDEO_FRAMES, VIDEO_FPS = 96, 64, 12, 10


def shapes(t: int, w: int = VIDEO_W, h: int = VIDEO_H) -> np.ndarray:
    """A gray frame with a bright square moving over a gradient."""
    y, x = np.mgrid[0:h, 0:w]
    img = (40 + 120 * x / w + 40 * np.sin(y / 5)).astype(np.uint8)
    img[10:30, 5 + 4 * t: 25 + 4 * t] = 220
    return img


def write_source(path: Path, *, frames: int = VIDEO_FRAMES, audio: str | None = "aac", pix_fmt: str = "yuv420p",
                 codec: str = "libx264", w: int = VIDEO_W, h: int = VIDEO_H) -> Path:
    """A black-and-white video (BT.601 tags, limited range) with an optional one-second sine tone."""
    import av

    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=VIDEO_FPS)
        v.width, v.height, v.pix_fmt = w, h, pix_fmt
        if codec == "libx264":
            v.options = {"qp": "0", "preset": "ultrafast"}
        cc = v.codec_context
        if pix_fmt.startswith("gbrp"):  # RGB: no YCbCr matrix, full range
            cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = 0, 1, 13, 2
        else:
            cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = 6, 6, 6, 1
        a = None
        if audio:
            a = out.add_stream(audio, rate=8000, layout="mono")
        for t in range(frames):
            gray = shapes(t, w, h)
            rgb = np.repeat(gray[:, :, None], 3, axis=2)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt, dst_colorspace=6) \
                if not pix_fmt.startswith("gbrp") else av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            frame.pts = t
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            fmt = "fltp" if audio == "aac" else "s16"
            samples = int(8000 * frames / VIDEO_FPS)
            tone = np.sin(np.arange(samples) * 2 * np.pi * 440 / 8000)[None]
            data = tone.astype(np.float32) if fmt == "fltp" else (tone * 8000).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
            frame.sample_rate, frame.pts = 8000, 0
            out.mux(a.encode(frame))
            out.mux(a.encode(None))
    return path


def decoded(path: Path) -> list[list[np.ndarray]]:
    """Every frame of a video file (PyAV) as its planes, uint8."""
    import av

    with av.open(str(path)) as c:
        out = []
        for f in c.decode(video=0):
            out.append([np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].copy() for p in f.planes])
        return out


# ---- fixtures

@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`save_tiny_model` in a folder of the module's own: a ``.safetensors`` with its ``.onnx`` sibling."""
    return save_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`write_source`: a short black-and-white video with a sine tone, a space in its name."""
    return write_source(tmp_path_factory.mktemp("src") / "film bw.mp4")


@pytest.fixture(scope="module")
def two_vs_threads() -> Iterator[None]:
    """VapourSynth's core on 2 threads for the module (order-independence tests), restored afterwards."""
    before = core.num_threads
    core.num_threads = 2
    yield
    core.num_threads = before


# ---- colorize's options as the tools take them

def every_colorize_option(model: Path, refs: Path) -> tuple[list[str], dict[str, object]]:
    """A command line that sets every colorize option (valid on a CPU, most away from its default), and the
    keyword arguments colorize must then get. Fails when colorize gains an option not listed here, so that
    the tests of each tool (colorgan-render, the cluster's chunk tasks, the .vpy examples) cover it."""
    from vs_colorgan.render.options import colorize_options

    values: dict[str, object] = {
        "model": model, "backend": "torch", "device": "cpu", "render_size": 64, "temporal_radius": 1,
        "temporal_sigma": 2.5, "scene_threshold": 7.5, "upsample_radius": 2, "upsample_eps": 0.01,
        "saturation": 0.5, "matrix": 6, "fp16": False, "num_streams": 2, "tensorrt": False, "references": refs,
    }
    names = [o.name for o in colorize_options()]
    assert sorted(names) == sorted(values), "a colorize option this test does not set: add it to `values`"
    argv = []
    for o in colorize_options():
        if o.kind != "bool":
            argv += [o.flag, str(values[o.name])]
    return argv, values


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """torch on one thread for the test, the previous count after (small nets: threads only add noise and wait)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
