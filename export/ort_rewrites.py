"""Exact rewrites of three ONNX ops that ONNX Runtime's CPU provider runs slowly, for the vsmlrt graph.

The vsmlrt graph converts every full-resolution pixel between gray, CIE Lab and sRGB with
``vs_colorgan.color`` (kornia underneath), which exports as ``Where``, ``Pow`` and ``Einsum`` nodes. On a
480p frame ONNX Runtime 1.32 (CPU) spent about a third of the whole graph's time there, mostly in
``Where`` (measured 28-38 ms for one ``Where`` over 1x3x480x854 floats against 1.5-2.2 ms for the same
selection written as Cast/Mul/Add). The rewrites give the same values:

* ``Where(c, x, y)`` on float tensors -> ``x * float(c) + y * float(not c)``: exact wherever x and y are
  finite (``x * 1 + y * 0 == x``); every ``Where`` in the colour conversion selects between two finite
  branches (kornia and ``gray_to_l`` clamp before each power).
* ``Einsum("oi,...ihw->...ohw", M, x)`` with a constant matrix M and a 4-D x (kornia's 3x3 colour
  matrices) -> ``Conv`` with an (O, I, 1, 1) kernel: the same sums of products.
* ``Pow(x, 3)`` with a constant exponent 3 -> ``x * x * x``.

Nothing else is touched; the parity check compares the rewritten file with PyTorch like any other.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16}


def _known(model: onnx.ModelProto) -> tuple[dict[str, int], dict[str, int], dict[str, np.ndarray]]:
    """Element type and rank per value name (ONNX shape inference), and the constant tensors."""
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types: dict[str, int] = {}
    ranks: dict[str, int] = {}
    for v in [*graph.value_info, *graph.input, *graph.output]:
        t = v.type.tensor_type
        types[v.name] = t.elem_type
        if t.HasField("shape"):
            ranks[v.name] = len(t.shape.dim)
    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    for name, array in consts.items():
        types.setdefault(name, helper.np_dtype_to_tensor_dtype(array.dtype))
        ranks.setdefault(name, array.ndim)
    return types, ranks, consts


def rewrite_for_ort(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, int]]:
    """Apply the rewrites in place; returns the model and how many nodes of each kind were rewritten."""
    types, ranks, consts = _known(model)
    graph = model.graph
    done: Counter[str] = Counter()
    new_nodes: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []

    def fresh(base: str) -> str:
        return f"{base}__ort_rewrite_{sum(done.values())}_{len(new_nodes)}"

    for node in graph.node:
        if node.op_type == "Where" and types.get(node.input[1]) in _FLOAT_TYPES and types.get(node.input[2]) in _FLOAT_TYPES:
            c, x, y = node.input
            dtype = types[x]
            yes, no, inv, xs, ys = (fresh(f"{node.name}/{s}") for s in ("yes", "no", "inv", "xs", "ys"))
            new_nodes += [
                helper.make_node("Cast", [c], [yes], to=dtype, name=yes),
                helper.make_node("Not", [c], [inv], name=inv),
                helper.make_node("Cast", [inv], [no], to=dtype, name=no),
                helper.make_node("Mul", [x, yes], [xs], name=xs),
                helper.make_node("Mul", [y, no], [ys], name=ys),
                helper.make_node("Add", [xs, ys], list(node.output), name=fresh(f"{node.name}/sum")),
            ]
            done["Where"] += 1
            continue
        if node.op_type == "Einsum":
            equation = next((a.s.decode() for a in node.attribute if a.name == "equation"), "").replace(" ", "")
            m, x = node.input if len(node.input) == 2 else ("", "")
            if (equation == "oi,...ihw->...ohw" and m in consts and consts[m].ndim == 2 and ranks.get(x) == 4
                    and types.get(x) == helper.np_dtype_to_tensor_dtype(consts[m].dtype)):
                kernel = fresh(f"{node.name}/kernel")
                new_inits.append(numpy_helper.from_array(consts[m][:, :, None, None].copy(), kernel))
                new_nodes.append(helper.make_node("Conv", [x, kernel], list(node.output), name=fresh(f"{node.name}/conv")))
                done["Einsum"] += 1
                continue
        if node.op_type == "Pow" and node.input[1] in consts and consts[node.input[1]].size == 1 \
                and float(consts[node.input[1]].reshape(())) == 3.0 and types.get(node.input[0]) in _FLOAT_TYPES:
            x = node.input[0]
            sq = fresh(f"{node.name}/sq")
            new_nodes += [helper.make_node("Mul", [x, x], [sq], name=sq),
                          helper.make_node("Mul", [sq, x], list(node.output), name=fresh(f"{node.name}/cube"))]
            done["Pow"] += 1
            continue
        new_nodes.append(node)
    # drop the constants only the replaced nodes used (ORT would warn about each unused initializer)
    used = {i for n in new_nodes for i in n.input} | {o.name for o in graph.output}
    new_nodes = [n for n in new_nodes if n.op_type != "Constant" or any(o in used for o in n.output)]
    kept = [i for i in graph.initializer if i.name in used]
    del graph.node[:], graph.initializer[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(kept + new_inits)
    onnx.checker.check_model(model)
    return model, dict(done)
