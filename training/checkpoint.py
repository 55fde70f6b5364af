"""Checkpoints that resume exactly: every tensor in safetensors, every scalar in JSON, written atomically.

Layout of a run folder::

    RUN/options.json                      resolved TrainOptions (also inside each checkpoint)
    RUN/checkpoint.json                   the commit record: step, phase, options, best metric,
                                          optimiser scalars, RNG scalars, and the tensors file name
    RUN/checkpoints/step-00001000.safetensors
                                          net.g.* net.d.* (state dicts), optim.<name>.<param>.<key>
                                          (Adam moments and step counts), rng.torch / rng.cuda.N /
                                          rng.numpy (uint8 / int64 tensors)
    RUN/generator.safetensors             model_io generator file (save_generator), for the filter/export
    RUN/generator-best.safetensors        the generator at the best validation L1
    RUN/snapshots/generator-STEP.safetensors
                                          with --snapshot-every N: the generator every N steps, kept, so
                                          the step can be chosen on footage (colorgan-calibrate --footage)

The tensors file is written first under a step-stamped name, then ``checkpoint.json`` replaces the old
one (temp + rename: :func:`vs_colorgan.model_io.atomic_write`), then older tensors files are pruned.
A crash at any moment leaves ``checkpoint.json`` naming a complete tensors file. Writing nothing after a
non-finite loss keeps the last good checkpoint.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vs_colorgan.model_io import ModelConfig, atomic_write, save_generator

from .options import TrainOptions

CHECKPOINT_JSON = "checkpoint.json"
CHECKPOINT_DIR = "checkpoints"
SNAPSHOT_DIR = "snapshots"  # generator files kept every snapshot_every steps (never pruned)
FORMAT = 1


class CheckpointError(RuntimeError):
    """A run folder has no usable checkpoint, or one that does not fit these options."""


# ---- RNG state as tensors + JSON scalars

def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, internal, gauss_next = random.getstate()
    tensors["rng.python"] = torch.tensor(internal, dtype=torch.int64)
    scalars = {"numpy": [kind, int(pos), int(has_gauss), float(cached)], "python": [version, gauss_next]}
    return tensors, scalars


def set_rng_state(tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    kind, pos, has_gauss, cached = scalars["numpy"]
    np.random.set_state((kind, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, gauss_next = scalars["python"]
    random.setstate((version, tuple(int(x) for x in tensors["rng.python"].tolist()), gauss_next))


# ---- optimiser state flattened

def flatten_optimizer(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors of ``opt.state_dict()['state']`` as ``optim.<name>.<param index>.<key>``; the rest as JSON."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {"param_groups": sd["param_groups"], "state_scalars": {}}
    for idx, st in sd["state"].items():
        for key, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{name}.{idx}.{key}"] = v.detach().to("cpu").contiguous()
            else:
                scalars["state_scalars"].setdefault(str(idx), {})[key] = v
    return tensors, scalars


def unflatten_optimizer(name: str, tensors: dict[str, torch.Tensor], scalars: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optim.{name}."
    for k, v in tensors.items():
        if k.startswith(prefix):
            idx, key = k[len(prefix):].split(".", 1)
            state.setdefault(int(idx), {})[key] = v
    for idx, st in scalars.get("state_scalars", {}).items():
        state.setdefault(int(idx), {}).update(st)
    return {"state": state, "param_groups": scalars["param_groups"]}


# ---- save / load

def model_config(opts: TrainOptions) -> ModelConfig:
    return ModelConfig(arch=opts.arch, width=opts.width, render_size=opts.render_size, preset=opts.preset,
                       confidence=opts.confidence, padding=opts.padding, encoder=opts.encoder, head=opts.head)


def save(
    run: str | Path,
    *,
    step: int,
    phase: str,
    opts: TrainOptions,
    nets: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    generator: nn.Module,
    extra: dict[str, Any],
) -> Path:
    """Write a full checkpoint at ``step`` (steps completed) and ``RUN/generator.safetensors``."""
    from safetensors.torch import save_file

    run = Path(run)
    tensors: dict[str, torch.Tensor] = {}
    for name, net in nets.items():
        for k, v in net.state_dict().items():
            tensors[f"net.{name}.{k}"] = v.detach().to("cpu").contiguous()
    optim_scalars = {}
    for name, opt in optimizers.items():
        t, s = flatten_optimizer(name, opt)
        tensors.update(t)
        optim_scalars[name] = s
    rng_t, rng_s = rng_state()
    tensors.update(rng_t)
    # Adam's state of different params may share storage with nothing, but clone to be safe for safetensors.
    tensors = {k: v.clone() if v.dim() == 0 else v for k, v in tensors.items()}
    ckdir = run / CHECKPOINT_DIR
    ckdir.mkdir(parents=True, exist_ok=True)
    tname = f"step-{step:08d}.safetensors"
    atomic_write(ckdir / tname, lambda tmp: save_file(tensors, tmp, metadata={"step": str(step), "format": str(FORMAT)}))
    save_generator(run / "generator.safetensors", generator, model_config(opts))
    if opts.snapshot_every and step % opts.snapshot_every == 0:
        save_generator(run / SNAPSHOT_DIR / f"generator-{step:08d}.safetensors", generator, model_config(opts))
    record = {
        "format": FORMAT,
        "step": step,
        "phase": phase,
        "tensors": f"{CHECKPOINT_DIR}/{tname}",
        "options": json.loads(opts.to_json()),
        "optimizers": optim_scalars,
        "rng": rng_s,
        **extra,
    }
    text = json.dumps(record, indent=2, sort_keys=True)
    atomic_write(run / CHECKPOINT_JSON, lambda tmp: Path(tmp).write_text(text))
    # Prune older tensors files (never the one just committed).
    olds = sorted(p for p in ckdir.glob("step-*.safetensors") if p.name != tname)
    for p in olds[: max(0, len(olds) - (opts.keep_checkpoints - 1))]:
        p.unlink(missing_ok=True)
    return ckdir / tname


def read_record(run: str | Path) -> dict[str, Any]:
    """The JSON commit record of ``RUN`` (raises :class:`CheckpointError` when absent or damaged)."""
    path = Path(run) / CHECKPOINT_JSON
    if not path.is_file():
        raise CheckpointError(f"colorgan-train --resume: no {CHECKPOINT_JSON} in {str(run)!r}; nothing to resume")
    try:
        record = json.loads(path.read_text())
    except ValueError as e:
        raise CheckpointError(f"colorgan-train --resume: {path} is damaged ({e})") from None
    if record.get("format", 0) > FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {record['format']} is newer than this training code")
    return record


def load(
    run: str | Path,
    *,
    nets: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    restore_rng: bool = True,
) -> dict[str, Any]:
    """Restore nets (strict), optimisers and RNG from ``RUN``; return the JSON record (step, best, ...)."""
    from safetensors.torch import load_file

    run = Path(run)
    record = read_record(run)
    tpath = run / record["tensors"]
    try:
        tensors = load_file(str(tpath), device="cpu")
    except Exception as e:
        raise CheckpointError(f"{tpath}: checkpoint tensors unreadable ({e})") from None
    for name, net in nets.items():
        prefix = f"net.{name}."
        sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            net.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"{tpath}: network {name!r} does not fit these options: {e}") from None
    for name, opt in optimizers.items():
        if name not in record["optimizers"]:
            raise CheckpointError(f"{tpath}: no state for optimiser {name!r}")
        opt.load_state_dict(unflatten_optimizer(name, tensors, record["optimizers"][name]))
    if restore_rng:
        set_rng_state(tensors, record["rng"])
    return record
