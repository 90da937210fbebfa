"""Layer-wise learning-rate decay (LLRD) for fine-tuning transformer encoders.

A pretrained transformer's lower blocks hold general features and its upper blocks
task-specific ones, so fine-tuning on a small dataset works better when the rate falls
with depth: the top block trains at ``lr``, the one below at ``lr * decay``, and so on
down to the embeddings (Howard & Ruder 2018; Zhang et al. 2021, "Revisiting few-sample
BERT fine-tuning"). Encoders that support it expose ``layer_groups()``; the Lightning
module turns those groups into optimizer parameter groups (``model.layer_lr_decay``).
"""
from __future__ import annotations

from torch import nn


def layer_stack(model: nn.Module, n_layers: int) -> nn.ModuleList | None:
    """The ModuleList of transformer blocks (BERT ``encoder.layer``, DistilBERT
    ``transformer.layer``, wav2vec2 ``encoder.layers``), or None: of the ModuleLists of
    ``n_layers`` modules, the first whose blocks hold attention (wav2vec2's CNN front is a
    ModuleList too, and may have as many layers)."""
    stacks = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) == n_layers > 0]
    for stack in stacks:
        if any("attention" in name.lower() for name, _ in stack[0].named_modules()):
            return stack
    return stacks[0] if stacks else None


def blocks_by_depth(model: nn.Module, layers: nn.ModuleList) -> list[list[nn.Parameter]]:
    """``model``'s parameters bottom first: ``[below, layer 0, ..., layer N-1]``.

    ``below`` holds what is registered before the first block (embeddings, a CNN front, a
    positional convolution); what is registered after the last block (a final norm) joins
    the top block. Parameter order follows registration, which for Hugging Face models is
    the order of the forward pass at this granularity.
    """
    in_layer = {id(p): i for i, layer in enumerate(layers) for p in layer.parameters()}
    blocks: list[list[nn.Parameter]] = [[] for _ in range(len(layers) + 1)]
    seen_a_layer = False
    for p in model.parameters():
        i = in_layer.get(id(p))
        if i is not None:
            seen_a_layer = True
            blocks[i + 1].append(p)
        else:
            blocks[-1 if seen_a_layer else 0].append(p)
    return blocks


def decayed_groups(blocks: list[list[nn.Parameter]], lr: float, decay: float,
                   keep: set[int] | None = None) -> list[dict]:
    """One optimizer group per block, the top one at ``lr`` and each lower one ``decay``
    times the one above; only parameters whose ``id`` is in ``keep`` (default: those that
    require grad). Empty groups are left out."""
    top = len(blocks) - 1
    groups = []
    for i, block in enumerate(blocks):
        params = [p for p in block if (id(p) in keep if keep is not None else p.requires_grad)]
        if params:
            groups.append({"params": params, "lr": lr * decay ** (top - i)})
    return groups
