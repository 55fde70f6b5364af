"""``colorize``'s options as the tools take them, derived from its signature: one source for every tool.

``colorgan-render`` (``--render-size 320``), the cluster's chunk tasks (which run ``colorgan-render``'s own
code) and the ``.vpy`` examples (``vspipe -a render_size=320``) all read :func:`colorize_options`, so an
option added to :func:`vs_colorgan.colorize` reaches each of them without being copied by hand, and an
option they do not know is an error there (argparse's, or :func:`vs_colorgan.render.vpy.colorize_options`'s).

>>> [o.flag for o in colorize_options()][:3]
['--model', '--backend', '--device']
"""
from __future__ import annotations

import argparse
import functools
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Kind = Literal["int", "float", "bool", "text", "path"]
BOOL_WORDS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


@dataclass(frozen=True)
class ColorizeOption:
    """One keyword argument of ``colorize``: its name, how a tool reads its value, its default and help."""

    name: str
    kind: Kind
    default: Any
    help: str

    @property
    def flag(self) -> str:
        """The command-line flag: ``render_size`` -> ``--render-size``."""
        return "--" + self.name.replace("_", "-")

    def parse(self, text: str) -> Any:
        """A value typed as text (``vspipe -a``) -> the Python value; ValueError when it does not parse.
        Paths are returned as typed (the caller resolves them)."""
        if self.kind == "int":
            return int(text)
        if self.kind == "float":
            return float(text)
        if self.kind == "bool":
            if text.lower() not in BOOL_WORDS:
                raise ValueError(text)
            return BOOL_WORDS[text.lower()]
        return text

    @property
    def expected(self) -> str:
        """What :meth:`parse` accepts, for error messages."""
        return {"int": "an integer", "float": "a number", "bool": "true or false (1/0, yes/no)",
                "text": "a word", "path": "a path"}[self.kind]


def _kind(name: str, annotation: str, default: Any) -> Kind:
    """How a tool reads the option, from its annotation (a string: filter.py uses postponed annotations)."""
    if annotation == "bool":
        return "bool"
    if "PathLike" in annotation or "ReferenceSpec" in annotation:
        return "path"
    if re.fullmatch(r"int( \| None)?", annotation):
        return "int"
    if re.fullmatch(r"float( \| None)?", annotation):
        return "float"
    if annotation == "str" or annotation.startswith("Literal["):
        return "text"
    # a new option of another type: say so here, not with a silently wrong parser in the tools
    raise TypeError(f"colorize's option {name!r} has a type the tools cannot read from text: {annotation}")


def _param_help(doc: str) -> dict[str, str]:
    """``:param name: text`` of a docstring -> {name: its first sentence}."""
    helps = {}
    for m in re.finditer(r":param (\w+): (.*?)(?=\n\s*:param |\n\s*\"\"\"|\Z)", doc, re.S):
        text = " ".join(m.group(2).split())
        helps[m.group(1)] = text.split(". ")[0].rstrip(".").replace("``", "")
    return helps


@functools.cache
def colorize_options() -> tuple[ColorizeOption, ...]:
    """Every keyword argument of :func:`vs_colorgan.colorize`, in its order."""
    from ..filter import colorize

    helps = _param_help(colorize.__doc__ or "")
    return tuple(ColorizeOption(p.name, _kind(p.name, str(p.annotation), p.default), p.default, helps.get(p.name, ""))
                 for p in inspect.signature(colorize).parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY)


def add_colorize_arguments(parser: argparse.ArgumentParser, *, help_override: dict[str, str] | None = None) -> None:
    """One ``--flag`` per colorize option, in a group of its own; defaults are colorize's."""
    group = parser.add_argument_group("colorize options (see docs/filter.md)")
    for o in colorize_options():
        text = (help_override or {}).get(o.name, o.help).replace("%", "%%")
        if o.kind == "bool":
            group.add_argument(o.flag, action="store_true" if o.default is False else argparse.BooleanOptionalAction,
                               default=o.default, help=text)
        else:
            kind = {"int": int, "float": float, "path": Path, "text": str}[o.kind]
            group.add_argument(o.flag, type=kind, default=o.default, help=text)


def options_from_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The colorize keyword arguments of a parsed command line (every option: a default is colorize's own)."""
    return {o.name: getattr(args, o.name) for o in colorize_options()}
