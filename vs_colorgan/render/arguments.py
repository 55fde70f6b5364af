"""The checks and exit conditions the single render (:mod:`~vs_colorgan.render.command`) and the clustered one
(:mod:`~vs_colorgan.render.cluster`) share: each is written once, here.

Every check raises :class:`RenderError` with a message for the user as it stands (exit status 2).
"""
from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PROG = "colorgan-render"


class RenderError(Exception):
    """A bad argument or input, with a message for the user as it stands (exit status 2)."""


def frame_number(text: str) -> int:
    """argparse type of ``--start`` / ``--end``: a frame number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a frame number (0 or more), not {text!r}")
    return value


def check_files(args: argparse.Namespace) -> None:
    """INPUT is a file; OUTPUT is not INPUT, not a folder, and its folder exists."""
    if not args.input.is_file():
        raise RenderError(f"INPUT {str(args.input)!r} is not a file")
    if args.output.exists() and args.output.resolve() == args.input.resolve():
        raise RenderError("OUTPUT must not be INPUT: the render reads INPUT while it writes")
    if args.output.is_dir():
        raise RenderError(f"OUTPUT {str(args.output)!r} is a folder; name the file to write")
    if not args.output.parent.is_dir():
        raise RenderError(f"OUTPUT's folder {str(args.output.parent)!r} does not exist")


def check_codec_options(args: argparse.Namespace, codec: str) -> None:
    """``--crf`` only where it means something."""
    if args.crf is not None and codec == "ffv1":
        raise RenderError("--crf applies to h264/h265; FFV1 is lossless")


def check_references(references: Path | None) -> None:
    if references is not None and not references.is_dir():
        raise RenderError(f"--references must be a folder of reference images, not {str(references)!r}")


def frame_range(args: argparse.Namespace, num_frames: int) -> tuple[int, int]:
    """``--start`` and ``--end`` (inclusive) for a clip of ``num_frames`` frames, defaults filled in."""
    start = 0 if args.start is None else args.start
    end = num_frames - 1 if args.end is None else args.end
    if start > end:
        raise RenderError(f"--start ({start}) must not be after --end ({end})")
    if end >= num_frames:
        raise RenderError(f"--end must be a frame of the clip (0 to {num_frames - 1}), not {end}")
    return start, end


class Terminated(BaseException):
    """SIGTERM/SIGHUP, raised in the main thread so that temporary files are removed on the way out."""


# signals received inside terminated_on_signals(): raising in the handler is not always enough, since a
# VapourSynth callback that happens to run on the main thread when the signal comes reports the exception as
# "ignored" and goes on (a Ctrl-C'd render once finished and exited 0); the render loop asks again every frame
_pending: list[int] = []


_deferred: list[bool] = []  # non-empty inside signals_deferred()


def _raise_terminated(signum: int, _frame: Any) -> None:
    _pending.append(signum)
    if not _deferred:
        raise Terminated(signum)


def _raise_interrupt(signum: int, _frame: Any) -> None:
    _pending.append(signum)
    if not _deferred:
        raise KeyboardInterrupt


def raise_pending_signal() -> None:
    """Raise again the first signal received inside :func:`terminated_on_signals` (KeyboardInterrupt for
    SIGINT, else :class:`Terminated`); nothing when none came. Called once per frame by the render loops."""
    if _pending:
        signum = _pending[0]
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Inside the block a signal of :func:`terminated_on_signals` is only remembered, and raised when the block
    ends: for steps whose effect must be recorded before an interruption acts, like a submitted Ray task and
    its handle (without the handle the interrupted driver could not wait for that task, and its chunk landed
    after the driver had returned: seen once in tests/test_cluster.py). Python runs signal handlers on the main
    thread between bytecodes, so masking the signal for this thread would not defer them."""
    _deferred.append(True)
    try:
        yield
    finally:
        _deferred.pop()
    if not _deferred:
        raise_pending_signal()


@contextlib.contextmanager
def terminated_on_signals() -> Iterator[None]:
    """Inside the block, SIGTERM and SIGHUP raise :class:`Terminated` (like Ctrl-C raises KeyboardInterrupt),
    and every such signal, Ctrl-C included, is remembered for :func:`raise_pending_signal`."""
    handlers = {getattr(signal, name): _raise_terminated for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)}
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # leave a host's own Ctrl-C handling alone
        handlers[signal.SIGINT] = _raise_interrupt
    _pending.clear()
    previous = {s: signal.signal(s, handler) for s, handler in handlers.items()}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _pending.clear()
