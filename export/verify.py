"""Check an exported ONNX file against the PyTorch model it came from, with ONNX Runtime.

Both sides get the same inputs: uniform noise at sizes other than the one the exporter traced
(so a frozen size shows), and real photographs from scikit-image's bundled ``skimage.data``
(astronaut, coffee, chelsea, camera) converted to what the interface takes. The reference is
always the float32 PyTorch model (an fp16 file is measured against what it approximates).

Errors are absolute, in the output's own units:

* native: ab_norm (1.0 = 110 a*/b* units; ``vs_colorgan.color``);
* vsmlrt: sRGB in [0, 1] (1/255 = 0.0039 is one 8-bit code value).

Tolerances (:data:`TOLERANCES`). fp32: ORT and PyTorch sum the same products in a different order,
so 1e-3 max / 1e-4 mean is about 10x what we measure (1e-7 ... 2e-4, a partly trained U-Net giving
the largest) yet 4x below an 8-bit step. fp16: float16 keeps 11 significant bits (relative step
4.9e-4), compounded over the ~20 layers of the ResNet-18 encoder; 3e-2 max / 3e-3 mean (3.3 / 0.33 ab
units) stays about one just-noticeable colour difference (Delta E ~ 2.3, Sharma 2003) at worst while
failing broken conversions, whose errors are of the order of the signal (0.1 ... 1).

fp16 on uniform noise is judged on the mean only, and more loosely (:data:`NOISE_FP16`: mean 1e-2):
noise is far outside what a trained generator has seen, its activations run large, and float16 then
loses single pixels by 0.1 or more (measured on a partly trained U-Net width 32: max 0.19, mean 6e-4
with ONNX Runtime; PyTorch's own float16 gives max 0.16, mean 3.3e-3) while the photographs stay
within max 1.1e-2 / mean 1.5e-4. The noise cases are there to catch frozen sizes, which break the
mean as well.
"""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vs_colorgan.color import normalize_l, rgb_to_lab
from vs_colorgan.model_io import ModelConfig
from vs_colorgan.pipeline import render_shape

from .onnx_export import Target, build_graph


@dataclass(frozen=True)
class Tolerance:
    max_abs: float
    mean_abs: float


TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("native", "fp32"): Tolerance(1e-3, 1e-4),
    ("native", "fp16"): Tolerance(3e-2, 3e-3),
    ("vsmlrt", "fp32"): Tolerance(1e-3, 1e-4),
    ("vsmlrt", "fp16"): Tolerance(3e-2, 3e-3),
}
UNITS = {"native": "ab_norm", "vsmlrt": "sRGB [0, 1]"}
# skimage.data images shipped inside the scikit-image wheel (no download).
IMAGES = ("astronaut", "coffee", "chelsea", "camera")


# fp16 on uniform noise: mean only (see the module docstring)
NOISE_FP16 = Tolerance(math.inf, 1e-2)


def tolerance_for(target: str, precision: str, case: str) -> Tolerance:
    """The tolerance a parity case is held to: ``case`` is "random" or an image name."""
    if case == "random" and precision == "fp16":
        return NOISE_FP16
    return TOLERANCES[(target, precision)]


@dataclass(frozen=True)
class ParityCase:
    name: str
    shape: tuple[int, ...]
    max_abs: float
    mean_abs: float
    tolerance: Tolerance

    @property
    def passed(self) -> bool:
        return self.max_abs <= self.tolerance.max_abs and self.mean_abs <= self.tolerance.mean_abs


@dataclass(frozen=True)
class ParityReport:
    target: str
    precision: str
    tolerance: Tolerance  # for the photographs (and for everything in fp32)
    cases: tuple[ParityCase, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def max_abs(self) -> float:
        return max(c.max_abs for c in self.cases)

    @property
    def mean_abs(self) -> float:
        return max(c.mean_abs for c in self.cases)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cases)

    def failures(self) -> list[ParityCase]:
        return [c for c in self.cases if not c.passed]

    def lines(self) -> list[str]:
        tol = self.tolerance
        head = (f"parity, ONNX Runtime vs PyTorch fp32 ({self.target}, {self.precision}; error in {UNITS[self.target]}; "
                f"tolerance max {tol.max_abs:.0e}, mean {tol.mean_abs:.0e}")
        if self.precision == "fp16":
            head += f"; on noise mean {NOISE_FP16.mean_abs:.0e}"
        out = [head + "):"]
        for c in self.cases:
            shape = "x".join(map(str, c.shape))
            out.append(f"  {c.name:<12} {shape:<14} max {c.max_abs:.2e}  mean {c.mean_abs:.2e}  {'ok' if c.passed else 'FAIL'}")
        out += [f"  note: {n}" for n in self.notes]
        out.append(f"  worst: max {self.max_abs:.2e}, mean {self.mean_abs:.2e} -> {'PASS' if self.passed else 'FAIL'}")
        return out


