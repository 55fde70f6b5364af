"""Temporal behaviour of vs_colorgan.colorize: order independence, chunked renders (also through vspipe),
scene cuts, the effect of smoothing, and the bounded prediction cache."""
from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs
from skimage import data
from skimage.color import rgb2gray
from skimage.transform import resize

from vs_colorgan import colorize
from vs_colorgan.filter import build
from vs_colorgan.pipeline import ColorOptions, Colorizer

from conftest import RS, frames_clip, gray_frames, run_vspipe

torch.set_num_threads(1)
core = vs.core
ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("two_vs_threads")


def static_frames(count: int, width: int, height: int, image: np.ndarray, seed: int) -> list[np.ndarray]:
    """One picture with fresh grain on every frame (a static shot of a grainy film)."""
    rng = np.random.default_rng(seed)
    base = resize(image, (height, width), anti_aliasing=True) * 255
    return [np.clip(np.rint(base + rng.normal(0, 3.0, base.shape)), 0, 255).astype(np.uint8) for _ in range(count)]


def two_scenes(count_a: int, count_b: int, width: int = 96, height: int = 64) -> list[np.ndarray]:
    """A pan over the astronaut, then (a cut) the camera man with grain."""
    return gray_frames(count_a, width, height, seed=1) + static_frames(count_b, width, height, data.camera() / 255.0, 2)


def render(clip: vs.VideoNode, frames: list[int] | range) -> dict[int, bytes]:
    return {n: b"".join(np.asarray(f[p]).tobytes() for p in range(f.format.num_planes))
            for n, f in ((n, clip.get_frame(n)) for n in frames)}


def test_random_order_and_chunks_equal_the_sequential_render(model: Path) -> None:
    src = core.resize.Bicubic(frames_clip(two_scenes(50, 50)), format=vs.YUV420P8)
    sequential = render(colorize(src, model=model, backend="torch"), range(100))
    # all 100 requests in flight at once, shuffled, on 2 threads, through a fresh filter instance
    fresh = colorize(src, model=model, backend="torch")
    order = list(range(100))
    random.Random(7).shuffle(order)
    futures = {n: fresh.get_frame_async(n) for n in order}
    shuffled = {n: b"".join(np.asarray(f.result()[p]).tobytes() for p in range(3)) for n, f in futures.items()}
    assert shuffled == sequential
    # a chunk rendered alone (what vspipe -s 37 -e 61 does) equals the same frames of the whole
    assert render(colorize(src, model=model, backend="torch"), range(37, 62)) == {n: sequential[n] for n in range(37, 62)}
    # and the ORT backend is order-independent too
    ort = colorize(src, model=model.with_suffix(".onnx"), backend="ort")
    ort_sequential = render(ort, range(40, 60))
    ort_fresh = colorize(src, model=model.with_suffix(".onnx"), backend="ort")
    assert render(ort_fresh, [59, 41, 50, 45, 40, 58]) == {n: ort_sequential[n] for n in [59, 41, 50, 45, 40, 58]}


