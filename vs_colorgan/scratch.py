"""Full-size float32 work planes kept per thread and reused from frame to frame.

Why: at 1080p the CPU steps of stage 4 (bilinear coefficients, gamut limit, quantisation) need about ten
960x540 float32 temporaries (2 MiB each). Freshly allocated every frame, glibc hands such blocks back to
the kernel when they are freed (they are above its mmap threshold, or at the top of a thread's heap), so
each frame touched them anew: ~4000 page faults and zero-fills per frame. Measured on the 2-core machine
of README "Speed": stage 4 at 1080p took 8.0 ms with fresh memory against 2.2 ms with the same
operations on reused planes. The planes are per thread (VapourSynth calls the filter from its worker
threads; the look-ahead never runs stage 4), sized to the last frame seen, and their contents are only
valid until the same thread's next call: a function that takes a :class:`Scratch` returns views of it only
where its caller consumes them at once (``Colorizer.postprocess`` writing a frame's planes).
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np


class Scratch:
    """Named float32 planes of the calling thread (``take(name, shape)``: reused while the shape holds).

    Keyed by the OS thread (``threading.get_ident``), not ``threading.local``: VapourSynth's worker threads are
    not Python threads, and the thread state Python makes for each callback on them, with its
    ``threading.local`` data, is dropped when the callback returns (measured: a new plane every frame). At most
    ``max_threads`` threads keep planes (the least recently seen one gives its planes up first)."""

    def __init__(self, max_threads: int = 16) -> None:
        self._planes: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_threads = max_threads

    def take(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        me = threading.get_ident()
        with self._lock:
            planes = self._planes.get(me)
            if planes is None:
                while len(self._planes) >= self.max_threads:
                    self._planes.popitem(last=False)
                planes = self._planes[me] = {}
            else:
                self._planes.move_to_end(me)
        buf = planes.get(name)
        if buf is None or buf.shape != shape:
            buf = planes[name] = np.empty(shape, dtype=np.float32)
        return buf


def take(scratch: Scratch | None, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A plane of ``scratch``, or a new one where there is none."""
    return np.empty(shape, dtype=np.float32) if scratch is None else scratch.take(name, shape)
