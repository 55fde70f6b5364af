"""colorize(references=...) over time: random order, threads and chunks equal the sequential render; scene cuts
stop a key's colour; a far frame does not chain through every frame; a reference that does not match its
frame is a palette (logged, not an error)."""
from __future__ import annotations

import logging
import random
import textwrap
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from skimage import data

from vs_colorgan import colorize
from vs_colorgan.filter import build
from vs_colorgan.pipeline import Colorizer
from vs_colorgan.reference.propagate import ReferencePropagator
from vs_colorgan.reference.references import load_references

from conftest import chroma, expected_chroma, gray_clip, pan_frames, run_vspipe

core = vs.core
ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("two_vs_threads")


def two_shots() -> list[np.ndarray]:
    """40 frames: a pan over the coffee photograph (0-19), a cut, a pan over the astronaut (20-39)."""
    return pan_frames(20) + pan_frames(20, dx=1, dy=2, photo=data.astronaut())


def planes(frame: vs.VideoFrame) -> list[bytes]:
    return [bytes(np.asarray(frame[p])) for p in range(frame.format.num_planes)]


def test_random_order_threads_and_chunks_equal_the_sequential_render(model: Path) -> None:
    frames = two_shots()
    gray = gray_clip(frames)
    refs = {3: frames[3], 19: frames[19], 30: frames[30]}
    sequential = [planes(f) for f in colorize(gray, model=str(model), references=refs).frames()]
    props = [dict(f.props) for f in colorize(gray, model=str(model), references=refs).frames()]
    # all requests in flight at once, shuffled, on 2 threads, through a fresh filter instance
    fresh = colorize(gray, model=str(model), references=refs)
    order = list(range(40))
    random.Random(5).shuffle(order)
    futures = {n: fresh.get_frame_async(n) for n in order}
    for n in order:
        assert planes(futures[n].result()) == sequential[n], n
    # backwards, one at a time
    backwards = colorize(gray, model=str(model), references=refs)
    for n in reversed(range(40)):
        assert planes(backwards.get_frame(n)) == sequential[n], n
    # a chunk rendered alone (what vspipe -s 25 -e 33 does) equals the same frames of the whole
    chunk = colorize(gray, model=str(model), references=refs)[25:34]
    assert [planes(f) for f in chunk.frames()] == sequential[25:34]
    # the keys used are in the props
    assert props[10]["_ColorRefKeys"] == [3, 19] and props[25]["_ColorRefKeys"] == 30
    assert props[3]["_ColorRefConfidence"] == 1.0


