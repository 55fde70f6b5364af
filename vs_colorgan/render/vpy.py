"""Helpers for ``.vpy`` scripts run by ``vspipe``: user paths and ``-a key=value`` options.

VapourSynth R81's vspipe changes into the script's own folder before running it (``vspipe -a
src=film.mkv examples/colorize.vpy -`` runs with the working directory ``examples/``), so a path the user
typed relative to where they started the command would be looked up in the wrong folder. What the script
still has of the start (measured with R81):

* ``__file__``: the script path exactly as typed (``examples/colorize.vpy``, relative to the start);
* the ``PWD`` environment variable: the start folder as the shell saw it (stale when a program changed
  its working directory without updating ``PWD``, e.g. ``subprocess.run(..., cwd=...)``).

:func:`start_dir` takes ``PWD`` when the typed script path, read from it, is this very script; else the
folder that many levels above the working directory; else ``PWD`` or the working directory as they are.
Outside vspipe (Python's ``runpy``, vsedit, the tests) the working directory is the start and is used.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _same(a: Path, b: Path) -> bool:
    try:
        return a.is_file() and b.is_file() and os.path.samefile(a, b)
    except OSError:
        return False


def start_dir(script: str | os.PathLike | None) -> Path:
    """The folder the command that runs ``script`` (a .vpy's ``__file__``) was started from."""
    cwd = Path.cwd()
    pwd = os.environ.get("PWD")
    if script is None:
        return cwd
    typed = Path(script)
    here = cwd / typed.name  # where vspipe R81 runs the script from: its own folder
    if not here.is_file():  # not run from the script's folder: the working directory is the start
        return cwd
    if not typed.is_absolute():
        if pwd and _same(Path(pwd) / typed, here):
            return Path(pwd)
        parts = typed.parent.parts
        if ".." not in parts and len(parts) < len(cwd.parts):
            up = cwd.parents[len(parts) - 1] if parts else cwd
            if _same(up / typed, here):
                return up
    return Path(pwd) if pwd and Path(pwd).is_dir() else cwd


def user_path(path: str | os.PathLike, script: str | os.PathLike | None) -> str:
    """``path`` as typed by the user, made absolute against :func:`start_dir` (absolute paths unchanged)."""
    p = Path(os.path.expanduser(str(path)))
    return str(p if p.is_absolute() else start_dir(script) / p)


def colorize_options(args: Mapping[str, Any], script: str | os.PathLike | None, name: str, *,
                     own: tuple[str, ...] = ()) -> dict[str, Any]:
    """The ``colorize`` keyword arguments among a script's ``vspipe -a key=value`` options, typed.

    ``args`` holds the ``-a`` options only (a script takes ``dict(globals())`` as its first statement, before
    its own names exist; names starting with ``__`` are Python's and skipped). ``own`` are the script's own
    keys (``src``), left to it. Every other key must be a colorize option (:mod:`vs_colorgan.render.options`):
    an unknown one is an error, never ignored. ``name`` (the script's file name) prefixes the errors;
    colorize validates the values further. Paths are resolved with :func:`user_path`.
    """
    import vapoursynth as vs

    from .options import colorize_options as known

    by_name = {o.name: o for o in known()}
    options: dict[str, Any] = {}
    for key, raw in args.items():
        if key.startswith("__") or key in own:
            continue
        option = by_name.get(key)
        if option is None:
            accepted = ", ".join((*own, *by_name))
            raise vs.Error(f"{name}: unknown option -a {key}=; it takes {accepted} (colorize's options, docs/filter.md)")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        try:
            value = option.parse(text)
        except ValueError:
            raise vs.Error(f"{name}: -a {key}= must be {option.expected}, not {text!r}") from None
        options[key] = user_path(value, script) if option.kind == "path" else value
    return options
