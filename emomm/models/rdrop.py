"""R-Drop (Liang et al., NeurIPS 2021, "R-Drop: Regularized Dropout for Neural Networks").

Each training batch goes through the network twice. Dropout draws other masks the second
time, so the two passes are two sub-networks. The loss is their mean cross-entropy plus
``alpha`` times the symmetric KL divergence between their predicted distributions, which
pulls the sub-networks to agree and narrows the gap between training (dropout on) and
inference (dropout off). It doubles the forward and backward work of a training step (less
than twice the step's time, since the optimizer step is not repeated) and changes nothing at
inference. The paper's gains are largest when fine-tuning pretrained transformers on small
labelled sets (GLUE), which is MELD's situation; on MELD it did not pay here
(experiments/log/2026-12-06-meld-in-bf16-with-r-drop-batches-of.md).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def rdrop_alpha(alpha: float | None) -> float:
    """``model.rdrop`` -> the KL weight (0: off); negative weights are refused."""
    value = float(alpha or 0.0)
    if value < 0:
        raise ValueError(f"model.rdrop is the weight of the KL term and must be >= 0, got {alpha}")
    return value


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """``(KL(p_a || p_b) + KL(p_b || p_a)) / 2`` per sample, summed over classes and averaged
    over the batch. Logits ``[B, K]``; computed in fp32 (under bf16 autocast too)."""
    log_a, log_b = F.log_softmax(logits_a.float(), -1), F.log_softmax(logits_b.float(), -1)
    kl_ab = F.kl_div(log_b, log_a, log_target=True, reduction="batchmean")  # KL(p_a || p_b)
    kl_ba = F.kl_div(log_a, log_b, log_target=True, reduction="batchmean")  # KL(p_b || p_a)
    return 0.5 * (kl_ab + kl_ba)


def rdrop_loss(ce: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], logits_a: torch.Tensor,
               logits_b: torch.Tensor, labels: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, kl)``: the two passes' mean cross-entropy ``ce(logits, labels)`` plus ``alpha``
    times their symmetric KL (returned too, for logging). Logits ``[B, K]``, labels ``[B]``."""
    kl = symmetric_kl(logits_a, logits_b)
    return 0.5 * (ce(logits_a, labels) + ce(logits_b, labels)) + alpha * kl, kl
