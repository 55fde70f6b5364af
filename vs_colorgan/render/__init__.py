"""The tools that render films with ``colorize``: ``colorgan-render``, on one machine or on a Ray cluster.

Layers, each importing only those below it:

* :mod:`~vs_colorgan.render.command` - ``colorgan-render``'s command line and ``main``;
* :mod:`~vs_colorgan.render.cluster` - ``--workers`` / ``--cluster``: the driver that schedules chunks on Ray;
* :mod:`~vs_colorgan.render.tasks` - what runs on a Ray worker: a chunk, the probe;
* :mod:`~vs_colorgan.render.plan` - the chunks of a clustered render and their identity (no Ray needed);
* :mod:`~vs_colorgan.render.job` - a render job: the clip opened and colourized, a frame range encoded;
* :mod:`~vs_colorgan.render.encode` - encoding, muxing, audio and stitching with PyAV;
* :mod:`~vs_colorgan.render.arguments` - the checks of the arguments the single and the clustered render share;
* :mod:`~vs_colorgan.render.options` - ``colorize``'s options as the tools take them (from its signature);
* :mod:`~vs_colorgan.render.vpy` - helpers of the ``.vpy`` examples (``vspipe -a`` options, user paths).

``colorgan-render`` is :func:`main`; ``python -m vs_colorgan.render`` runs it too.
"""
from __future__ import annotations

from typing import Any

__all__ = ["main", "build_parser", "render_range"]


def __getattr__(name: str) -> Any:  # PEP 562: the command's names, imported when first asked for
    if name in ("main", "build_parser"):
        from . import command

        return getattr(command, name)
    if name == "render_range":
        from .job import render_range

        return render_range
    raise AttributeError(f"module 'vs_colorgan.render' has no attribute {name!r}")
