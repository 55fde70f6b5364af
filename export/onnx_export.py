"""Generator -> ONNX. The native interface: input ``l`` = L_norm (N, 1, H, W), output ``ab`` = ab_norm
(N, 2, H, W), dynamic batch/height/width; the model's :class:`~vs_colorgan.model_io.ModelConfig`
JSON is stored in ``metadata_props`` so the filter knows how to feed it.

Keyword options add the vs-mlrt interface (``target="vsmlrt"``: GRAYS in, RGBS out, see
:mod:`export.graphs`), a float16 core (``fp16=True``), onnxslim simplification and a ``check``
run on the finished temporary file before it is renamed into place (``colorgan-export`` passes
its ONNX Runtime parity check there, so a model that fails it never appears at ``path``).

Metadata keys (``metadata_props``), all strings:

* ``vs_colorgan`` (:data:`~vs_colorgan.model_io.METADATA_KEY`): ModelConfig JSON (arch, width,
  render_size, preset, l_scale, ab_scale, format_version); ``model_io.read_config`` reads it.
* ``vs_colorgan.interface``: ``native`` or ``vsmlrt``.
* ``vs_colorgan.precision``: ``fp32`` or ``fp16`` (the generator's arithmetic; IO is float32 always).
* ``vs_colorgan.io``: the inputs and outputs in words.
* ``vs_colorgan.simplified``: ``onnxslim <version>`` or ``no``.
* ``vs_colorgan.luma`` (vsmlrt only): ``L*`` (the output keeps the input's L*) or ``Y' matrix N`` (it
  keeps the input as Y' of ITU-T H.273 matrix N, like the filter).
* ``vs_colorgan.exporter``: torch and onnx versions that wrote the file.
* anything passed in ``extra_metadata`` (``colorgan-export`` adds ``vs_colorgan.source_sha256``).
"""
from __future__ import annotations

import copy
import dataclasses
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from vs_colorgan.color import MATRIX_COEFFICIENTS
from vs_colorgan.errors import ColorizeError
from vs_colorgan.model_io import (METADATA_KEY, ModelConfig, ModelFileError, atomic_write, check_render_size,
                                   read_config)

from .graphs import NativeGraph, VsmlrtGraph

DEFAULT_OPSET = 17
# The TorchScript exporter writes opsets up to 20 (torch.onnx._constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET);
# 17 is the floor the project supports (LayerNorm-era ops, ORT >= 1.18 and vs-mlrt's ORT all run it).
MIN_OPSET, MAX_OPSET = 17, 20

Target = Literal["native", "vsmlrt"]
TARGETS: tuple[str, ...] = ("native", "vsmlrt")

INTERFACE_KEY = f"{METADATA_KEY}.interface"
PRECISION_KEY = f"{METADATA_KEY}.precision"
IO_KEY = f"{METADATA_KEY}.io"
SIMPLIFIED_KEY = f"{METADATA_KEY}.simplified"
EXPORTER_KEY = f"{METADATA_KEY}.exporter"
SOURCE_KEY = f"{METADATA_KEY}.source_sha256"
LUMA_KEY = f"{METADATA_KEY}.luma"


@dataclass(frozen=True, kw_only=True)
class ExportInfo:
    """What an exported file says about itself (see the metadata keys in the module docstring)."""

    config: ModelConfig
    interface: str
    precision: str
    opset: int
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    metadata: Mapping[str, str]


def _io_text(target: str, config: ModelConfig, render_size: int, matrix: int | None = None) -> str:
    m = config.size_multiple
    if target == "native":
        return (f"l: L_norm = L*/{config.l_scale:g} - 1, float32 (N, 1, H, W), H and W multiples of {m} "
                f"-> ab: ab_norm = ab/{config.ab_scale:g}, float32 (N, 2, H, W)")
    ending = ("ab enlarged bilinearly, full-resolution L* of the input kept" if matrix is None else
              f"Cb/Cr (matrix {matrix}) enlarged bilinearly and gamut-limited, the input kept as Y'")
    return (f"gray: gamma-encoded gray level in [0, 1], float32 (1, 1, H, W), any H and W "
            f"-> rgb: sRGB, float32 (1, 3, H, W); the model runs with the short side at "
            f"{render_size} (sides multiples of {m}); {ending}")


def _check_options(config: ModelConfig, *, opset: int, target: str, render_size: int | None,
                   matrix: int | None = None) -> None:
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"export_onnx: \"opset\" must be an integer from {MIN_OPSET} to {MAX_OPSET}, not {opset!r}")
    if target not in TARGETS:
        raise ValueError(f"export_onnx: \"target\" must be one of {', '.join(TARGETS)}, not {target!r}")
    if matrix is not None:
        if target != "vsmlrt":
            raise ValueError(f"export_onnx: \"matrix\" applies to target=\"vsmlrt\" only, not target={target!r}")
        if isinstance(matrix, bool) or matrix not in MATRIX_COEFFICIENTS:
            raise ValueError(f"export_onnx: \"matrix\" must be one of {', '.join(map(str, sorted(MATRIX_COEFFICIENTS)))} "
                             f"(ITU-T H.273) or None, not {matrix!r}")
    if render_size is not None:
        if target != "vsmlrt":
            raise ValueError(f"export_onnx: \"render_size\" applies to target=\"vsmlrt\" only (the native "
                             f"interface takes any multiple of {config.size_multiple}), not target={target!r}")
        try:  # the filter's rule: the vs-mlrt graph runs at a size colorize could run at
            check_render_size(render_size, config.size_multiple)
        except ColorizeError as e:
            raise ValueError(f"export_onnx: {e} ({config.arch})") from None


