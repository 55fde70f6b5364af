"""The U-Net's other output heads: "bins" (Zhang, Isola & Efros 2016: classes of ab, cross-entropy, the annealed
mean) and "regression-quarter" (ab regressed at a quarter of the size).

Small networks with random weights; the gamut and the decoding checked against independent computations
(scikit-image's Lab conversion, brute-force sums over the bins).
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from vs_colorgan.model_io import ModelConfig, ModelFileError, load_generator, save_generator
from vs_colorgan.networks import AB_BIN, ab_bins, build_generator, decode_bins
from vs_colorgan.training import losses


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_bins_are_the_cells_some_lightness_shows_in_srgb() -> None:
    """Every 10-unit cell of the ab plane whose centre scikit-image's Lab -> sRGB -> Lab round trip keeps (at some
    L) is a class, and no other."""
    from skimage.color import lab2rgb, rgb2lab

    centres = -110 + AB_BIN * (np.arange(22) + 0.5)
    a, b = (g.ravel() for g in np.meshgrid(centres, centres, indexing="ij"))
    shown = np.zeros(a.size, bool)
    for lightness in np.linspace(1, 99, 99):
        lab = np.stack([np.full_like(a, lightness), a, b], axis=-1)[None]
        with warnings.catch_warnings():  # it says so when it clips; that is the point here
            warnings.simplefilter("ignore", UserWarning)
            back = rgb2lab(lab2rgb(lab))[0]  # lab2rgb clips: a colour outside sRGB comes back changed
        shown |= np.abs(back - lab[0]).max(axis=-1) < 0.5
    expected = np.stack([a[shown], b[shown]], axis=1)
    got = ab_bins().numpy() * 110
    assert 150 < len(got) < 330  # Zhang et al.: 313 on their grid
    # a cell on the edge of the gamut may fall either side between two conversions' rounding; allow a few
    assert len({tuple(r) for r in np.round(got)} ^ {tuple(r) for r in np.round(expected)}) <= 4
    assert {(-5.0, -5.0), (5.0, 5.0)} <= {tuple(r) for r in np.round(got)}  # the neutral cells


def test_annealed_mean_and_spread() -> None:
    centres = torch.tensor([[0.0, 0.0], [0.5, 0.0], [0.0, -0.5]])
    # one bin far likelier than the rest: the estimate is that bin, with almost no spread
    peaked = torch.tensor([0.0, 30.0, 0.0]).view(1, 3, 1, 1)
    ab, log_var = decode_bins(peaked, centres)
    assert torch.allclose(ab.flatten(), torch.tensor([0.5, 0.0]), atol=1e-6)
    assert float(log_var) < -10
    # 0.6 / 0.4 between two bins: T = 1 is the plain mean, T < 1 leans to the likelier bin
    two = torch.log(torch.tensor([0.6, 0.4, 1e-9])).view(1, 3, 1, 1)
    mean, log_var = decode_bins(two, centres, temperature=1.0)
    assert torch.allclose(mean.flatten(), torch.tensor([0.0, 0.0]) * 0.6 + torch.tensor([0.5, 0.0]) * 0.4, atol=1e-5)
    annealed, _ = decode_bins(two, centres, temperature=0.38)
    lean = 0.4 ** (1 / 0.38) / (0.6 ** (1 / 0.38) + 0.4 ** (1 / 0.38))  # softmax(log p / T) of the second bin
    assert float(annealed[0, 0]) == pytest.approx(0.5 * lean, rel=1e-4)
    assert 0 < float(annealed[0, 0]) < float(mean[0, 0])  # nearer the likelier bin (a = 0) than the mean is
    # the spread: E ||c - estimate||^2 / 2 under the T = 1 distribution, summed by brute force
    p = torch.tensor([0.6, 0.4, 1e-9]) / torch.tensor([0.6, 0.4, 1e-9]).sum()
    for t, est in ((1.0, mean), (0.38, annealed)):
        _, lv = decode_bins(two, centres, temperature=t)
        brute = sum(float(p[k]) * float(((centres[k] - est.flatten()) ** 2).sum()) for k in range(3)) / 2
        assert float(lv.exp()) == pytest.approx(brute, rel=1e-4)


def test_soft_encoding_credits_the_nearest_bins() -> None:
    centres = ab_bins()
    truth = torch.tensor([[0.31, -0.12], [0.0, 0.0], [-0.4, 0.55]]).t().reshape(1, 2, 3, 1)
    q = losses.soft_encode(truth, centres)
    assert q.shape == (1, len(centres), 3, 1)
    assert torch.allclose(q.sum(dim=1), torch.ones(1, 3, 1))
    assert ((q > 0).sum(dim=1) == losses.SOFT_NEIGHBOURS).all()
    nearest = torch.cdist(truth[0, :, :, 0].t(), centres).argmin(dim=1)
    assert torch.equal(q[0, :, :, 0].argmax(dim=0), nearest)


def test_cross_entropy_learns_the_true_colour() -> None:
    """Free logits trained by the loss alone come to decode to the true colour (within a bin), and a pixel weight
    of 2 doubles the loss."""
    centres = ab_bins()
    truth = torch.empty(1, 2, 8, 8)
    truth[:, 0], truth[:, 1] = 0.33, -0.21  # a saturated green-blue
    logits = torch.zeros(1, len(centres), 4, 4, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    first = losses.bins_cross_entropy(logits, truth, centres).item()
    for _ in range(200):
        loss = losses.bins_cross_entropy(logits, truth, centres)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first / 2
    ab, _ = decode_bins(logits.detach(), centres)
    assert (ab - truth[:, :, :4, :4]).abs().max() < AB_BIN / 110
    with torch.no_grad():
        weighted = losses.bins_cross_entropy(logits, truth, centres, torch.full((1, 1, 4, 4), 2.0))
        assert float(weighted) == pytest.approx(2 * float(losses.bins_cross_entropy(logits, truth, centres)), rel=1e-5)


def _bins_unet(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = build_generator("unet", 8, confidence=True, padding="reflect", head="bins").eval()
    with torch.no_grad():
        net.out[0].weight.mul_(20)  # sharper distributions than at initialisation, so colours differ by pixel
    return net


def test_bins_unet_output_and_a_flat_input() -> None:
    net = _bins_unet()
    with torch.no_grad():
        l_norm = torch.rand(2, 1, 64, 96) * 2 - 1
        ab, log_var = net.distribution(l_norm)
        assert ab.shape == (2, 2, 64, 96) and log_var.shape == (2, 1, 64, 96)
        assert ab.abs().max() <= 1 and ab.std() > 1e-3
        assert torch.equal(net(l_norm), ab)  # gain 1, tau 0: the forward is the annealed mean
        assert net.bin_logits(l_norm).shape == (2, len(net.ab_centres), 16, 24)  # a quarter of the size
        flat = net(torch.full((1, 1, 64, 96), 0.2))
        assert (flat - flat[..., :1, :1]).abs().max() < 1e-5  # reflected borders: one colour everywhere


def test_bins_model_file_round_trip_and_checks(tmp_path) -> None:
    net = _bins_unet()
    cfg = ModelConfig(arch="unet", width=8, confidence=True, padding="reflect", head="bins", anneal_temperature=0.5,
                      chroma_gain=0.8, confidence_tau=0.3)
    path = tmp_path / "bins.safetensors"
    save_generator(path, net, cfg)
    model, got = load_generator(path)
    assert got == cfg and model.anneal_temperature == 0.5
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        ab, lv = decode_bins(net.bin_logits(x), net.ab_centres, 0.5)
        assert torch.allclose(model.distribution(x)[0],
                              torch.nn.functional.interpolate(ab, size=(64, 64), mode="bilinear"), atol=1e-6)
    raw = json.loads(cfg.to_json())
    with pytest.raises(ModelFileError, match=r'"head" must be one of \[\'regression\', \'bins\', \'regression-quarter\'\], not \'mdn\''):
        ModelConfig.from_json(json.dumps({**raw, "head": "mdn"}), "m")
    with pytest.raises(ModelFileError, match='"head" \'bins\' needs "confidence" true'):
        ModelConfig.from_json(json.dumps({**raw, "confidence": False}), "m")
    with pytest.raises(ModelFileError, match='"anneal_temperature" must be a number from 0.01 to 10'):
        ModelConfig.from_json(json.dumps({**raw, "anneal_temperature": 0}), "m")
    raw.pop("head")
    raw.pop("anneal_temperature")
    assert ModelConfig.from_json(json.dumps(raw)).head == "regression"  # files before the key
    # and a regression model's file is written without the keys, as before them (the bundled model's recipe
    # writes its file byte for byte); the quarter-size regression names its head, not the temperature
    assert "head" not in json.loads(ModelConfig(arch="unet", width=8).to_json())
    quarter = json.loads(ModelConfig(arch="unet", width=8, head="regression-quarter").to_json())
    assert quarter["head"] == "regression-quarter" and "anneal_temperature" not in quarter


def _quarter_unet(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_generator("unet", 8, confidence=True, padding="reflect", head="regression-quarter").eval()


def test_quarter_head_regresses_at_a_quarter_of_the_size() -> None:
    net = _quarter_unet()
    assert not hasattr(net, "up1") and not hasattr(net, "up0")  # the half- and full-size blocks are gone
    l_norm = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        ab, log_var = net.distribution(l_norm)
        small = net.out(net._quarter_size(net.encoder(l_norm)))
        assert small.shape == (2, 3, 16, 24)
        up = torch.nn.functional.interpolate(small, size=(64, 96), mode="bilinear", align_corners=False)
        assert torch.allclose(ab, torch.tanh(up[:, :2]), atol=1e-6) and torch.allclose(log_var, up[:, 2:3], atol=1e-6)
        flat = net(torch.full((1, 1, 64, 96), -0.3))
        assert (flat - flat[..., :1, :1]).abs().max() < 1e-5


@pytest.mark.parametrize("head", ("bins", "regression-quarter"))
@pytest.mark.parametrize("target", ("native", "vsmlrt"))
def test_other_heads_export_with_parity(tmp_path, target, head) -> None:
    from vs_colorgan.export.onnx_export import export_onnx
    from vs_colorgan.export.verify import verify_onnx

    net = _bins_unet() if head == "bins" else _quarter_unet()
    net.chroma_gain, net.confidence_tau = 0.9, 0.2
    cfg = ModelConfig(arch="unet", width=8, render_size=64, confidence=True, padding="reflect", head=head,
                      chroma_gain=0.9, confidence_tau=0.2)
    path = tmp_path / "b.onnx"
    export_onnx(net, cfg, path, target=target)
    report = verify_onnx(path, net, cfg, target=target, threads=1)
    assert report.passed and report.max_abs < 1e-4
    # the channel count is fixed in the graph (the filter and vs-mlrt read it): 2 ab or 3 RGB planes
    import onnx

    (out,) = onnx.load(str(path)).graph.output
    assert out.type.tensor_type.shape.dim[1].dim_value == (2 if target == "native" else 3)


def test_an_adapted_model_keeps_its_base_head() -> None:
    """colorgan-adapt's two U-Nets are built as the base file is: a bins base gets a bins film decoder too, and
    the blend runs on their annealed means."""
    torch.manual_seed(0)
    net = build_generator("unet-adapted", 8, adapt_bank=1, confidence=True, padding="reflect", head="bins").eval()
    assert net.base.head == net.film.head == "bins"
    with torch.no_grad():
        ab, log_var = net.distribution(torch.rand(1, 1, 64, 64) * 2 - 1)
    assert ab.shape == (1, 2, 64, 64) and log_var.shape == (1, 1, 64, 64)
