"""The torch backend's inference copy of a generator (vs_colorgan.backends.TorchRunner): batch norms folded into
their convolutions, the output unchanged."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vs_colorgan.backends import BackendSettings, TorchRunner
from vs_colorgan.model_io import ModelConfig, save_generator
from vs_colorgan.networks import build_generator

CONFIGS = [
    ModelConfig(arch="unet", width=8, padding="reflect"),
    ModelConfig(arch="unet", width=8, encoder="efficientnet-lite0", confidence=True, chroma_gain=0.8,
                confidence_tau=0.6, padding="reflect"),
    ModelConfig(arch="unet-adapted", width=8, adapt_bank=3, adapt_generic=2, encoder="efficientnet-lite0",
                confidence=True, confidence_tau=0.6),
    ModelConfig(arch="unet-adapted", width=8, adapt_bank=3, adapt_encoder=True),
    ModelConfig(arch="colorization-net", width=8),
]


def _with_batch_norm_statistics(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Fresh batch norms are the identity: give them running statistics and affine parameters so that a wrong fold
    (a scale or shift lost, the wrong channel order) changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.25)
                m.weight.copy_(1.0 + torch.randn(n, generator=g) * 0.3)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model.eval()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.arch}-{c.encoder}-{c.padding}")
def test_torch_runner_folds_batch_norms_and_keeps_the_output(config: ModelConfig, tmp_path: Path) -> None:
    net = build_generator(config.arch, config.width, confidence=config.confidence, chroma_gain=config.chroma_gain,
                          confidence_tau=config.confidence_tau, padding=config.padding, adapt_bank=config.adapt_bank,
                          adapt_encoder=config.adapt_encoder, adapt_generic=config.adapt_generic,
                          encoder=config.encoder)
    net = _with_batch_norm_statistics(net, seed=len(config.to_json()))
    if config.arch == "unet-adapted":  # a gate that is open on part of the picture, so both decoders count
        with torch.no_grad():
            net.bank.copy_(torch.nn.functional.normalize(torch.randn_like(net.bank), dim=1))
            net.gate_low.fill_(-0.5)
            net.gate_high.fill_(0.5)
    path = tmp_path / "g.safetensors"
    save_generator(path, net, config)
    runner = TorchRunner(path, BackendSettings(backend="torch", device="cpu"))

    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in runner.model.modules())
    l_norm = torch.rand(1, 1, 64, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        expected = net(l_norm)
    got = runner.infer(l_norm)
    assert expected.abs().max() > 1e-3  # something to compare
    assert torch.allclose(got, expected, rtol=0, atol=2e-5), (got - expected).abs().max()


def test_torch_runner_infers_on_one_core_fewer_than_the_process_has(tmp_path: Path) -> None:
    """As OrtRunner: the CPU inference's OpenMP team leaves a core to the frames' other work; the caller's own
    thread count is back after the call."""
    import os

    from vs_colorgan.threads import _openmp

    if _openmp() is None:
        pytest.skip("torch's OpenMP runtime not found: the thread count is torch's own")
    net = _with_batch_norm_statistics(build_generator("unet", 8), seed=0)
    path = tmp_path / "g.safetensors"
    save_generator(path, net, ModelConfig(arch="unet", width=8))
    runner = TorchRunner(path, BackendSettings(backend="torch", device="cpu"))
    seen: list[int] = []
    runner.model.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    runner.infer(torch.zeros(1, 1, 32, 32))
    assert seen == [max(1, len(os.sched_getaffinity(0)) - 1)]
    assert torch.get_num_threads() == before


def test_a_network_fx_cannot_trace_is_run_unfolded() -> None:
    """Control flow on a tensor's value defeats symbolic tracing: the runner keeps the network as it is."""
    from vs_colorgan.backends import fold_batch_norms

    class Branchy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.bn(self.conv(x))
            return y if y.mean() > 0 else -y

    net = _with_batch_norm_statistics(Branchy(), seed=3)
    x = torch.rand(1, 1, 8, 8)
    folded = fold_batch_norms(net)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        assert torch.equal(folded(x), net(x))