def build_graph(model: nn.Module, config: ModelConfig, *, target: Target = "native", fp16: bool = False,
                render_size: int | None = None, matrix: int | None = None) -> nn.Module:
    """The module :func:`export_onnx` traces (eval mode, CPU); also the PyTorch side of parity checks.

    ``model`` itself is left as it is (the float16 variant works on a copy).

    >>> graph = build_graph(model, cfg, target="vsmlrt")
    >>> rgb = graph(torch.rand(1, 1, 480, 640))  # (1, 3, 480, 640)
    """
    _check_options(config, opset=DEFAULT_OPSET, target=target, render_size=render_size, matrix=matrix)
    model = copy.deepcopy(model).eval().to("cpu").float()
    if target == "native":
        return NativeGraph(model, fp16=fp16).eval()
    return VsmlrtGraph(model, config, fp16=fp16, render_size=render_size, matrix=matrix).eval()


def simplify_onnx(path: str | os.PathLike) -> str:
    """Run onnxslim on the file at ``path`` in place; returns ``"onnxslim <version>"``.

    onnxslim folds constants and removes the Identity/Cast/shape-arithmetic chains the TorchScript
    exporter leaves; the dynamic height and width survive (checked by the export tests).
    """
    import onnx
    import onnxslim

    slim = onnxslim.slim(onnx.load(str(path)))
    if slim is None:  # onnxslim returns None when its own model check fails
        raise RuntimeError(f"onnxslim could not simplify {path}")
    onnx.save(slim, str(path))
    return f"onnxslim {onnxslim.__version__}"


def export_onnx(
    model: nn.Module,
    config: ModelConfig,
    path: str | os.PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    target: Target = "native",
    fp16: bool = False,
    simplify: bool = False,
    render_size: int | None = None,
    matrix: int | None = None,
    extra_metadata: Mapping[str, str] | None = None,
    check: Callable[[str], None] | None = None,
) -> None:
    """Write ``model`` to ``path`` atomically, with ``config`` (and what the file is) as metadata.

    By default: the native interface in float32, exactly as before these options existed.

    * ``target``: ``"native"`` (``l`` -> ``ab``, for vs_colorgan's ORT backend) or ``"vsmlrt"``
      (``gray`` -> ``rgb`` for ``core.ort.Model``, see :class:`export.graphs.VsmlrtGraph`).
    * ``fp16``: the generator's weights and arithmetic in float16; inputs/outputs stay float32.
    * ``simplify``: run onnxslim on the graph (:func:`simplify_onnx`).
    * ``render_size``: vsmlrt only; the short side the model runs at (default ``config.render_size``);
      the stored config carries the value used.
    * ``matrix``: vsmlrt only; None keeps the input's L* (default), an ITU-T H.273 matrix code (1, 4, 5,
      6, 7, 9) keeps the input as Y' of that matrix with the filter's gamut limit (:class:`VsmlrtGraph`).
    * ``check``: called with the finished temporary file; if it raises, nothing is written.

    >>> export_onnx(model, cfg, "model.onnx")
    >>> export_onnx(model, cfg, "model_vsmlrt_fp16.onnx", target="vsmlrt", fp16=True, simplify=True)
    """
    import onnx

    _check_options(config, opset=opset, target=target, render_size=render_size, matrix=matrix)
    graph = build_graph(model, config, target=target, fp16=fp16, render_size=render_size, matrix=matrix)
    if target == "vsmlrt":
        config = dataclasses.replace(config, render_size=graph.render_size)
    m = config.size_multiple
    # Dummy input: a non-square size unrelated to any clip, so no size can be frozen by accident
    # (the tests run the files at other sizes).
    dummy = torch.zeros(1, 1, 2 * m, 3 * m) if target == "native" else torch.full((1, 1, 70, 100), 0.5)
    (inp,), (out,) = graph.input_names, graph.output_names
    axes = {0: "batch", 2: "height", 3: "width"}
    metadata = {
        METADATA_KEY: config.to_json(),
        INTERFACE_KEY: target,
        PRECISION_KEY: "fp16" if fp16 else "fp32",
        IO_KEY: _io_text(target, config, config.render_size, matrix),
        EXPORTER_KEY: f"torch {torch.__version__}, onnx {onnx.__version__}",
        **({LUMA_KEY: "L*" if matrix is None else f"Y' matrix {matrix}"} if target == "vsmlrt" else {}),
        **(extra_metadata or {}),
    }

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                graph, (dummy,), tmp, dynamo=False, opset_version=opset,
                input_names=[inp], output_names=[out], dynamic_axes={inp: axes, out: axes},
            )
        metadata[SIMPLIFIED_KEY] = simplify_onnx(tmp) if simplify else "no"
        proto = onnx.load(tmp)
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.producer_name, proto.doc_string = "vs_colorgan", metadata[IO_KEY]
        onnx.save(proto, tmp)
        if check is not None:
            check(tmp)

    atomic_write(path, write)


def read_export_info(path: str | os.PathLike) -> ExportInfo:
    """What an ONNX file written by :func:`export_onnx` is: config, interface, precision, opset, names.

    Files from before the interface/precision keys existed read as native fp32.
    Raises :class:`~vs_colorgan.model_io.ModelFileError` for a missing, damaged or foreign file.

    >>> read_export_info("model.onnx").interface
    'native'
    """
    import onnx

    path = Path(path)
    if path.suffix != ".onnx":
        raise ModelFileError(f"{path}: not an .onnx file")
    config = read_config(path)  # existence, readability and our metadata, with model_io's messages
    proto = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    return ExportInfo(
        config=config,
        interface=meta.get(INTERFACE_KEY, "native"),
        precision=meta.get(PRECISION_KEY, "fp32"),
        opset=opset,
        input_names=tuple(i.name for i in proto.graph.input),
        output_names=tuple(o.name for o in proto.graph.output),
        metadata=meta,
    )
