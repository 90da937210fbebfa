"""`WhitenedCNN`: a small VGG-style face encoder that learns fast from few epochs.

The network and its initialisation follow the fast CIFAR-10 training recipes (Jordan,
"94% on CIFAR-10 in 3.29 seconds on a single GPU", 2024), which carry over to other small
images such as FER2013's 48 px faces:

* a frozen first convolution whose filters whiten the image's ``k x k`` patches (the
  eigenvectors of their covariance, each as a filter and as its negation, so a GELU after it
  keeps both signs), computed from training images by :meth:`WhitenedCNN.fit_to_data`;
* three blocks ``conv -> max-pool 2 -> BN -> GELU -> conv -> BN -> GELU`` (plus
  ``extra_convs`` conv-BN-GELU layers each), every conv initialised as the identity on its
  first input channels (Dirac), so the untrained network passes the whitened image through;
* batch norms with no scale (their weight stays 1) and a high momentum, whose biases the
  optimiser may move faster (each bias carries ``lr_scale``, read by ``EmotionModule``);
* global max pooling, then the features times ``feature_scale`` (1/9: the logits of the
  linear head after it start small, which is what the published recipe does to its logits).

Shapes: ``[B, in_chans, S, S] -> [B, widths[-1]]``; :meth:`encode` also gives the last
feature map's cells as tokens ``[B, h*w, widths[-1]]`` (4x4 for a 40 px crop with k = 3).
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from emomm.models.features import EncoderOutput

log = logging.getLogger(__name__)


class ScaleFreeBatchNorm(nn.BatchNorm2d):
    """Batch norm whose weight is fixed at 1 (only the bias learns). ``momentum`` is the
    running statistics' decay per step (0.6 keeps 60% of the old value), as the fast CIFAR
    recipes set it; PyTorch's ``momentum`` is one minus that."""

    def __init__(self, channels: int, momentum: float = 0.6, bias_lr_scale: float = 1.0) -> None:
        super().__init__(channels, eps=1e-12, momentum=1 - momentum)
        self.weight.requires_grad_(False)
        self.bias.lr_scale = bias_lr_scale  # type: ignore[attr-defined]


def dirac_conv(c_in: int, c_out: int) -> nn.Conv2d:
    """3x3 'same' conv, bias-free, the identity on its first ``min(c_in, c_out)`` outputs."""
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:c_in])
    return conv


class ConvBlock(nn.Module):
    """``[B, c_in, H, W] -> [B, c_out, H/2, W/2]``: conv, max-pool, BN, GELU, conv, BN, GELU,
    then ``extra`` more conv-BN-GELU layers."""

    def __init__(self, c_in: int, c_out: int, bn_momentum: float, bias_lr_scale: float, extra: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = [dirac_conv(c_in, c_out), nn.MaxPool2d(2),
                                   ScaleFreeBatchNorm(c_out, bn_momentum, bias_lr_scale), nn.GELU()]
        for _ in range(1 + extra):
            layers += [dirac_conv(c_out, c_out), ScaleFreeBatchNorm(c_out, bn_momentum, bias_lr_scale), nn.GELU()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def patch_whitening(images: torch.Tensor, kernel: int, eps: float = 5e-4) -> torch.Tensor:
    """Filters ``[2 * C*k*k, C, k, k]`` that whiten the ``k x k`` patches of ``images``
    ``[N, C, H, W]``: the covariance's eigenvectors over the square roots of their
    eigenvalues (largest first), then the same filters negated."""
    c = images.shape[1]
    patches = images.float().unfold(2, kernel, 1).unfold(3, kernel, 1)  # [N, C, H', W', k, k]
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * kernel * kernel)
    cov = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending
    filters = (eigenvectors.T.flip(0) / torch.sqrt(eigenvalues.flip(0) + eps)[:, None])
    filters = filters.reshape(-1, c, kernel, kernel)
    return torch.cat([filters, -filters])


def global_max(fmap: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W] -> [B, C]``. Max-pooling, not ``amax``: with ``torch.compile`` and bf16
    autocast, amax's backward gave NaN gradients to every layer below it (torch 2.14.1 on
    CPU, from the first step); max-pooling's backward does not."""
    return F.adaptive_max_pool2d(fmap, 1).flatten(1)


