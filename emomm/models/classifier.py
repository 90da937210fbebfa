"""`EmotionClassifier`: encoders -> fusion -> fused head, plus one head per modality.

Two predictions come out of one forward pass (:meth:`EmotionClassifier.forward_all`):

* the fused ("hybrid") prediction: the fusion of every present modality;
* each modality's own ("simple") prediction: a linear head on that modality's pooled
  embedding, trained by the auxiliary per-modality losses. Decision-level late fusion
  *is* the combination of these heads.

A single-modality model has no extra heads: its one prediction serves as both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from emomm.models.features import EncoderOutput, absent, encode, token_dim


@dataclass
class ClassifierOutput:
    """``logits [B, K]`` (fused); ``modality_logits {modality: [B, K]}`` (each modality's
    own head; for a one-modality model its entry is ``logits``)."""

    logits: torch.Tensor
    modality_logits: dict[str, torch.Tensor]


def classifier_head(d: int, num_classes: int, dropout: float, hidden: int | None,
                    bias: bool = True) -> nn.Sequential:
    """Dropout, an optional hidden layer, then linear (with a bias unless ``bias`` is
    False): ``[B, d] -> [B, num_classes]``."""
    layers: list[nn.Module] = [nn.Dropout(dropout)]
    if hidden:
        layers += [nn.Linear(d, hidden), nn.GELU(), nn.Dropout(dropout)]
        d = hidden
    return nn.Sequential(*layers, nn.Linear(d, num_classes, bias=bias))


class EmotionClassifier(nn.Module):
    """Args:
        encoders: ``{modality: encoder}`` (each with ``out_dim``, optionally ``token_dim``).
        fusion: factory ``fusion(in_dims=..., token_dims=..., num_classes=...) -> nn.Module``.
        num_classes: size of the output.
        head_dropout / head_hidden: dropout before the fused head, optional hidden layer.
        head_bias: the heads' last layer has a bias. False as in the fast CIFAR-10 recipe
            that :class:`~emomm.models.encoders.whitened_cnn.WhitenedCNN` comes from: its
            features are scaled down (x 1/9), and a bias beside them would learn at the full
            rate.
    """

    def __init__(self, encoders: dict[str, nn.Module], fusion: Callable[..., nn.Module],
                 num_classes: int, head_dropout: float = 0.2, head_hidden: int | None = None,
                 head_bias: bool = True) -> None:
        super().__init__()
        if not encoders:
            raise ValueError("no encoders configured: pick a modality (modality=face|voice|...)")
        self.encoders = nn.ModuleDict(encoders)
        self.fusion = fusion(in_dims={m: int(e.out_dim) for m, e in encoders.items()},
                             token_dims={m: token_dim(e) for m, e in encoders.items()},
                             num_classes=num_classes)
        self.decision_level = bool(getattr(self.fusion, "decision_level", False))
        self.modality_heads = nn.ModuleDict(
            {m: classifier_head(int(e.out_dim), num_classes, head_dropout, None, head_bias)
             for m, e in encoders.items()}
            if len(encoders) > 1 or self.decision_level else {})
        self.head = None if self.decision_level else classifier_head(
            int(self.fusion.out_dim), num_classes, head_dropout, head_hidden, head_bias)

    @property
    def modalities(self) -> list[str]:
        return list(self.encoders)

    def encode(self, inputs: dict, present: dict[str, torch.Tensor] | None = None,
               lengths: dict[str, torch.Tensor] | None = None,
               ) -> tuple[dict[str, EncoderOutput], dict[str, torch.Tensor]]:
        """Every encoder's output and the presence masks (a modality missing from ``inputs``
        altogether gets a masked-out placeholder)."""
        present, lengths = dict(present or {}), lengths or {}
        # len() works for tensors and for list inputs (raw text) alike
        batch = len(next(iter(inputs.values())))
        device = next(self.parameters()).device
        feats = {}
        for m, enc in self.encoders.items():
            if m in inputs:
                feats[m] = encode(enc, inputs[m], lengths.get(m))
                present[m] = (present[m] if m in present
                              else torch.ones(batch, dtype=torch.bool)).to(feats[m].pooled.device)
            else:
                feats[m] = absent(enc, batch, device)
                present[m] = torch.zeros(batch, dtype=torch.bool, device=device)
        return feats, present

    def heads(self, feats: dict[str, EncoderOutput]) -> dict[str, torch.Tensor]:
        """Each modality's own logits ``{modality: [B, K]}`` (empty for one-modality models)."""
        return {m: head(feats[m].pooled) for m, head in self.modality_heads.items()}

    def fuse(self, feats: dict[str, EncoderOutput], present: dict[str, torch.Tensor],
             modality_logits: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Fused logits ``[B, K]`` from encoder outputs; masking modalities out of
        ``present`` gives the fused prediction of the remaining subset."""
        if self.decision_level:
            return self.fusion(modality_logits if modality_logits is not None else self.heads(feats), present)
        return self.head(self.fusion(feats, present))

    def fuse_embedded(self, feats: dict[str, EncoderOutput], present: dict[str, torch.Tensor],
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits [B, K], embedding [B, fusion.out_dim])`` of a feature-level fusion: the
        embedding is what the fused head reads (auxiliary task heads read it too)."""
        if self.decision_level:
            raise ValueError("late (decision-level) fusion has no fused embedding for auxiliary task heads; "
                             "use a feature-level fusion (fusion=auto|concat|gated|attention)")
        emb = self.fusion(feats, present)
        return self.head(emb), emb

    def forward_all(self, inputs: dict, present: dict[str, torch.Tensor] | None = None,
                    lengths: dict[str, torch.Tensor] | None = None) -> ClassifierOutput:
        feats, present = self.encode(inputs, present, lengths)
        modality_logits = self.heads(feats)
        logits = self.fuse(feats, present, modality_logits)
        return ClassifierOutput(logits, modality_logits or {self.modalities[0]: logits})

    def embed(self, inputs: dict, present: dict[str, torch.Tensor] | None = None,
              lengths: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Fused embedding ``[B, fusion.out_dim]`` (feature-level fusions only)."""
        if self.decision_level:
            raise ValueError("late (decision-level) fusion has no fused embedding; use forward_all")
        feats, present = self.encode(inputs, present, lengths)
        return self.fusion(feats, present)

    def forward(self, inputs: dict, present: dict[str, torch.Tensor] | None = None,
                lengths: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Fused logits ``[B, num_classes]``."""
        return self.forward_all(inputs, present, lengths).logits