SCRIPT = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
import vapoursynth as vs
from test_filter_temporal import two_scenes
import vs_colorgan
from conftest import frames_clip
clip = vs.core.resize.Bicubic(frames_clip(two_scenes(12, 12)), format=vs.YUV420P8)
vs_colorgan.colorize(clip, model={model!r}).set_output()
"""


def test_vspipe_chunk_equals_the_whole_and_stdout_is_only_video(model: Path, tmp_path: Path) -> None:
    script = tmp_path / "colorize.vpy"
    script.write_text(textwrap.dedent(SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"), model=str(model))))
    frame_size = 96 * 64 * 3 // 2
    chunk = run_vspipe(script, "-s", "9", "-e", "16", timeout=120)  # a separate process renders frames 9..16 only
    assert len(chunk) == 8 * frame_size  # nothing but the frames on stdout
    clip = core.resize.Bicubic(frames_clip(two_scenes(12, 12)), format=vs.YUV420P8)
    whole = render(colorize(clip, model=model), range(24))  # the whole clip, sequentially, here
    assert chunk == b"".join(whole[n] for n in range(9, 17))


def test_scene_cut_resets_the_smoothing(model: Path) -> None:
    src = core.resize.Bicubic(frames_clip(two_scenes(10, 10)), format=vs.YUV420P8)
    smooth = render(colorize(src, model=model, temporal_radius=3), range(20))
    per_frame = render(colorize(src, model=model, temporal_radius=0), range(20))
    assert smooth[10] == per_frame[10], "the first frame after a cut is its own per-frame colour"
    assert smooth[0] == per_frame[0], "so is the first frame of the clip"
    assert smooth[9] != per_frame[9] and smooth[11] != per_frame[11] and smooth[13] != per_frame[13]
    # with detection off, the cut frame blends in the previous scene
    blind = render(colorize(src, model=model, temporal_radius=3, scene_threshold=float("inf")), [10])
    assert blind[10] != per_frame[10]


def test_scene_change_props_win_over_detection(model: Path) -> None:
    frames = static_frames(8, 96, 64, rgb2gray(data.astronaut()), seed=3)
    src = core.resize.Bicubic(frames_clip(frames), format=vs.YUV420P8)
    tagged = core.std.SetFrameProps(src, _SceneChangePrev=0)
    tagged = tagged[:5] + core.std.SetFrameProps(tagged[5:], _SceneChangePrev=1)[0] + tagged[6:]
    smooth = render(colorize(tagged, model=model, temporal_radius=2), range(8))
    per_frame = render(colorize(tagged, model=model, temporal_radius=0), range(8))
    assert smooth[5] == per_frame[5] and smooth[4] != per_frame[4] and smooth[6] != per_frame[6]
    # a visual cut the props deny is not a cut
    cut = core.resize.Bicubic(frames_clip(two_scenes(4, 4)), format=vs.YUV420P8)
    denied = core.std.SetFrameProps(cut, _SceneChangePrev=0)
    assert render(colorize(denied, model=model), [4]) != render(colorize(denied, model=model, temporal_radius=0), [4])


def test_smoothing_reduces_flicker_on_a_static_shot(model: Path) -> None:
    """Stage 3 on real predictions of a grainy static shot: the blended chroma changes less from frame to frame."""
    frames = static_frames(8, 96, 64, rgb2gray(data.astronaut()), seed=4)
    colorizer = Colorizer.load(model, backend="torch")
    lumas = [colorizer.preprocess(f.astype(np.float32) / 255.0) for f in frames]
    raw = [colorizer.predict(r) for r in lumas]
    blended = [colorizer.combine(raw[n::-1][:4], lumas[n::-1][:4]) for n in range(3, 8)]

    def flicker(abs_: list[torch.Tensor]) -> float:
        return float(np.mean([(a - b).abs().mean().item() for a, b in zip(abs_[1:], abs_[:-1], strict=True)]))

    assert flicker(blended) < 0.6 * flicker(raw[3:]), (flicker(blended), flicker(raw[3:]))
    # and at the filter's output the smoothing changes the chroma of a static shot
    src = core.resize.Bicubic(frames_clip(frames), format=vs.YUV444P16)
    assert render(colorize(src, model=model), [5]) != render(colorize(src, model=model, temporal_radius=0), [5])


def test_cache_stays_bounded_and_each_frame_is_inferred_once(model: Path) -> None:
    src = core.resize.Bicubic(frames_clip(static_frames(300, 32, 32, data.camera() / 255.0, seed=5)), format=vs.YUV420P8)
    colorizer = Colorizer.load(model, backend="torch", options=ColorOptions(temporal_radius=3))
    out, processor = build(src, colorizer, render_size=RS)
    window = []
    for n in range(out.num_frames):  # a few requests in flight, like vspipe
        window.append(out.get_frame_async(n))
        if len(window) > 3:
            window.pop(0).result()
    for f in window:
        f.result()
    assert processor.auto.predictions.misses == 300, "each prediction computed once"
    assert len(processor.auto.predictions) <= processor.auto.predictions.capacity <= 16
    assert len(processor.auto.lumas) <= processor.auto.lumas.capacity


def test_long_render_keeps_no_more_predictions_alive_than_the_cache_bound(model: Path) -> None:
    """Over a long render, evicted predictions and lumas are really freed (no closure or list keeps them),
    the caches never exceed their bound at any point, and the heap is trimmed periodically."""
    import weakref

    from vs_colorgan import filter as vf

    frames = 5 * vf.TRIM_EVERY + 10
    src = core.resize.Bicubic(frames_clip(gray_frames(frames, 32, 32, seed=3)), format=vs.YUV420P8)
    colorizer = Colorizer.load(model, backend="torch", options=ColorOptions(temporal_radius=3))
    made: list[weakref.ref] = []
    predict, preprocess = colorizer.predict, colorizer.preprocess

    def tracked_predict(render):
        ab = predict(render)
        made.append(weakref.ref(ab))
        return ab

    def tracked_preprocess(y):
        r = preprocess(y)
        made.append(weakref.ref(r.l_norm))
        return r

    colorizer.predict, colorizer.preprocess = tracked_predict, tracked_preprocess
    out, processor = build(src, colorizer, render_size=RS)
    capacity = processor.auto.predictions.capacity
    most_alive = most_cached = 0
    for n, _ in enumerate(out.frames(close=True)):
        if n % 25 == 0:
            most_alive = max(most_alive, sum(r() is not None for r in made))
            most_cached = max(most_cached, len(processor.auto.predictions), len(processor.auto.lumas))
    assert processor.auto.predictions.misses == frames
    assert most_cached <= capacity, (most_cached, capacity)
    # each cache holds at most `capacity` frames; a few more may be in the hands of frames in flight
    assert most_alive <= 2 * capacity + 2 * (core.num_threads + 3), (most_alive, capacity)
    del out
    if processor.trim is not None:
        assert processor.trims == frames // vf.TRIM_EVERY


def test_the_callback_takes_one_frame_at_a_time_whatever_num_streams(model: Path) -> None:
    """docs/filter.md says num_streams > 1 overlaps nothing: VapourSynth runs the callback of one colorize call
    one frame at a time, even with 2 threads and 4 requests in flight. If a VapourSynth release changes that,
    this fails and the docs (and the slots' use) need another look."""
    import threading
    import time

    src = core.resize.Bicubic(frames_clip(gray_frames(16, 32, 32, seed=4)), format=vs.YUV420P8)
    colorizer = Colorizer.load(model, backend="torch", num_streams=2)
    inside, most, lock = [0], [0], threading.Lock()
    out, processor = build(src, colorizer, render_size=RS)
    process = processor.process

    def slow_process(n, frame, window):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.02)  # the GIL is released: a second callback could enter now if VapourSynth called it
        try:
            return process(n, frame, window)
        finally:
            with lock:
                inside[0] -= 1

    processor.process = slow_process
    assert core.num_threads == 2
    requests = [out.get_frame_async(n) for n in range(4)]
    for n in range(4, out.num_frames):
        requests.pop(0).result()
        requests.append(out.get_frame_async(n))
    for r in requests:
        r.result()
    assert most[0] == 1


