"""Generator -> ONNX. The native interface: input ``l`` = L_norm (N, 1, H, W), output ``ab`` = ab_norm
(N, 2, H, W), dynamic batch/height/width; the model's :class:`~vs_colorgan.model_io.ModelConfig`
JSON is stored in ``metadata_props`` so the filter knows how to feed it."""
from __future__ import annotations

import os
import warnings

import torch
from torch import nn

from vs_colorgan.model_io import METADATA_KEY, ModelConfig, atomic_write

DEFAULT_OPSET = 17


def export_onnx(
    model: nn.Module, config: ModelConfig, path: str | os.PathLike, *, opset: int = DEFAULT_OPSET
) -> None:
    """Write ``model`` (native interface, fp32) to ``path`` atomically, with ``config`` as metadata."""
    import onnx

    model = model.eval().to("cpu").float()
    m = config.size_multiple
    dummy = torch.zeros(1, 1, 2 * m, 3 * m)

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                model, (dummy,), tmp, dynamo=False, opset_version=opset,
                input_names=["l"], output_names=["ab"],
                dynamic_axes={"l": {0: "batch", 2: "height", 3: "width"}, "ab": {0: "batch", 2: "height", 3: "width"}},
            )
        proto = onnx.load(tmp)
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, config.to_json()
        onnx.save(proto, tmp)

    atomic_write(path, write)
