"""Console scripts of the tools that need an optional extra: say which extra is missing, not a traceback.

``pip install vs_colorgan`` installs the filter and ``colorgan-render``; ``colorgan-train``, ``colorgan-gather``,
``colorgan-export`` and ``colorgan-eval`` need ``.[train]``, ``.[export]`` or ``.[eval]``. These wrappers check the
extra's modules before importing the tool (training would otherwise fail minutes in, at its first log), and turn
a ``ModuleNotFoundError`` for one of them later on into the same message.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable

# module -> the distribution that provides it
DISTRIBUTIONS = {"cv2": "opencv-python-headless", "PIL": "pillow", "skimage": "scikit-image",
                 "matplotlib": "matplotlib", "tensorboard": "tensorboard", "onnxslim": "onnxslim"}
# extra (pyproject.toml [project.optional-dependencies]) -> the modules it provides
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": ("tensorboard", "matplotlib", "cv2", "PIL"),
    "export": ("onnxslim", "skimage"),
    "eval": ("cv2", "matplotlib", "PIL"),
}


def _missing(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is None  # None: the import is blocked (how the tests simulate a missing one)
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def missing_extra_message(prog: str, extra: str, modules: list[str]) -> str:
    names = ", ".join(f"{DISTRIBUTIONS.get(m, m)} (module {m})" for m in modules)
    return (f"{prog}: needs the optional packages of the \"{extra}\" extra; missing: {names}. Install them with "
            f"pip install 'vs_colorgan[{extra}]' (in a clone: pip install -e '.[{extra}]')")


def launch(prog: str, target: str, extra: str, argv: list[str] | None = None) -> int:
    """Run ``target`` (``"module:function"``) as ``prog`` once the ``extra``'s modules are present."""
    missing = [m for m in EXTRAS[extra] if _missing(m)]
    if missing:
        print(missing_extra_message(prog, extra, missing), file=sys.stderr)
        return 2
    module, _, function = target.partition(":")
    try:
        main: Callable[..., int | None] = getattr(importlib.import_module(module), function)
        result = main(argv) if argv is not None else main()
    except ModuleNotFoundError as e:
        top = (e.name or "").partition(".")[0]
        if top not in EXTRAS[extra]:
            raise
        print(missing_extra_message(prog, extra, [top]), file=sys.stderr)
        return 2
    return int(result or 0)


# The tools' modules as this layout installs them (top-level training/, export/, evaluate/). When they move
# into the vs_colorgan namespace, these four targets become "vs_colorgan.training.cli:main" and so on.
def train(argv: list[str] | None = None) -> int:
    return launch("colorgan-train", "training.cli:main", "train", argv)


def gather(argv: list[str] | None = None) -> int:
    return launch("colorgan-gather", "training.gather:main", "train", argv)


def export(argv: list[str] | None = None) -> int:
    return launch("colorgan-export", "export.cli:main", "export", argv)


def evaluate(argv: list[str] | None = None) -> int:
    return launch("colorgan-eval", "evaluate.cli:main", "eval", argv)