def _predict_threads(colorizer: Colorizer) -> list[str]:
    """Wrap ``colorizer.predict`` to record the name of the thread that runs each inference."""
    import threading

    names: list[str] = []
    predict = colorizer.predict

    def recorded(render):
        names.append(threading.current_thread().name)
        return predict(render)

    colorizer.predict = recorded
    return names


def test_a_sequential_render_infers_ahead_on_its_own_thread_with_the_same_bytes(model: Path) -> None:
    """In order, frame n + 1 is inferred on the look-ahead thread while the callback finishes frame n; each
    frame is still inferred once, and the output is byte for byte the output without look-ahead."""
    src = core.resize.Bicubic(frames_clip(gray_frames(40, 48, 32, seed=6)), format=vs.YUV420P8)
    ahead = Colorizer.load(model, backend="torch")
    names = _predict_threads(ahead)
    out, processor = build(src, ahead, render_size=RS)
    got = [np.asarray(f[p]).copy() for f in out.frames() for p in range(3)]
    assert processor.auto.predictions.misses == 40 and len(names) == 40
    # a race on these tiny frames (inference ~ glue): the callback computes those it reaches first. Since the
    # glue got cheaper (issue 15) it reaches ~half of them first here (17-18 of 40 on the lookahead thread);
    # at real sizes inference is several times the glue and the callback waits on the look-ahead's result
    assert names.count("vs_colorgan-lookahead") >= 10, names

    plain = Colorizer.load(model, backend="torch")
    ref, ref_processor = build(src, plain, render_size=RS)
    ref_processor.auto.lookahead = None
    want = [np.asarray(f[p]).copy() for f in ref.frames() for p in range(3)]
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


