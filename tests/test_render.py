"""``colorgan-render``: BestSource -> colorize -> PyAV. Tags, audio, exact lossless chunks, kills leave no
output, bad arguments. Sources are written here with PyAV (gray moving shapes, a sine tone), the model is
test_filter's tiny U-Net."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

av = pytest.importorskip("av")


from vs_colorgan import colorize  # noqa: E402
from vs_colorgan.render import main  # noqa: E402
from conftest import VIDEO_FPS, VIDEO_FRAMES, VIDEO_H, VIDEO_W, decoded, every_colorize_option, write_source

core = vs.core
W, H, N, FPS = VIDEO_W, VIDEO_H, VIDEO_FRAMES, VIDEO_FPS
ROOT = Path(__file__).resolve().parents[1]


def vs_planes(clip: vs.VideoNode) -> list[list[np.ndarray]]:
    return [[np.asarray(f[p]).copy() for p in range(3)] for f in clip.frames()]


def render(*args: object) -> int:
    return main([str(a) for a in args] + ["--quiet"])


def test_mp4_h264_with_tags_and_audio(model: Path, source: Path, tmp_path: Path) -> None:
    out = tmp_path / "colour.mp4"
    assert render(source, out, "--model", model) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["colour.mp4"]  # no temporary left
    with av.open(str(out)) as c:
        v = c.streams.video[0].codec_context
        assert (v.name, v.width, v.height, v.pix_fmt) == ("h264", W, H, "yuv420p")
        # the filter's tags: the source says SMPTE 170M, limited range
        assert (v.colorspace, v.color_primaries, v.color_trc, v.color_range) == (6, 6, 6, 1)
        assert [s.codec_context.name for s in c.streams.audio] == ["aac"]
        assert c.streams.video[0].frames == N
    frames = decoded(out)
    assert len(frames) == N
    assert max(np.abs(f[p].astype(int) - 128).max() for f in frames for p in (1, 2)) > 4  # it has colour


def test_ffv1_is_the_filters_output_exactly(model: Path, source: Path, tmp_path: Path) -> None:
    out = tmp_path / "master.mkv"
    assert render(source, out, "--model", model, "--temporal-radius", 2) == 0
    with av.open(str(out)) as c:
        v = c.streams.video[0].codec_context
        assert (v.name, v.colorspace, v.color_primaries, v.color_trc, v.color_range) == ("ffv1", 6, 6, 6, 1)
        assert len(c.streams.audio) == 1  # AAC copied into Matroska
    src = core.bs.VideoSource(str(source))
    expect = vs_planes(colorize(src, model=str(model), temporal_radius=2))
    got = decoded(out)
    assert len(got) == len(expect) == N
    for g, e in zip(got, expect):
        assert all(np.array_equal(a, b) for a, b in zip(g, e))
    assert all(np.array_equal(g[0], np.asarray(f[0])) for g, f in zip(got, src.frames()))  # luma untouched


def test_lossless_chunks_concatenate_to_the_whole(model: Path, source: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole.mkv"
    assert render(source, whole, "--model", model) == 0
    parts = [(0, 4), (5, 5), (6, N - 1)]
    chunks = []
    for s, e in parts:
        path = tmp_path / f"chunk{s}.mkv"
        assert render(source, path, "--model", model, "--start", s, "--end", e) == 0
        with av.open(str(path)) as c:
            assert c.metadata.get("VS_COLORGAN_START", c.metadata.get("vs_colorgan_start")) == str(s)
        chunks += decoded(path)
    got, expect = chunks, decoded(whole)
    assert len(got) == len(expect) == N
    for g, e in zip(got, expect):
        assert all(np.array_equal(a, b) for a, b in zip(g, e))


def test_rgb_and_pcm_sources(model: Path, tmp_path: Path) -> None:
    src = write_source(tmp_path / "rgb.mkv", codec="ffv1", pix_fmt="gbrp10le", audio="pcm_s16le", frames=4)
    assert core.bs.VideoSource(str(src)).format.color_family == vs.RGB
    out = tmp_path / "rgb_colour.mp4"
    assert render(src, out, "--model", model) == 0
    with av.open(str(out)) as c:
        v = c.streams.video[0].codec_context
        assert (v.pix_fmt, v.colorspace) == ("yuv420p", 1)  # RGB encoded as BT.709 YUV 4:2:0
        assert len(c.streams.audio) == 1  # PCM: copied where the muxer takes it, else AAC
    assert len(decoded(out)) == 4


def test_kill_leaves_no_output_and_the_next_run_clears_the_leftover(model: Path, tmp_path: Path) -> None:
    # long enough that no run ends before the signal reaches it (a fast machine rendered 400 frames first)
    src = write_source(tmp_path / "long.mp4", frames=1500, audio=None, w=320, h=240)
    out = tmp_path / "out.mp4"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def start() -> subprocess.Popen:
        # the child gets Ctrl-C's default disposition: an ignored SIGINT is inherited across exec, and some test
        # before this one (Ray's start-up) leaves SIGINT ignored in the pytest process
        return subprocess.Popen([sys.executable, "-m", "vs_colorgan.render", str(src), str(out), "--model", str(model),
                                 "--quiet", "--threads", "1"], env=env, stderr=subprocess.PIPE,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def wait_for_temporary(proc: subprocess.Popen) -> Path:
        for _ in range(1200):  # up to 2 minutes on a loaded machine; not a timing assertion
            tmps = [p for p in tmp_path.glob(".out.mp4.*.tmp") if p.stat().st_size > 0]
            if tmps:
                return tmps[0]
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
        pytest.fail("no temporary file appeared")

    for sig in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C and kill: the temporary goes with the process
        proc = start()
        wait_for_temporary(proc)
        proc.send_signal(sig)
        assert proc.wait(timeout=60) != 0
        assert "not written" in proc.stderr.read().decode()
        assert not out.exists() and not list(tmp_path.glob(".out.mp4.*"))

    proc = start()
    leftover = wait_for_temporary(proc)
    proc.kill()  # SIGKILL: nothing can clean up, but the output never appears
    proc.wait(timeout=60)
    assert not out.exists() and leftover.exists()
    short = write_source(tmp_path / "short.mp4", frames=2, audio=None)
    assert render(short, out, "--model", model) == 0
    assert out.exists() and not leftover.exists()


@pytest.mark.parametrize("args, message", [
    (["{src}", "{tmp}/x.avi"], "OUTPUT must end in .mp4, .m4v, .mov, .mkv, not 'x.avi'"),
    (["{src}", "{tmp}/x.mp4", "--codec", "ffv1"], "--codec ffv1 cannot go into .mp4"),
    (["{tmp}/missing.mp4", "{tmp}/x.mp4"], "INPUT '{tmp}/missing.mp4' is not a file"),
    (["{src}", "{tmp}/x.mp4", "--start", "5", "--end", "2"], "--start (5) must not be after --end (2)"),
    (["{src}", "{tmp}/x.mp4", "--end", "99"], "--end must be a frame of the clip (0 to 11), not 99"),
    (["{src}", "{tmp}/no/such/x.mp4"], "OUTPUT's folder"),
    (["{src}", "{tmp}/x.mkv", "--crf", "10"], "--crf applies to h264/h265"),
    (["{src}", "{tmp}/x.mp4", "--render-size", "70"],
     "vs_colorgan.colorize: \"render_size\" must be a multiple of 32"),
    (["{src}", "{tmp}/x.mp4", "--model", "{tmp}"], "vs_colorgan.colorize: \"model\""),
])
def test_bad_arguments(args: list[str], message: str, model: Path, source: Path, tmp_path: Path,
                       capsys: pytest.CaptureFixture) -> None:
    argv = [a.format(src=source, tmp=tmp_path) for a in args]
    if "--model" not in argv:
        argv += ["--model", str(model)]
    assert render(*argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("colorgan-render: error: ") and message.format(tmp=tmp_path) in err, err
    assert not list(tmp_path.glob("x.*"))


def test_references_are_passed_through(model: Path, source: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture, monkeypatch) -> None:
    import vs_colorgan

    refs = tmp_path / "refs"
    refs.mkdir()
    assert render(source, tmp_path / "x.mp4", "--model", model, "--references", tmp_path / "nope") == 2
    assert "--references must be a folder of reference images" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
    seen = {}

    def fake(clip, *, references=None, **kwargs):  # a colorize that takes references=
        seen["references"] = references
        return colorize(clip, **kwargs)

    monkeypatch.setattr(vs_colorgan, "colorize", fake)
    assert render(source, tmp_path / "y.mp4", "--model", model, "--references", refs, "--end", "1") == 0
    assert seen["references"] == refs
    seen.clear()
    assert render(source, tmp_path / "z.mp4", "--model", model, "--end", "1") == 0
    assert seen["references"] is None  # colorize's default when not given


def test_audio_the_container_cannot_hold_is_transcoded(model: Path, source: Path, tmp_path: Path, monkeypatch) -> None:
    import vs_colorgan.render.encode as encode

    monkeypatch.setattr(encode, "can_copy", lambda out, codec: False)
    out = tmp_path / "t.mp4"
    assert render(source, out, "--model", model, "--end", "5") == 0
    with av.open(str(out)) as c:
        (a,) = c.streams.audio
        assert a.codec_context.name == "aac"
        samples = sum(f.samples for f in c.decode(audio=0))
    assert samples >= 0.5 * 8000 * 6 / FPS  # about the chunk's 0.6 s of sound, not the whole second


def test_gray_source_and_output_over_input(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = write_source(tmp_path / "gray.mkv", codec="ffv1", pix_fmt="gray", audio=None, frames=3)
    assert core.bs.VideoSource(str(src)).format.color_family == vs.GRAY
    assert render(src, tmp_path / "g.mp4", "--model", model) == 0
    with av.open(str(tmp_path / "g.mp4")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"  # what players decode
    assert render(src, tmp_path / "g.mkv", "--model", model) == 0
    with av.open(str(tmp_path / "g.mkv")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv444p"  # lossless: the filter's own format
    assert render(src, src, "--model", model) == 2
    assert "OUTPUT must not be INPUT" in capsys.readouterr().err


def test_saturation_reaches_the_render(model: Path, source: Path, tmp_path: Path) -> None:
    out = tmp_path / "half.mkv"
    assert render(source, out, "--model", model, "--saturation", 0.5, "--end", 3) == 0
    src = core.bs.VideoSource(str(source))
    expect = vs_planes(colorize(src, model=str(model), saturation=0.5)[:4])
    got = decoded(out)
    assert len(got) == 4
    for g, e in zip(got, expect):
        assert all(np.array_equal(a, b) for a, b in zip(g, e))
    full = vs_planes(colorize(src, model=str(model))[:4])
    assert any(not np.array_equal(g[1], f[1]) for g, f in zip(got, full))  # the gain did something


def test_every_colorize_option_reaches_the_render(model: Path, source: Path, tmp_path: Path, monkeypatch) -> None:
    import vs_colorgan

    refs = tmp_path / "refs"
    refs.mkdir()
    argv, expect = every_colorize_option(model, refs)
    seen = {}

    def fake(clip, **kwargs):  # records what colorgan-render asks for, renders with the model only
        seen.update(kwargs)
        return colorize(clip, model=str(model))

    monkeypatch.setattr(vs_colorgan, "colorize", fake)
    assert render(source, tmp_path / "x.mkv", *argv, "--fp16", "--tensorrt", "--end", "0") == 0
    assert seen == {**expect, "fp16": True, "tensorrt": True}
    # and one it does not know is argparse's error, not ignored
    with pytest.raises(SystemExit) as info:
        render(source, tmp_path / "y.mkv", "--model", model, "--saturaton", "0.5")
    assert info.value.code == 2


def test_a_swallowed_signal_is_raised_again_at_the_next_frame() -> None:
    """A signal whose exception something swallowed on the way (a VapourSynth callback on the main thread
    reports it as "ignored") is raised again by the render loop's per-frame check, and forgotten after."""
    from vs_colorgan.render.arguments import Terminated, raise_pending_signal, terminated_on_signals

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh render process
    for sig, expected in ((signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)):
        with terminated_on_signals():
            raise_pending_signal()  # nothing received yet: nothing raised
            try:
                os.kill(os.getpid(), sig)
                time.sleep(0.5)  # the handler runs on the main thread at the next bytecode
            except expected:
                pass  # swallowed
            with pytest.raises(expected):
                raise_pending_signal()
        raise_pending_signal()  # outside the block: forgotten
    signal.signal(signal.SIGINT, before)


def test_a_signal_inside_a_deferred_step_is_raised_when_the_step_ends() -> None:
    """signals_deferred (around a Ray task's submission and the recording of its handle): a SIGTERM that comes
    inside is raised only once the step is complete, so the interrupted driver knows every task it started."""
    from vs_colorgan.render.arguments import Terminated, signals_deferred, terminated_on_signals

    steps = []
    with terminated_on_signals():
        with pytest.raises(Terminated):
            with signals_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.2)  # the handler has run by now: it only remembered the signal
                steps.append("recorded")
            steps.append("not reached")
    assert steps == ["recorded"]