class ParityError(RuntimeError):
    """The ONNX file's output differs from PyTorch's beyond the tolerance."""

    def __init__(self, report: ParityReport) -> None:
        self.report = report
        worst = ", ".join(f"{c.name} {'x'.join(map(str, c.shape))}: max {c.max_abs:.2e} (allowed {c.tolerance.max_abs:.0e}), "
                          f"mean {c.mean_abs:.2e} (allowed {c.tolerance.mean_abs:.0e})" for c in report.failures())
        super().__init__(f"ONNX output differs from PyTorch beyond tolerance ({worst})")


def _real_images() -> Iterator[tuple[str, torch.Tensor]]:
    """(name, sRGB (1, 3, H, W) in [0, 1]) for each of :data:`IMAGES`."""
    import skimage.data

    for name in IMAGES:
        img = torch.from_numpy(np.ascontiguousarray(getattr(skimage.data, name)())).float() / 255.0
        img = img.expand(3, *img.shape) if img.ndim == 2 else img.permute(2, 0, 1)
        yield name, img.unsqueeze(0).contiguous()


def parity_inputs(config: ModelConfig, target: Target, *, seed: int = 0) -> tuple[list[tuple[str, torch.Tensor]], list[str]]:
    """The inputs the check feeds: [(name, tensor)] in the interface's form, and notes (skipped parts)."""
    gen = torch.Generator().manual_seed(seed)
    m = config.size_multiple
    notes: list[str] = []
    if target == "native":
        # L_norm noise: a batch of 2 at one size, then a lone frame at another (dynamic N, H, W).
        cases = [("random", torch.rand(2, 1, 3 * m, 2 * m, generator=gen) * 2 - 1),
                 ("random", torch.rand(1, 1, 4 * m, 5 * m, generator=gen) * 2 - 1)]
    else:
        # Gray noise at sizes that are multiples of nothing (the graph resizes internally).
        cases = [("random", torch.rand(1, 1, 93, 157, generator=gen)),
                 ("random", torch.rand(1, 1, 241, 190, generator=gen))]
    try:
        images = list(_real_images())
    except ImportError:
        notes.append("real images skipped: scikit-image is not installed (pip install scikit-image)")
        images = []
    for name, rgb in images:
        if target == "native":
            # What the filter feeds: L of the frame, at the render size (short side render_size).
            w, h = render_shape(rgb.shape[3], rgb.shape[2], config.render_size, config.size_multiple)
            small = F.interpolate(rgb, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
            cases.append((name, normalize_l(rgb_to_lab(small.clamp(0, 1))[:, :1])))
        else:
            # A black-and-white frame as vs-mlrt gets it: gamma-encoded luma (BT.601) at full size.
            y = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]
            cases.append((name, y.contiguous()))
    return cases, notes


def verify_onnx(
    path: str | os.PathLike,
    model: nn.Module,
    config: ModelConfig,
    *,
    target: Target = "native",
    fp16: bool = False,
    render_size: int | None = None,
    matrix: int | None = None,
    threads: int = 0,
    seed: int = 0,
    strict: bool = True,
) -> ParityReport:
    """Run ``path`` with ONNX Runtime (CPU) and PyTorch fp32 on the same inputs; report the errors.

    ``threads``: ORT intra-op threads (0 = ORT's default). With ``strict`` (default), raises
    :class:`ParityError` when a case exceeds its tolerance (:func:`tolerance_for`).

    >>> report = verify_onnx("model.onnx", model, cfg)
    >>> print("\\n".join(report.lines()))
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3  # errors only: ORT warns about fp16 casts it inserts on CPU
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    (inp,) = [i.name for i in session.get_inputs()]
    reference = build_graph(model, config, target=target, fp16=False, render_size=render_size, matrix=matrix)
    if render_size is not None:
        config = dataclasses.replace(config, render_size=render_size)
    inputs, notes = parity_inputs(config, target, seed=seed)
    precision = "fp16" if fp16 else "fp32"
    cases = []
    with torch.inference_mode():
        for name, x in inputs:
            want = reference(x).numpy()
            got = session.run(None, {inp: x.numpy()})[0]
            if got.shape != want.shape:  # e.g. a size frozen at export time
                notes.append(f"{name}: ONNX output shape {got.shape}, PyTorch {want.shape}")
                cases.append(ParityCase(name, tuple(x.shape), math.inf, math.inf, tolerance_for(target, precision, name)))
                continue
            err = np.abs(got.astype(np.float64) - want)
            cases.append(ParityCase(name, tuple(x.shape), float(err.max()), float(err.mean()),
                                    tolerance_for(target, precision, name)))
    report = ParityReport(target, precision, TOLERANCES[(target, precision)], tuple(cases), tuple(notes))
    if strict and not report.passed:
        raise ParityError(report)
    return report