def test_seeks_start_no_look_ahead(model: Path) -> None:
    """Frames asked for backwards (a preview seeking, or a render in reverse) never follow each other in
    order, so nothing is inferred ahead and no inference is wasted."""
    src = core.resize.Bicubic(frames_clip(gray_frames(12, 48, 32, seed=7)), format=vs.YUV420P8)
    colorizer = Colorizer.load(model, backend="torch", options=ColorOptions(temporal_radius=0))
    names = _predict_threads(colorizer)
    out, _ = build(src, colorizer, render_size=RS)
    for n in reversed(range(out.num_frames)):
        out.get_frame(n)
    assert len(names) == 12 and "vs_colorgan-lookahead" not in names


def test_the_look_ahead_thread_survives_a_failed_job_and_ends_when_idle() -> None:
    import threading
    import time

    from vs_colorgan.lookahead import Lookahead

    la = Lookahead(idle_s=0.2)
    assert not la.running  # no thread until there is work
    done = threading.Event()

    def fails() -> None:
        raise RuntimeError("a frame that cannot be read")

    la.submit(fails)
    la.submit(done.set)
    assert done.wait(5), "the job after a failed one did not run"
    deadline = time.monotonic() + 5
    while la.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not la.running, "the thread did not end when idle"
    again = threading.Event()
    la.submit(again.set)  # and starts again with the next job
    assert again.wait(5)


@pytest.mark.parametrize("keyframes", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_the_look_ahead_never_deadlocks_a_render(model: Path, tmp_path: Path, threads: int, keyframes: bool) -> None:
    """With one VapourSynth thread the callback holds the only thread while the look-ahead job waits for a
    frame: the callback must not wait on that job. In a subprocess, so that a deadlock fails by timeout. With
    ``keyframes`` the keyframe mode's look-ahead (the propagation of the next frame) runs too."""
    script = tmp_path / "render.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import vapoursynth as vs
        from conftest import frames_clip, gray_clip, gray_frames, pan_frames
        from vs_colorgan import colorize
        vs.core.num_threads = {threads}
        if {keyframes!r}:  # a pan over a photograph, its frame 3 painted with its own colour
            frames = pan_frames(40)
            src, refs = vs.core.resize.Bicubic(gray_clip(frames), format=vs.YUV420P8), {{3: frames[3]}}
        else:
            src, refs = vs.core.resize.Bicubic(frames_clip(gray_frames(40, 64, 48, seed=8)), format=vs.YUV420P8), None
        out = colorize(src, model={str(model)!r}, backend="torch", references=refs)
        print(sum(1 for _ in out.frames()))
        for n in (5, 6, 7, 30, 31):  # a seek, then in order again
            out.get_frame(n)
        print("done")
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["40", "done"]
