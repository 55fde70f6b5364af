"""vs_colorgan: automatic colourization of black-and-white video for VapourSynth.

``vs_colorgan.colorize(clip, ...)`` is the filter (see :mod:`vs_colorgan.filter` and docs/filter.md).
It is imported lazily, so training and export code can use ``vs_colorgan.color`` and friends without
VapourSynth being loaded.

The package in three parts: the filter core at the top level (``filter``, ``pipeline``, ``backends``,
``model_io``, ``networks``, ``formats``, ``color``, ``upsample``, ``temporal``, ``lookahead``, ``media``);
:mod:`vs_colorgan.reference`, colour from hand-coloured keyframes; :mod:`vs_colorgan.render`, the tools that
render films (``colorgan-render``, on Ray too). Imports only run downwards (tests/test_layout.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["colorize", "Colorizer", "ColorOptions", "BackendSettings"]

if TYPE_CHECKING:
    from .backends import BackendSettings
    from .filter import colorize
    from .pipeline import ColorOptions, Colorizer


def __getattr__(name: str) -> Any:  # PEP 562 lazy attributes
    if name == "colorize":
        from .filter import colorize

        return colorize
    if name in ("Colorizer", "ColorOptions"):
        from . import pipeline

        return getattr(pipeline, name)
    if name == "BackendSettings":
        from .backends import BackendSettings

        return BackendSettings
    raise AttributeError(f"module 'vs_colorgan' has no attribute {name!r}")
