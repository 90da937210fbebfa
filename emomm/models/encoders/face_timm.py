"""`FaceEncoder`: any timm image backbone as a face-crop encoder."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from emomm.models.features import EncoderOutput, single_token


class FaceEncoder(nn.Module):
    """Face crops ``[B, in_chans, S, S]`` -> embeddings ``[B, out_dim]``.

    Args:
        backbone: any ``timm.create_model`` name (``efficientnet_b0``, ``resnet18``...).
        in_chans: 1 for grayscale data (FER2013), 3 for RGB.
        pretrained: load the backbone's published weights. Off by default: only users who
            are online can fetch them. Prefer ``pretrained_path`` (a local ``.safetensors``,
            ``.pth`` or ``.bin`` file for that backbone), which never touches the network.
        stem_pool: False removes the stem's max-pool (timm ResNet-family ``maxpool``), so
            the backbone's stride is 16 instead of 32. ImageNet stems shrink a 48 px FER2013
            face to 12x12 before the first block; without the pool the first stage sees
            24x24, which costs compute but keeps the detail expressions live in.
        **timm_kwargs: passed to timm (``drop_rate``, ``drop_path_rate``...).
    """

    def __init__(self, backbone: str = "efficientnet_b0", in_chans: int = 3,
                 pretrained: bool = False, pretrained_path: str | None = None,
                 stem_pool: bool = True, **timm_kwargs: Any) -> None:
        super().__init__()
        if backbone not in timm.list_models() and not timm.is_model(backbone):
            raise ValueError(f"unknown timm backbone {backbone!r}; see timm.list_models('*{backbone[:6]}*')")
        kwargs: dict[str, Any] = dict(num_classes=0, in_chans=in_chans, **timm_kwargs)
        if pretrained_path:
            path = Path(pretrained_path).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"model.encoders.face.pretrained_path={path} does not exist")
            kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
            pretrained = True
        self.net = timm.create_model(backbone, pretrained=pretrained, **kwargs)
        if not stem_pool:
            if not isinstance(getattr(self.net, "maxpool", None), nn.MaxPool2d):
                raise ValueError(f"stem_pool=false: backbone {backbone!r} has no stem max-pool to "
                                 "remove (ResNet-family timm models have one); drop the option")
            self.net.maxpool = nn.Identity()
        self.out_dim = int(self.net.num_features)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        """Pooled ``[B, out_dim]`` and the final feature map's cells as tokens
        ``[B, h*w, out_dim]`` (e.g. 3x3 for a 48 px face at stride 16)."""
        fmap = self.net.forward_features(x)
        if fmap.dim() != 4:  # a backbone whose features are already tokens (ViT-style)
            return single_token(self.net.forward_head(fmap))
        pooled = self.net.forward_head(fmap)
        tokens = fmap.flatten(2).transpose(1, 2)
        return EncoderOutput(pooled, tokens, torch.ones(tokens.shape[:2], dtype=torch.bool, device=x.device))
