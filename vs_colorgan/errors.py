"""The one exception type of the filter's VapourSynth-free modules.

``backends``, ``formats`` and ``pipeline`` raise :class:`ColorizeError` with a message that names the
argument (or frame property), what is accepted and what was given; ``filter.colorize`` prefixes
``"vs_colorgan.colorize: "`` and re-raises it as ``vapoursynth.Error``.
"""
from __future__ import annotations


class ColorizeError(ValueError):
    """A bad option, input or model; the message is meant for the user as it stands."""
