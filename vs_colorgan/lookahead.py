"""Inference one frame ahead, on a thread of its own.

VapourSynth R81 runs a Python filter's frame callback one frame at a time (``std.ModifyFrame`` and
``std.FrameEval`` alike; tests/test_filter_temporal.py checks it), so inside one ``colorize`` call the glue of
frame n (guided upsampling, colour conversion, quantisation) and the inference of frame n + 1 would
otherwise never overlap. In a sequential render the callback of frame n hands frame n + 1's luma and
inference to this thread, which fills the filter's caches; the callback of n + 1 then finds the prediction
there, or waits for it (:class:`vs_colorgan.temporal.PredictionCache` computes each key once, whoever asks
first). The values are the ones the callback would compute itself, so the output does not depend on it.
"""
from __future__ import annotations

import atexit
import logging
import queue
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future

import torch
import vapoursynth as vs

log = logging.getLogger("vs_colorgan")

_STOP = object()  # the job that ends the thread
_LIVE: weakref.WeakSet[Lookahead] = weakref.WeakSet()


@atexit.register
def _stop_all(timeout_s: float = 30.0) -> None:
    """At interpreter exit, let each running job finish and end its thread, before Python finalises. A daemon
    thread still inside a job (torch, ONNX Runtime or a VapourSynth get_frame) when finalisation starts is
    ended from under that C++ code, which aborts the process ("terminate called without an active
    exception", seen in tests before this existed); atexit handlers run while every thread still can."""
    for la in list(_LIVE):
        la.stop(timeout_s)


class Lookahead:
    """Submitted jobs run in order on one daemon thread; a job's failure is logged, never raised (the frame's
    own callback meets the same failure and reports it as that frame's error). The thread starts with the
    first job and ends after ``idle_s`` without one, so a script that is loaded again and again (a preview
    editor) or a filter that is never rendered leaves no thread behind."""

    def __init__(self, *, idle_s: float = 5.0, name: str = "vs_colorgan-lookahead") -> None:
        self._jobs: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._idle_s = idle_s
        self._name = name
        self._last = -2  # the frame number of the last callback: look ahead only while frames come in order
        self._stopped = False
        _LIVE.add(self)

    def _run(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self._idle_s)
            except queue.Empty:
                with self._lock:  # submit() puts and checks under the same lock: no job is left behind
                    if self._jobs.empty():
                        self._thread = None
                        return
                continue
            if job is _STOP:
                return
            try:
                with torch.inference_mode():  # thread-local, like the callback's
                    job()
            except Exception:
                log.debug("vs_colorgan: a look-ahead job failed", exc_info=True)

    @property
    def running(self) -> bool:
        with self._lock:
            return self._thread is not None

    def in_order(self, n: int) -> bool:
        """Record a callback for frame ``n``; True when the one before was ``n - 1`` (a sequential render:
        frame n + 1 will be asked for next, so computing it ahead is not wasted, unlike on seeks)."""
        sequential = n == self._last + 1
        self._last = n
        return sequential

    def passed(self, n: int) -> bool:
        """True once a callback for frame ``n`` or a later one has started: a job for ``n`` still queued then
        has nothing left to win (that callback computes or awaits the value itself), and run late, after the
        caches let ``n`` go, it would compute it a second time."""
        return self._last >= n

    def stop(self, timeout_s: float = 30.0) -> None:
        """Drop the jobs not started, let the running one finish, end the thread; later jobs are ignored."""
        with self._lock:
            self._stopped = True
            thread, self._thread = self._thread, None
            while True:
                try:
                    self._jobs.get_nowait()
                except queue.Empty:
                    break
            if thread is not None:
                self._jobs.put(_STOP)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def submit(self, job: Callable[[], object]) -> None:
        with self._lock:
            if self._stopped:
                return
            self._jobs.put(job)
            if self._thread is None:
                # a daemon: a job waiting on a VapourSynth frame must not hold up the end of vspipe or Python
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()


class FramesAhead:
    """Frames of one clip asked for a frame early, for the look-ahead jobs: :meth:`get` returns frame ``i``'s
    future (the one asked for before, where there is one) and asks for frame ``i + 1`` now, so that
    VapourSynth's threads make it while frame ``i`` is worked on. One per ``colorize`` call, shared by its
    look-aheads, so each frame is asked for once. Called from the frame callbacks, which run one at a time."""

    def __init__(self, clip: vs.VideoNode) -> None:
        self.clip = clip
        self._asked: dict[int, Future[vs.VideoFrame]] = {}  # the last frame handed out and the one after it

    def get(self, i: int) -> Future[vs.VideoFrame]:
        asked = self._asked
        frame = asked.get(i) or self.clip.get_frame_async(i)
        after = asked.get(i + 1) or (self.clip.get_frame_async(i + 1) if i + 1 < self.clip.num_frames else None)
        self._asked = {i: frame} if after is None else {i: frame, i + 1: after}
        return frame
