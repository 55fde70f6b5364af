"""Colour rebalancing of the NoGAN loss (training/rebalance.py; Zhang et al. 2016, 2.2)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vs_colorgan import color
from vs_colorgan.training import losses, rebalance
from vs_colorgan.training.options import resolve


def _pictures() -> list[np.ndarray]:
    """Nine mostly gray pictures and one red one: red is the rare colour."""
    rng = np.random.default_rng(0)
    gray = [np.repeat(rng.integers(60, 200, (48, 64, 1), dtype=np.uint8), 3, axis=2) for _ in range(9)]
    red = np.zeros((48, 64, 3), np.uint8)
    red[..., 0] = 200
    return gray + [red]


def _bin_of(rgb: tuple[int, int, int]) -> int:
    t = torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1) / 255.0
    return int(rebalance._bin_index(color.split_lab(t)[1]).item())


def test_prior_is_a_distribution_of_the_pictures_colours():
    prior = rebalance.ab_prior(_pictures())
    assert prior.shape == (rebalance.BINS, rebalance.BINS)
    assert float(prior.sum()) == pytest.approx(1.0, abs=1e-5)
    flat = prior.flatten()
    gray, red = _bin_of((128, 128, 128)), _bin_of((200, 0, 0))
    assert flat[gray] > 0.5 and 0.0 < flat[red] < flat[gray]  # each picture counts alike: red ~ 1/10
    assert int(flat.argmax()) == gray


def test_rare_colours_weigh_more_and_the_mean_weight_is_one():
    prior = rebalance.ab_prior(_pictures())
    table = rebalance.rebalance_table(prior, 0.5)
    p = prior.flatten()
    gray, red = _bin_of((128, 128, 128)), _bin_of((200, 0, 0))
    assert table[red] > 2 * table[gray]
    assert float((p * table).sum()) == pytest.approx(1.0, abs=1e-4)  # E_prior[w] = 1 (Zhang et al., eq. 4)
    even = rebalance.rebalance_table(prior, 1.0)  # lambda 1: the uniform alone, every pixel alike
    assert torch.allclose(even[p > 0], torch.ones(int((p > 0).sum())))
    # per pixel: a batch's true ab finds its bin's weight
    ab = color.split_lab(torch.tensor([[[[200 / 255]], [[0.0]], [[0.0]]]]))[1]
    assert float(rebalance.pixel_weights(table, ab)) == pytest.approx(float(table[red]))


@pytest.mark.parametrize("name", ["l1", "mse", "huber"])
def test_weights_of_one_give_the_plain_loss(name):
    torch.manual_seed(0)
    pred, target = torch.randn(2, 2, 8, 8) * 0.3, torch.randn(2, 2, 8, 8) * 0.3
    plain = losses.RECONSTRUCTION[name](pred, target)
    assert losses.weighted_reconstruction(name, pred, target, torch.ones(2, 1, 8, 8)) == pytest.approx(float(plain))
    w = torch.ones(2, 1, 8, 8)
    w[0] = 3.0  # the first picture's pixels count three times
    per = [losses.RECONSTRUCTION[name](pred[i:i + 1], target[i:i + 1]) for i in range(2)]
    assert losses.weighted_reconstruction(name, pred, target, w) == pytest.approx(float(3 * per[0] + per[1]) / 2)


def test_lambda_is_validated():
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r'"rebalance_lambda" must be in \(0, 1\]'):
            resolve("default-model", {"data": ("x",), "out": "y", "rebalance_lambda": bad})
    with pytest.raises(ValueError, match="no pictures"):
        rebalance.ab_prior([None])  # nothing readable


def test_prior_reads_at_most_its_share_of_a_large_folder():
    items = list(range(10_000))
    picked = rebalance.evenly(items)
    assert len(picked) == rebalance.PRIOR_MAX_PICTURES and picked[0] == 0 and picked[-1] > 9_900
    assert picked == sorted(set(picked))  # each once, in order
    assert rebalance.evenly(items[:5]) == items[:5]
