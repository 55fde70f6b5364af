"""The glue's small tensor operations on the calling thread alone (OpenMP's per-thread thread count).

Why: torch runs an element-wise operation on more than 32768 elements (its grain size) as an OpenMP
parallel region over ``torch.get_num_threads()`` threads. Inside the filter the other core is mostly busy
(ONNX Runtime's inference of the next frame on the look-ahead thread, or VapourSynth's other frame), so
each region's second thread waits for a time slice and the region with it: on the 2-core machine of
docs/filter.md, a 4-frame temporal blend on the 176x96 work grid took 64 ms (median) with 2 threads and
0.4 ms with 1 (benchmarks in issue 15's notes). The glue's operations are a few hundred microseconds of
work each, too small to gain from a second thread anyway.

OpenMP keeps the thread count per thread (``omp_set_num_threads`` sets the calling thread's nthreads-var
ICV; OpenMP 4.5 section 3.2.1) and torch's OpenMP backend reads it per call (``at::get_num_threads`` is
``omp_get_max_threads``), so :func:`glue_threads` lowers it for the calling thread only, for the duration
of the block, and restores it: the user's own torch work and the torch backend's inference keep their
threads. Where torch's OpenMP runtime cannot be found (another platform, a build without OpenMP) it does
nothing.
"""
from __future__ import annotations

import ctypes
import functools
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])
_outer = threading.local()  # the thread count that the outermost glue_threads block replaced


@functools.cache
def _openmp() -> Any | None:
    """torch's OpenMP runtime (the libgomp/libiomp loaded with it), or None."""
    if not sys.platform.startswith("linux") or not torch.backends.openmp.is_available():
        return None
    try:
        with open("/proc/self/maps") as f:
            found = re.findall(r"\S*lib(?:gomp|iomp5|omp)[^/\s]*\.so[^/\s]*", f.read())
        lib = ctypes.CDLL(found[0]) if found else None  # the loaded library: dlopen returns its handle
        lib.omp_set_num_threads.argtypes, lib.omp_get_max_threads.restype = [ctypes.c_int], ctypes.c_int
        return lib
    except (OSError, AttributeError, IndexError):
        return None


@contextmanager
def openmp_threads(threads: int) -> Iterator[int | None]:
    """Run torch's CPU operations of the block on ``threads`` OpenMP threads of the calling thread, and restore the
    count after; yields the count it replaced. Where torch's OpenMP runtime cannot be found nothing changes (yields
    None). The one place that sets the count: :func:`glue_threads` and :func:`inference_threads` use it."""
    omp = _openmp()
    if omp is None:
        yield None
        return
    torch.get_num_threads()  # torch sets a thread's count on its first parallel call: let it happen first
    before = omp.omp_get_max_threads()
    omp.omp_set_num_threads(max(1, int(threads)))
    try:
        yield before
    finally:
        omp.omp_set_num_threads(before)


@contextmanager
def glue_threads() -> Iterator[None]:
    """Run torch's CPU operations of the block on the calling thread alone (see the module docstring)."""
    outermost = getattr(_outer, "threads", None) is None
    try:
        with openmp_threads(1) as before:
            if outermost:
                _outer.threads = before
            yield
    finally:
        if outermost:
            _outer.threads = None


@contextmanager
def inference_threads() -> Iterator[None]:
    """Inside a :func:`glue_threads` block, give the block's inference (the torch backend) the thread count
    the glue block replaced; elsewhere nothing changes."""
    threads = getattr(_outer, "threads", None)
    if threads is None:
        yield
        return
    with openmp_threads(threads):
        yield


def single_threaded(fn: F) -> F:
    """Decorator form of :func:`glue_threads`."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with glue_threads():
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
