"""Console scripts of the tools that need an optional extra: say which extra is missing, not a traceback.

``pip install vs_colorgan`` installs the filter and ``colorgan-render``; ``colorgan-train``, ``colorgan-gather``,
``colorgan-calibrate``, ``colorgan-export`` and ``colorgan-eval`` need ``.[train]``, ``.[export]`` or ``.[eval]``. These wrappers check the
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
    "eval": ("cv2", "matplotlib", "PIL", "skimage"),
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


def launch(prog: str, target: str, extra: str | None, argv: list[str] | None = None) -> int:
    """Run ``target`` (``"module:function"``) as ``prog`` once the ``extra``'s modules are present (None: a tool
    that needs no extra)."""
    needed = EXTRAS[extra] if extra is not None else ()
    missing = [m for m in needed if _missing(m)]
    if missing:
        print(missing_extra_message(prog, extra, missing), file=sys.stderr)
        return 2
    module, _, function = target.partition(":")
    try:
        main: Callable[..., int | None] = getattr(importlib.import_module(module), function)
        result = main(argv) if argv is not None else main()
    except ModuleNotFoundError as e:
        top = (e.name or "").partition(".")[0]
        if extra is None or top not in EXTRAS[extra]:
            raise
        print(missing_extra_message(prog, extra, [top]), file=sys.stderr)
        return 2
    return int(result or 0)


# The tools' modules: the repo's training/, export/ and evaluate/ install as vs_colorgan.training etc.
def train(argv: list[str] | None = None) -> int:
    return launch("colorgan-train", "vs_colorgan.training.cli:main", "train", argv)


def gather(argv: list[str] | None = None) -> int:
    return launch("colorgan-gather", "vs_colorgan.training.gather:main", "train", argv)


def calibrate(argv: list[str] | None = None) -> int:
    return launch("colorgan-calibrate", "vs_colorgan.training.calibrate:main", "train", argv)


def export(argv: list[str] | None = None) -> int:
    return launch("colorgan-export", "vs_colorgan.export.cli:main", "export", argv)


def evaluate(argv: list[str] | None = None) -> int:
    return launch("colorgan-eval", "vs_colorgan.evaluate.cli:main", "eval", argv)


def adapt(argv: list[str] | None = None) -> int:
    # needs only the filter's own dependencies (torch, torchvision, OpenCV, VapourSynth): no extra
    return launch("colorgan-adapt", "vs_colorgan.training.adapt:main", None, argv)