def test_the_propagation_runs_ahead_without_reading_frames(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a sequential render the carried colour of frame n + 1 is computed on the look-ahead thread while
    frame n finishes (ReferencePropagator.prepare), and in that mode it never asks VapourSynth for a frame:
    where one is missing it gives up (Abandoned) and the callback computes the value itself."""
    frames = pan_frames(24)
    gray = gray_clip(frames)
    refs = {0: frames[0]}
    sequential = [planes(f) for f in colorize(gray, model=str(model), references=refs).frames()]
    prepared: list[tuple[int, bool]] = []
    original = ReferencePropagator.prepare

    def prepare(self, n, luma):
        done = original(self, n, luma)
        prepared.append((n, done))
        return done

    monkeypatch.setattr(ReferencePropagator, "prepare", prepare)
    out = colorize(gray, model=str(model), references=refs)
    for n in range(len(frames)):  # one at a time: each job has the time to run before the next callback
        assert planes(out.get_frame(n)) == sequential[n], n
    assert sum(done for _, done in prepared) >= len(frames) // 2, prepared
    # asked ahead for a frame whose neighbours and anchors were never read, it gives up and reads nothing
    c = Colorizer.load(str(model), backend="torch")
    refs_loaded = load_references(refs, num_frames=len(frames), width=gray.width, height=gray.height)
    _, processor = build(gray, c, render_size=64, references=refs_loaded)
    propagator = processor.references
    source, reads = propagator._luma_source, []
    propagator._luma_source = lambda i: (reads.append(i), source(i))[1]
    assert propagator.prepare(20, source(20)) is False
    assert reads == []


def test_scene_cut_stops_a_keys_colour(model: Path) -> None:
    frames = two_shots()
    gray = gray_clip(frames)
    out = colorize(gray, model=str(model), references={0: frames[0]})
    automatic = colorize(gray, model=str(model))
    assert out.get_frame(19).props["_ColorRefKeys"] == 0
    for n in (20, 21, 30, 39):  # the next shot: automatic colour, confidence 0, no key
        f = out.get_frame(n)
        assert planes(f) == planes(automatic.get_frame(n)), n
        assert f.props["_ColorRefConfidence"] == 0.0 and "_ColorRefKeys" not in f.props
    # a key after the cut does not reach back before it either
    out = colorize(gray, model=str(model), references={25: frames[25]})
    assert planes(out.get_frame(15)) == planes(automatic.get_frame(15))
    assert out.get_frame(20).props["_ColorRefKeys"] == 25


def test_scene_change_props_are_honoured(model: Path) -> None:
    frames = pan_frames(12)
    gray = gray_clip(frames)
    marked = core.std.SetFrameProps(gray[6], _SceneChangePrev=1)
    gray = gray[:6] + marked + gray[7:]  # a cut the luma does not show (one continuous pan)
    out = colorize(gray, model=str(model), references={0: frames[0]})
    assert out.get_frame(5).props["_ColorRefKeys"] == 0
    assert "_ColorRefKeys" not in out.get_frame(6).props


def test_colour_reaches_far_frames_through_anchors(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = pan_frames(60, dx=1, dy=0)
    gray = gray_clip(frames)
    calls: list[tuple[int, int]] = []
    step = ReferencePropagator.step

    def counting(self, state, a, b):  # noqa: ANN001
        calls.append((a, b))
        return step(self, state, a, b)

    monkeypatch.setattr(ReferencePropagator, "step", counting)
    out = colorize(gray, model=str(model), references={0: frames[0]})
    far = out.get_frame(57)  # a seek: only the anchors 0 -> 8 -> ... -> 56 (each also straight from the key), one step
    chain = [(8 * (j - 1), 8 * j) for j in range(1, 8)]
    direct = [(0, 8 * j) for j in range(2, 8)]
    assert sorted(calls) == sorted(chain + direct + [(56, 57)]) and calls[-1] == (56, 57)
    err = np.abs(chroma(far) - expected_chroma(frames[57])).mean()
    assert err < 0.5 * np.abs(expected_chroma(frames[57])).mean()
    calls.clear()
    out.get_frame(58)  # the anchors are cached: one more step
    # (58 after 57 is a sequential render: the look-ahead may meanwhile carry the key to 59, also one step)
    assert [c for c in calls if c[1] == 58] == [(56, 58)] and set(calls) <= {(56, 58), (56, 59)}


def test_reference_that_does_not_match_its_frame_is_a_palette(model: Path, caplog: pytest.LogCaptureFixture) -> None:
    frames = pan_frames(8)
    gray = gray_clip(frames)
    other = pan_frames(1, photo=data.astronaut()[::-1])[0]  # another picture: its luma is not frame 4's
    automatic = colorize(gray, model=str(model))
    with caplog.at_level(logging.WARNING, logger="vs_colorgan"):
        out = colorize(gray, model=str(model), references={4: other})
    assert "frames 4 (an array)" in caplog.text and "palettes" in caplog.text
    f = out.get_frame(4)
    assert f.props["_ColorRefPalette"] == 4 and "_ColorRefKeys" not in f.props
    assert np.array_equal(np.asarray(f[0]), np.asarray(gray.get_frame(4)[0]))
    # the automatic colour with the palette's statistics: different from plain automatic colour
    own = chroma(f).reshape(-1, 2).mean(axis=0)
    target = expected_chroma(other).reshape(-1, 2).mean(axis=0)
    plain = chroma(automatic.get_frame(4)).reshape(-1, 2).mean(axis=0)
    assert np.abs(own - target).sum() < np.abs(plain - target).sum()


def test_a_palette_does_not_hide_the_colour_keys_around_it(model: Path) -> None:
    frames = pan_frames(8)
    other = pan_frames(1, photo=data.astronaut()[::-1])[0]
    out = colorize(gray_clip(frames), model=str(model), references={0: frames[0], 4: other})
    for n in (3, 4, 6):
        props = out.get_frame(n).props
        assert props["_ColorRefKeys"] == 0 and props["_ColorRefPalette"] == 4, n
        assert props["_ColorRefConfidence"] > 0.3


SCRIPT = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
import vapoursynth as vs
from test_references_temporal import two_shots
import vs_colorgan
from conftest import gray_clip
frames = two_shots()
clip = vs.core.resize.Bicubic(gray_clip(frames), format=vs.YUV420P8)
vs_colorgan.colorize(clip, model={model!r}, references={{3: frames[3], 30: frames[30]}}).set_output()
"""


def test_vspipe_chunk_with_references_equals_the_whole(model: Path, tmp_path: Path) -> None:
    script = tmp_path / "keys.vpy"
    script.write_text(textwrap.dedent(SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"), model=str(model))))
    frame_size = 96 * 64 * 3 // 2
    chunk = run_vspipe(script, "-s", "14", "-e", "22")  # a separate process, frames 14..22 only (across the cut at 20)
    whole = run_vspipe(script)  # another process, the whole clip in order
    assert len(whole) == 40 * frame_size
    assert chunk == whole[14 * frame_size:23 * frame_size]
