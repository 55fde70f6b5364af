"""``colorgan-render --workers N``: a film rendered in chunks on a local Ray cluster equals the single render
(FFV1 byte for byte, H.264 frame for frame), survives a killed worker, resumes after an interruption, and
refuses chunks from different hardware. Ray is started once for the module, small (2 CPUs, 100 MB object
store, no dashboard), and shut down at the end; the tests skip, saying why, where it cannot start."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from conftest import VIDEO_FPS as FPS, VIDEO_FRAMES as N, decoded, every_colorize_option, write_source  # noqa: E402

from vs_colorgan.render import cluster, tasks  # noqa: E402
from vs_colorgan.render import plan as planning  # noqa: E402
from vs_colorgan.render import build_parser, main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def long_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Long enough that a chunk is still running when the test kills its worker."""
    return write_source(tmp_path_factory.mktemp("long") / "long.mp4", frames=160, w=320, h=240)


def _ray():
    try:
        import ray
    except ImportError:
        pytest.skip("Ray is not installed (pip install 'vs_colorgan[cluster]'); the cluster render needs it")
    return ray


@pytest.fixture(scope="module")
def ray_cluster():
    """One small local Ray cluster for the module; render_cluster uses an initialised Ray as it is."""
    ray = _ray()
    if ray.is_initialized():
        ray.shutdown()
    try:
        ray.init(address="local", num_cpus=2, object_store_memory=100 << 20, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    except Exception as e:  # no shared memory, no ports, a sandbox...: say so rather than fail
        pytest.skip(f"Ray cannot start a local cluster here: {type(e).__name__}: {e}")
    yield ray
    ray.shutdown()


def render(*args: object) -> int:
    return main([str(a) for a in args] + ["--quiet"])


def cluster_render(*args: object) -> cluster.Result:
    return cluster.render_cluster(build_parser().parse_args([str(a) for a in args] + ["--quiet"]))


def only(folder: Path) -> list[str]:
    """Everything in ``folder``, hidden names included (temporaries, parts folders)."""
    return sorted(p.name for p in folder.iterdir())


def loads_per_worker(result: cluster.Result) -> dict[tuple[str, int], set[int]]:
    seen: dict[tuple[str, int], set[int]] = {}
    for w in result.workers:
        seen.setdefault((w["host"], w["pid"]), set()).add(w["model_loads"])
    return seen


def test_without_ray_the_message_names_the_extra(model: Path, source: Path, tmp_path: Path, monkeypatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert render(source, tmp_path / "x.mkv", "--model", model, "--workers", "2") == 2
    err = capsys.readouterr().err
    assert "Ray, which is not installed: pip install 'vs_colorgan[cluster]'" in err, err
    assert only(tmp_path) == []


def test_a_cluster_of_other_versions_is_explained(model: Path, source: Path, tmp_path: Path, monkeypatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    ray = _ray()

    def init(**kwargs):
        raise RuntimeError("Version mismatch: The cluster was started with:\n Ray: 2.9.0 ...")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    assert render(source, tmp_path / "x.mkv", "--model", model, "--cluster", "head:6379") == 2
    err = capsys.readouterr().err
    assert "cannot join the Ray cluster at 'head:6379': Version mismatch" in err, err
    assert f"pip install 'ray=={ray.__version__}' on every node" in err, err


def test_plan_chunks_and_default_k(model: Path, source: Path, tmp_path: Path) -> None:
    args = build_parser().parse_args([str(source), str(tmp_path / "o.mkv"), "--model", str(model), "--workers", "2"])
    plan = planning.make_plan(args, num_frames=1000, workers=2, codec="ffv1")
    assert plan.k == 125 and [(c.start, c.stop) for c in plan.chunks][:2] == [(0, 125), (125, 250)]
    assert plan.chunks[-1].stop == 1000 and len(plan.chunks) == 8
    assert planning.default_chunk_frames(130_000, 8, 1) == 4063
    assert planning.default_chunk_frames(130_000, 8, 250) == 4250  # H.264/H.265: x264's key-frame interval
    assert planning.default_chunk_frames(12, 2, 1) == 12
    same = planning.make_plan(args, num_frames=1000, workers=2, codec="ffv1")
    assert same.key == plan.key and same.folder == tmp_path / f".o.mkv.parts-{plan.key}"
    other = build_parser().parse_args([str(source), str(tmp_path / "o.mkv"), "--model", str(model), "--workers", "2",
                                       "--temporal-radius", "1"])
    assert planning.make_plan(other, num_frames=1000, workers=2, codec="ffv1").key != plan.key  # options count
    args.chunk_frames = 100
    assert planning.make_plan(args, num_frames=1000, workers=2, codec="ffv1").key != plan.key  # and K
    args.start, args.end = 10, 5
    with pytest.raises(planning.RenderError, match=r"--start \(10\) must not be after --end \(5\)"):
        planning.make_plan(args, num_frames=1000, workers=2, codec="ffv1")


def test_a_chunk_task_stops_between_frames_when_the_driver_says_so(model: Path, long_source: Path,
                                                                   tmp_path: Path) -> None:
    """The interrupted driver's cancel is a STOP file in the parts folder (never ray.cancel, which can abort a
    Ray 2.x driver): a chunk that sees it mid-way ends before its next frame and leaves nothing; one queued
    behind it does not start; without it the same chunk renders in full. Called in-process, without Ray."""
    args = build_parser().parse_args([str(long_source), str(tmp_path / "o.mkv"), "--model", str(model),
                                      "--workers", "1", "--chunk-frames", "80", "--quiet"])
    plan = planning.make_plan(args, num_frames=160, workers=1, codec="ffv1")
    plan.folder.mkdir()
    first = plan.chunks[0]
    seen = threading.Event()

    def stop_once_writing() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(plan.folder.glob(".chunk-*.tmp")):
            time.sleep(0.005)
        plan.stop_file.write_text("interrupted\n")
        seen.set()

    threading.Thread(target=stop_once_writing, daemon=True).start()
    result = tasks.render_chunk(args, plan, first)
    assert seen.is_set() and result["stopped"] and result["index"] == first.index
    assert only(plan.folder) == ["STOP"]  # neither the chunk, its metadata nor a temporary
    assert tasks.render_chunk(args, plan, plan.chunks[1])["stopped"]  # queued: returns before rendering
    assert only(plan.folder) == ["STOP"]
    plan.stop_file.unlink()
    meta = tasks.render_chunk(args, plan, first)
    assert "stopped" not in meta and meta["frames"] == 80
    assert len(decoded(plan.path(first))) == 80 and planning.read_meta(plan, first) is not None


def test_a_chunk_task_applies_every_colorize_option(model: Path, source: Path, tmp_path: Path,
                                                   monkeypatch) -> None:
    """The chunk task renders with the driver's colorize options, all of them (in-process, without Ray):
    --saturation 0.5 gives the frames of colorize(saturation=0.5), and every option reaches colorize."""
    import vapoursynth as vs

    import vs_colorgan

    args = build_parser().parse_args([str(source), str(tmp_path / "o.mkv"), "--model", str(model), "--workers", "1",
                                      "--chunk-frames", "4", "--saturation", "0.5", "--quiet"])
    plan = planning.make_plan(args, num_frames=N, workers=1, codec="ffv1")
    plan.folder.mkdir()
    assert tasks.render_chunk(args, plan, plan.chunks[1])["frames"] == 4
    src = vs.core.bs.VideoSource(str(source))
    expect = vs_colorgan.colorize(src, model=str(model), saturation=0.5)[4:8]
    for got, frame in zip(decoded(plan.path(plan.chunks[1])), expect.frames(), strict=True):
        assert all(np.array_equal(got[p], np.asarray(frame[p])) for p in range(3))

    refs = tmp_path / "refs"
    refs.mkdir()
    argv, expect_options = every_colorize_option(model, refs)
    seen, real = {}, vs_colorgan.colorize

    def fake(clip, **kwargs):  # records what the task asks for, renders with the model only
        seen.update(kwargs)
        return real(clip, model=str(model))

    monkeypatch.setattr(vs_colorgan, "colorize", fake)
    args = build_parser().parse_args([str(source), str(tmp_path / "p.mkv"), *argv, "--workers", "1",
                                      "--chunk-frames", "4", "--quiet"])
    plan = planning.make_plan(args, num_frames=N, workers=1, codec="ffv1")
    plan.folder.mkdir()
    tasks.render_chunk(args, plan, plan.chunks[0])
    assert seen == expect_options


def test_mixed_hardware_is_refused_unless_allowed() -> None:
    a, b = {"cpu": "A"}, {"cpu": "B"}
    metas = {0: {"fingerprint": a, "fingerprint_id": planning.fingerprint_id(a)},
             1: {"fingerprint": b, "fingerprint_id": planning.fingerprint_id(b)}}
    with pytest.raises(cluster.ClusterError, match=r"2 different hardware fingerprints.*\[1 chunk \(e.g. 1\)\].*"
                                                   "--allow-mixed-hardware"):
        planning.check_fingerprints(metas, allow_mixed=False)
    assert planning.check_fingerprints(metas, allow_mixed=True) == {metas[0]["fingerprint_id"]: [0],
                                                                   metas[1]["fingerprint_id"]: [1]}
    with pytest.raises(cluster.ClusterError) as info:
        planning.check_fingerprints({0: metas[0], -1: metas[1]}, allow_mixed=False)
    assert "[1 chunk (e.g. 0)]" in str(info.value) and "[this run's workers]" in str(info.value)


def test_workers_2_ffv1_is_the_single_render_byte_for_byte(ray_cluster, model: Path, source: Path,
                                                           tmp_path: Path) -> None:
    single, clustered = tmp_path / "single.mkv", tmp_path / "clustered.mkv"
    assert render(source, single, "--model", model) == 0
    result = cluster_render(source, clustered, "--model", model, "--workers", 2, "--chunk-frames", 3)
    assert result.rendered == [0, 1, 2, 3] and result.reused == []
    assert clustered.read_bytes() == single.read_bytes()  # video, audio, tags, container: all of it
    assert only(tmp_path) == ["clustered.mkv", "single.mkv"]  # parts folder and temporaries gone
    # the model is loaded once per worker, not once per chunk: no worker loaded it between two of its chunks
    assert all(len(loads) == 1 for loads in loads_per_worker(result).values()), result.workers
    assert len(result.workers) == 4 and len(result.fingerprints) == 1
    # a range of the film: the chunks cover frames 2..9 only, the file is the single render's of that range
    assert render(source, tmp_path / "single range.mkv", "--model", model, "--start", 2, "--end", 9) == 0
    result = cluster_render(source, tmp_path / "range.mkv", "--model", model, "--start", 2, "--end", 9, "--workers", 2,
                            "--chunk-frames", 3)
    assert result.rendered == [0, 1, 2]
    assert (tmp_path / "range.mkv").read_bytes() == (tmp_path / "single range.mkv").read_bytes()


def test_workers_2_h264_is_the_single_render_frame_for_frame(ray_cluster, model: Path, source: Path,
                                                             tmp_path: Path) -> None:
    # x264 at --crf 0 is lossless: the decoded frames of both are the filter's output, so equal exactly
    single, clustered = tmp_path / "single.mp4", tmp_path / "clustered.mp4"
    assert render(source, single, "--model", model, "--crf", 0) == 0
    cluster_render(source, clustered, "--model", model, "--crf", 0, "--workers", 2, "--chunk-frames", 5)
    got, expect = decoded(clustered), decoded(single)
    assert len(got) == len(expect) == N
    for i, (g, e) in enumerate(zip(got, expect)):
        assert all(np.array_equal(a, b) for a, b in zip(g, e)), f"frame {i}"
    # at the default quality the bits differ (each chunk is its own closed GOP), the frames stay in step
    lossy = tmp_path / "lossy.mp4"
    cluster_render(source, lossy, "--model", model, "--workers", 2, "--chunk-frames", 5)
    with av.open(str(lossy)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(v))
        assert [round(f.pts * v.time_base * FPS) for f in frames] == list(range(N))
        assert [s.codec_context.name for s in c.streams.audio] == ["aac"]
    with av.open(str(lossy)) as c:
        v = c.streams.video[0]
        keys = sorted(round(p.pts * v.time_base * FPS) for p in c.demux(v) if p.is_keyframe and p.size)
        assert keys == [0, 5, 10]  # a key frame opens each chunk
    got = decoded(lossy)
    assert len(got) == N
    for i, (g, e) in enumerate(zip(got, expect)):  # each frame is its own frame: close to it, far from the others
        err = [np.abs(g[0].astype(int) - other[0]).mean() for other in expect]
        assert int(np.argmin(err)) == i and err[i] < 2, (i, err)
    assert sorted(only(tmp_path)) == ["clustered.mp4", "lossy.mp4", "single.mp4"]


def _kill_first_chunk_writer(folder_glob: Path, pattern: str, killed: list[int], stop: threading.Event) -> None:
    """Watch for a chunk's temporary file (``.NAME.PID.XXXX.tmp``) and SIGKILL the worker writing it, once."""
    while not stop.is_set():
        for tmp in folder_glob.glob(pattern):
            name = tmp.name
            if not name.endswith(".tmp") or ".json." in name:
                continue
            pid = int(name.split(".")[-3])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed.append(pid)
            return
        time.sleep(0.01)


def test_a_worker_killed_mid_chunk_is_retried(ray_cluster, model: Path, long_source: Path, tmp_path: Path) -> None:
    single, clustered = tmp_path / "single.mkv", tmp_path / "clustered.mkv"
    assert render(long_source, single, "--model", model) == 0
    killed: list[int] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_kill_first_chunk_writer,
                               args=(tmp_path, ".clustered.mkv.parts-*/.chunk-*.tmp", killed, stop), daemon=True)
    watcher.start()
    try:
        result = cluster_render(long_source, clustered, "--model", model, "--workers", 2, "--chunk-frames", 80)
    finally:
        stop.set()
        watcher.join()
    assert killed, "no chunk was seen being written"
    assert killed[0] not in {w["pid"] for w in result.workers}  # its chunk was done again by another worker
    assert result.rendered == [0, 1]
    assert clustered.read_bytes() == single.read_bytes()
    assert only(tmp_path) == ["clustered.mkv", "single.mkv"]  # the killed attempt's temporary went with the parts


def test_a_second_run_renders_only_the_missing_chunks(ray_cluster, model: Path, long_source: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    single, clustered = tmp_path / "single.mkv", tmp_path / "clustered.mkv"
    assert render(long_source, single, "--model", model) == 0
    args = ["--model", model, "--workers", 1, "--chunk-frames", 20]  # one worker: 8 chunks, finished one by one
    stop = threading.Event()

    def interrupt_after_two_chunks() -> None:  # like a kill of the command: SIGTERM to this process
        while not stop.is_set():
            if len(list(tmp_path.glob(".clustered.mkv.parts-*/chunk-*.mkv.json"))) >= 2:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.01)

    # render_cluster turns SIGTERM into an exception while it runs; outside it, a late signal must not end pytest
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    watcher = threading.Thread(target=interrupt_after_two_chunks, daemon=True)
    watcher.start()
    try:
        status = render(long_source, clustered, *args)
    finally:
        stop.set()
        watcher.join()
        signal.signal(signal.SIGTERM, previous)
    assert status == 128 + signal.SIGTERM, "the render ended before it could be interrupted"
    assert "terminated; " in capsys.readouterr().err
    assert not clustered.exists()
    (parts,) = tmp_path.glob(".clustered.mkv.parts-*")
    done = sorted(int(p.name.split("-")[1]) for p in parts.glob("chunk-*.mkv.json"))
    assert 2 <= len(done) < 8

    # a chunk from other hardware: refused before anything is rendered, accepted when allowed
    meta_path = next(parts.glob("chunk-*.mkv.json"))
    meta = json.loads(meta_path.read_text())
    meta["fingerprint"] = {**meta["fingerprint"], "cpu": "another CPU"}
    meta["fingerprint_id"] = planning.fingerprint_id(meta["fingerprint"])
    original = meta_path.read_text()
    meta_path.write_text(json.dumps(meta))
    assert render(long_source, clustered, *args) == 2
    assert "different hardware fingerprints" in capsys.readouterr().err
    meta_path.write_text(original)

    # the same render with another worker count and no --chunk-frames: K is the interrupted run's
    result = cluster_render(long_source, clustered, "--model", model, "--workers", 2)
    assert result.chunk_frames == 20
    assert result.reused == done
    assert result.rendered == [i for i in range(8) if i not in done]
    assert clustered.read_bytes() == single.read_bytes()
    assert only(tmp_path) == ["clustered.mkv", "single.mkv"]


def test_the_command_starts_and_stops_its_own_local_cluster(ray_cluster, model: Path, source: Path,
                                                             tmp_path: Path) -> None:
    """`colorgan-render IN OUT --workers 2` as a user types it: Ray started and shut down by the command (its own
    cluster, beside the module's; ray_cluster only skips this where Ray cannot start)."""
    out = tmp_path / "clustered.mkv"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "vs_colorgan.render", str(source), str(out), "--model", str(model),
                           "--workers", "2", "--quiet", "--end", "5"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "on 2 Ray workers" in proc.stderr
    assert len(decoded(out)) == 6
    assert only(tmp_path) == ["clustered.mkv"]


def test_benchmark_prints_fps_for_each_worker_count(ray_cluster, model: Path) -> None:
    """benchmarks/cluster.py with tiny settings: the report's shape only (timings are never asserted)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cluster.py"), "--model", str(model),
                           "--size", "96x64", "--frames", "8", "--workers", "1,2", "--chunk-frames", "4", "--small-chunk", "2",
                           "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert [r["run"] for r in report["runs"]] == ["single", "single --threads 1", "--workers 1", "--workers 2",
                                                   "--workers 1 --chunk-frames 2"]
    assert all(r["fps"] > 0 for r in report["runs"])
    assert [r["identical"] for r in report["runs"][2:]] == [True, True, True]
    assert [r["chunks"] for r in report["runs"][2:]] == [2, 2, 4]
    assert isinstance(report["ray_overhead_per_chunk_ms"], float) and report["noop_task_ms"] > 0


def test_cluster_address_joins_a_running_cluster(ray_cluster, model: Path, source: Path, tmp_path: Path) -> None:
    """`ray start --head` (blocking, stopped by its own process id), then `--cluster HOST:PORT` as a user runs it."""
    ray_bin = Path(sys.executable).parent / "ray"
    if not ray_bin.exists():
        pytest.skip(f"no ray command next to {sys.executable}")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "token"}
    head = subprocess.Popen([str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=2", "--block",
                             "--include-dashboard=false", "--object-store-memory=100000000", "--disable-usage-stats"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        single, clustered = tmp_path / "single.mkv", tmp_path / "clustered.mkv"
        assert render(source, single, "--model", model) == 0
        proc = None
        for _ in range(3):  # the head takes a few seconds to listen on a loaded machine
            proc = subprocess.run([sys.executable, "-m", "vs_colorgan.render", str(source), str(clustered), "--model",
                                   str(model), "--cluster", f"127.0.0.1:{port}", "--chunk-frames", "4", "--quiet"],
                                  env=env, capture_output=True, text=True, timeout=300)
            if proc.returncode == 0 or head.poll() is not None:
                break
        if head.poll() is not None:
            pytest.skip(f"ray start --head cannot start here: {head.stdout.read()[-500:]}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "in 3 chunks of 4 on 2 Ray workers" in proc.stderr
        assert clustered.read_bytes() == single.read_bytes()
        assert only(tmp_path) == ["clustered.mkv", "single.mkv"]
    finally:
        head.terminate()  # ray start --block stops the head's processes when it is terminated
        head.wait(timeout=120)
