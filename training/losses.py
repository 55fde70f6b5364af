"""Losses of the three set-ups: adversarial (BCE with logits, WGAN), L1, MSE, perceptual, gradient penalty.

Inputs are in the networks' normalised Lab space (see :mod:`vs_colorgan.color`): ``L_norm`` (N, 1, H, W)
and ``ab_norm`` (N, 2, H, W). The discriminator sees both stacked: ``torch.cat([L_norm, ab_norm], 1)``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vs_colorgan.color import AB_SCALE, merge_lab

l1 = F.l1_loss
mse = F.mse_loss


HUBER_DELTA = 0.1  # the knee, in ab_norm (11 ab units)


def huber(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Huber (smooth L1) with the knee at 0.1 ab_norm (11 ab units): quadratic for small errors, so the
    estimate leans toward the mean, linear for large ones, so outlier colours pull less than under MSE."""
    return F.huber_loss(pred, target, delta=HUBER_DELTA, reduction=reduction)


RECONSTRUCTION = {"l1": l1, "mse": mse, "huber": huber}


def weighted_reconstruction(name: str, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The reconstruction loss ``name`` with each pixel's term (a and b alike) times ``weight`` (N, 1, H, W), then
    averaged: :mod:`vs_colorgan.training.rebalance`'s colour rebalancing. Weights of 1 give ``RECONSTRUCTION[name]``."""
    return (RECONSTRUCTION[name](pred, target, reduction="none") * weight).mean()


# Soft encoding of a true colour over its nearest bins (Zhang et al. 2016, 2.1: the 5 nearest, Gaussian of sigma 5
# ab units), so neighbouring bins share the credit and the cross-entropy sees how far off a wrong bin is
SOFT_NEIGHBOURS = 5
SOFT_SIGMA = 5.0 / AB_SCALE  # ab_norm units


def soft_encode(ab_norm: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(N, 2, H, W) true ab_norm -> (N, K, H, W) target distribution over the ``centres`` (K, 2)."""
    c = centres.to(ab_norm)
    d2 = (ab_norm.unsqueeze(2) - c.t()[None, :, :, None, None]).pow(2).sum(dim=1)  # (N, K, H, W)
    near, idx = d2.topk(min(SOFT_NEIGHBOURS, c.shape[0]), dim=1, largest=False)
    w = torch.softmax(-near / (2 * SOFT_SIGMA**2), dim=1)  # exp(-d^2 / 2 sigma^2), normalised
    return torch.zeros_like(d2).scatter_(1, idx, w)


def bins_cross_entropy(logits: torch.Tensor, ab_true: torch.Tensor, centres: torch.Tensor,
                       weight: torch.Tensor | None = None) -> torch.Tensor:
    """Zhang et al. 2016 eq. 2: cross-entropy of the bin logits (N, K, h, w) against the soft-encoded truth, the
    truth area-averaged to the logits' size first; ``weight`` (N, 1, H, W at the logits' size) is their class
    rebalancing (eq. 3), None for every pixel alike."""
    target = soft_encode(F.adaptive_avg_pool2d(ab_true.float(), logits.shape[-2:]), centres)
    loss = -(target * torch.log_softmax(logits.float(), dim=1)).sum(dim=1, keepdim=True)
    return (loss * weight).mean() if weight is not None else loss.mean()


def confidence_nll(log_var: torch.Tensor, ab_pred: torch.Tensor, ab_true: torch.Tensor) -> torch.Tensor:
    """Gaussian negative log-likelihood of the observed error under the head's variance (Kendall & Gal 2017).

    ``0.5 * (r^2 / var + log var)`` with ``r^2`` the squared ab error averaged over a and b, so ``var``
    learns the expected squared error of the prediction at each pixel. The prediction is detached: the
    head learns how wrong the chroma is, without changing what the chroma is (the reconstruction loss
    alone trains it, the "beta = 1" case of Seitzer et al. 2022, which keeps the mean's MSE gradient).
    """
    from vs_colorgan.networks import LOG_VAR_RANGE

    lv = log_var.float().clamp(*LOG_VAR_RANGE)
    r2 = (ab_pred.detach().float() - ab_true.float()).pow(2).mean(dim=1, keepdim=True)
    return 0.5 * (r2 * torch.exp(-lv) + lv).mean()


def gan_bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Binary cross-entropy on PatchGAN logits against an all-real or all-fake target (Goodfellow et al. 2014)."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP term E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates (Gulrajani et al. 2017, eq. 3).

    Multiply by lambda (10 in the paper) outside. Computed in float32 even under autocast, since the
    double backward of bfloat16 activations loses the penalty's precision.
    """
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=torch.float32)
    x_hat = (eps * real.float() + (1.0 - eps) * fake.float()).requires_grad_(True)
    with torch.autocast(device_type=real.device.type, enabled=False):
        score = critic(x_hat)
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


# Feature taps of the perceptual loss: the first ReLU of each of VGG's five blocks (relu1_1 ... relu5_1),
# as in the TCVC implementation the design paper uses (Thasarathan et al., src/loss.py), which follows
# Johnson et al. 2016 in taking L1 between feature maps at several depths.
_VGG_TAPS = {16: (1, 6, 11, 18, 25), 19: (1, 6, 11, 20, 29)}
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class PerceptualLoss(nn.Module):
    """Sum over relu1_1 ... relu5_1 of L1 between VGG features of predicted and true colour images.

    The VGG (16 or 19, detected from the state dict) is frozen, in eval mode, loaded from a user's file
    with ``torch.load(weights_only=True)``: no code runs and nothing is downloaded.

    >>> loss = PerceptualLoss("vgg16-397923af.pth")
    >>> value = loss(l_norm, ab_pred, ab_true)
    """

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        from torchvision.models import vgg16, vgg19

        path = Path(weights_path)
        if not path.is_file():
            raise ValueError(f"PerceptualLoss: \"vgg_weights\" must be an existing torchvision VGG16/19 state dict file, not {str(path)!r}")
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        if isinstance(state, nn.Module):  # pragma: no cover - weights_only refuses modules; keep the message clear
            raise ValueError(f"PerceptualLoss: {path} holds a pickled module; save its state_dict() instead")
        feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        if not feats:
            raise ValueError(f"PerceptualLoss: {path} has no 'features.*' keys; not a torchvision VGG state dict")
        last_conv = max(int(k.split(".")[0]) for k in feats)
        depth = {28: 16, 34: 19}.get(last_conv)
        if depth is None:
            raise ValueError(f"PerceptualLoss: {path} is neither VGG16 nor VGG19 (last conv index {last_conv})")
        features = (vgg16 if depth == 16 else vgg19)(weights=None).features
        features.load_state_dict(feats, strict=True)
        taps = _VGG_TAPS[depth]
        self.depth = depth
        # Slices ending at each tap, so one pass yields all five feature maps.
        self.slices = nn.ModuleList()
        start = 0
        for t in taps:
            self.slices.append(nn.Sequential(*[features[i] for i in range(start, t + 1)]))
            start = t + 1
        for m in self.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = False
        self.requires_grad_(False)
        self.eval()
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> PerceptualLoss:  # always frozen in eval mode
        return super().train(False)

    def _features(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        x = (rgb - self.mean) / self.std
        out = []
        for s in self.slices:
            x = s(x)
            out.append(x)
        return out

    def forward(self, l_norm: torch.Tensor, ab_pred: torch.Tensor, ab_true: torch.Tensor) -> torch.Tensor:
        pred = merge_lab(l_norm.float(), ab_pred.float())
        with torch.no_grad():
            target = self._features(merge_lab(l_norm.float(), ab_true.float()))
        return sum(F.l1_loss(p, t) for p, t in zip(self._features(pred), target))


def build_perceptual(weights_path: str, weight: float) -> PerceptualLoss | None:
    """The perceptual loss, or ``None`` (with a message on stderr) when it is off or no weights are given."""
    if weight <= 0:
        return None
    if not weights_path:
        print(
            "colorgan-train: perceptual loss OFF: no --vgg-weights given (a torchvision vgg16/vgg19 "
            "state dict, e.g. vgg16-397923af.pth); training continues without it",
            file=sys.stderr,
        )
        return None
    return PerceptualLoss(weights_path)
