"""numba's ``njit`` where numba is installed, else the function as written (plain Python and numpy).

For loops that numpy cannot vectorise (recursive filters, one-pass kernels): compiled on first use and
cached on disk; ``error_model="numpy"`` (a float division by zero gives inf/nan as numpy does, with no check
per division, which also lets LLVM vectorise), no ``fastmath`` (IEEE float32 as numpy computes it, so the
compiled and the plain function give the same bits).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; a broken install still runs, slower
    numba = None

F = TypeVar("F", bound=Callable)


def available() -> bool:
    return numba is not None


def jit(fn: F) -> F:
    """``numba.njit(cache=True, nogil=True, error_model="numpy")(fn)``, or ``fn`` without numba; without the
    disk cache where numba finds no writable place for it (a read-only install with no writable home: numba
    raises at decoration, which would fail the import), so it compiles again in each process there."""
    if numba is None:
        return fn
    try:
        return numba.njit(cache=True, nogil=True, error_model="numpy")(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True, error_model="numpy")(fn)
