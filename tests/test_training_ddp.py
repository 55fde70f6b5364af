"""Training under DDP: two gloo processes on CPU end with identical generator and discriminator weights."""
from __future__ import annotations

import os

import torch

from vs_colorgan.training import checkpoint
from vs_colorgan.training.options import resolve
from vs_colorgan.training.train import EXIT_OK, train
from conftest import TINY, make_images, state_tensors


def _ddp_worker(rank: int, world: int, port: int, data: str, out: str, result_dir: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    o = resolve("unet", {"data": (data,), "out": out, **TINY, "steps": 3, "pretrain_steps": 1, "checkpoint_every": 100, "val_batches": 0})
    res = train(o)
    assert res.code == EXIT_OK
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state_tensors(res.setup).items()}, os.path.join(result_dir, f"rank{rank}.safetensors"))


def test_ddp_two_processes_stay_in_sync(tmp_path):
    import socket

    import torch.multiprocessing as mp
    from safetensors.torch import load_file

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(make_images(tmp_path / "imgs", n=10)), str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True)
    a, b = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert a.keys() == b.keys()
    for k in a:  # generator (DDP) and discriminator (hand-synchronised), parameters and BN statistics
        assert torch.equal(a[k], b[k]), k
    # and they did train: differ from the initial weights
    torch.manual_seed(0)
    from vs_colorgan.networks import build_generator

    init = build_generator("unet", 8).state_dict()
    assert not torch.equal(init["encoder.conv1.weight"], a["g.encoder.conv1.weight"])
    assert checkpoint.read_record(tmp_path / "run")["step"] == 3  # rank 0 wrote it