class WhitenedCNN(nn.Module):
    """Face crops ``[B, in_chans, S, S]`` -> embeddings ``[B, widths[-1]]``.

    Args:
        in_chans: 1 for grayscale (FER2013), 3 for RGB.
        widths: channels of the three conv blocks.
        whiten_kernel: patch size ``k`` of the whitening stem (``2 * in_chans * k * k`` filters;
            3 for grayscale, whose 2x2 patches would give only 8).
        extra_convs: more conv-BN-GELU layers in each block (wider, deeper variants).
        bn_momentum: running statistics' decay per step (see :class:`ScaleFreeBatchNorm`).
        bias_lr_scale: the batch norms' biases learn at this multiple of the optimiser's rate
            (64 in the published recipe; their weight decay is divided by it, so a step
            decays them as much as the other weights).
        feature_scale: the pooled features are multiplied by this (1/9).
        whiten_images: how many training images :meth:`fit_to_data` reads for the stem.
        channels_last: keep the weights, and so every activation, in NHWC memory layout (a
            one-channel input is already NHWC). The same model, only the layout changes. On
            CPU, oneDNN's bf16 convolutions then skip a reorder on every call: eager NHWC was the
            fastest training step on a 2-core AMD EPYC Zen 4, ahead of compiled NCHW and NHWC
            (experiments/log/2026-12-07-fer2013-on-a-zen-4-box.md).
    """

    def __init__(self, in_chans: int = 1, widths: Sequence[int] = (64, 256, 256), whiten_kernel: int = 3,
                 extra_convs: int = 0, bn_momentum: float = 0.6, bias_lr_scale: float = 64.0,
                 feature_scale: float = 1 / 9, whiten_images: int = 5000, channels_last: bool = False) -> None:
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"model.encoders.face.widths needs 3 block widths, got {list(widths)}")
        width = 2 * in_chans * whiten_kernel ** 2
        self.in_chans, self.kernel, self.whiten_images = in_chans, whiten_kernel, whiten_images
        self.whiten = nn.Conv2d(in_chans, width, whiten_kernel, bias=True)
        self.whiten.weight.requires_grad_(False)  # fixed by fit_to_data; its bias learns
        chans = [width, *widths]
        self.blocks = nn.Sequential(*[ConvBlock(chans[i], chans[i + 1], bn_momentum, bias_lr_scale, extra_convs)
                                      for i in range(3)])
        self.feature_scale = feature_scale
        self.out_dim = int(widths[-1])
        # Persistent, so a checkpoint (resume, init_from) keeps its stem and is not re-fitted.
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        if channels_last:  # fit_whitening's copy_ keeps the stem's NHWC strides
            self.to(memory_format=torch.channels_last)

    # -- the whitening stem ------------------------------------------------------------------
    def fit_whitening(self, images: torch.Tensor) -> None:
        """Set the stem's filters from ``images [N, in_chans, H, W]`` (normalised as the
        network sees them)."""
        if images.dim() != 4 or images.shape[1] != self.in_chans:
            raise ValueError(f"fit_whitening needs images [N, {self.in_chans}, H, W], got {list(images.shape)}")
        with torch.no_grad():
            self.whiten.weight.copy_(patch_whitening(images.to(self.whiten.weight.device), self.kernel))
            self.whiten.bias.zero_()
            self.fitted.fill_(True)

    def fit_to_data(self, datamodule: Any, modality: str = "face") -> None:
        """Hook called by ``EmotionModule.setup("fit")``: whiten by ``whiten_images``
        training images (evenly spaced through the split, as the training transform gives
        them), unless the stem is already fitted (restored from a checkpoint)."""
        if bool(self.fitted):
            return
        splits = getattr(datamodule, "splits", None)
        if not splits or "train" not in splits:
            raise RuntimeError("WhitenedCNN fits its whitening stem to the datamodule's training split; "
                               "fit with trainer.fit(model, datamodule=...)")
        train = splits["train"]
        n = min(len(train), self.whiten_images)
        step = len(train) / n
        images = torch.stack([train[int(i * step)]["inputs"][modality] for i in range(n)])
        self.fit_whitening(images)
        log.info("whitening stem fitted to %d training images of %s", n, modality)

    # -- forward -----------------------------------------------------------------------------
    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, in_chans, S, S] -> [B, widths[-1], h, w]``."""
        return self.blocks(F.gelu(self.whiten(x)))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return global_max(self.feature_map(x)) * self.feature_scale

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        """Pooled ``[B, out_dim]`` and the feature map's cells as tokens ``[B, h*w, out_dim]``."""
        fmap = self.feature_map(x)
        tokens = fmap.flatten(2).transpose(1, 2) * self.feature_scale
        return EncoderOutput(global_max(fmap) * self.feature_scale, tokens,
                             torch.ones(tokens.shape[:2], dtype=torch.bool, device=x.device))
