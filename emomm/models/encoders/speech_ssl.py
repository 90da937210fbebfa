"""`SpeechSSLEncoder`: a self-supervised speech model (wav2vec 2.0 / HuBERT / WavLM) from
``transformers`` as a voice encoder.

Nothing is downloaded unless asked: ``model`` is a Hugging Face hub name *or a local
folder* (a ``save_pretrained`` / ``git clone`` of the model); with the default
``allow_download: false`` a hub name works only if it is already in the local HF cache,
otherwise the error says how to get a local copy. ``config`` instead builds a randomly
initialised model from a config dict (used by the tests; no weights at all).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from emomm.models.encoders.voice_cnn_lstm import AttentivePooling, _plain, length_mask, masked_mean

from emomm.models.features import EncoderOutput
from emomm.models.layer_decay import blocks_by_depth, layer_stack

log = logging.getLogger(__name__)

FREEZE = ("none", "feature_extractor", "all")


def build_backbone(model: str | None, config: Mapping[str, Any] | None,
                   allow_download: bool = False) -> nn.Module:
    from transformers import AutoConfig, AutoModel

    if config:
        cfg = dict(_plain(config))
        model_type = cfg.pop("model_type", "wav2vec2")
        return AutoModel.from_config(AutoConfig.for_model(model_type, **cfg))
    if not model:
        raise ValueError("model.encoders.voice: give `model` (hub name or local folder) or `config`")
    local = Path(str(model)).expanduser()
    try:
        if local.exists():
            return AutoModel.from_pretrained(str(local), local_files_only=True)
        return AutoModel.from_pretrained(str(model), local_files_only=not allow_download)
    except (OSError, ValueError) as err:
        raise OSError(
            f"model.encoders.voice.model={model}: cannot load it ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}). It is not a local folder and "
            + ("downloading failed." if allow_download else
               "downloads are off (allow_download=false), so it must already be in the local "
               "Hugging Face cache.")
            + " Download it once where you are online (`huggingface-cli download "
            f"{model} --local-dir /path/to/{Path(str(model)).name}`) and pass "
            "model.encoders.voice.model=/path/to/that/folder.") from None


class SpeechSSLEncoder(nn.Module):
    """Waveforms ``[B, T]`` at 16 kHz (+ ``lengths``) -> ``[B, out_dim]``.

    Args:
        model: hub name (``facebook/wav2vec2-base``, ``facebook/hubert-base-ls960``,
            ``microsoft/wavlm-base-plus``...) or local folder.
        config: build a randomly initialised model from this dict instead (``model_type``
            key, default ``wav2vec2``, plus that config's fields).
        allow_download: let ``from_pretrained`` reach the hub (off: local files only).
        freeze: ``all`` (a fixed feature extractor, kept in eval mode), ``feature_extractor``
            (the CNN front only; the transformer is fine-tuned) or ``none``.
        layer: ``last``, an int (that hidden state; 0 = after the CNN projection) or
            ``weighted`` (learned softmax-weighted sum of all hidden states, SUPERB style).
        pooling: ``mean`` or ``attention`` (both masked to the valid frames).
        proj_dim: optional Linear projection of the pooled vector.
        attention_mask: ``auto`` passes the padding mask to the model only when its
            feature extractor uses layer norm (wav2vec2-large-lv60, WavLM...); models with
            group norm (wav2vec2-base, HuBERT-base) were trained on zero-padded batches
            without one, as their Hugging Face feature extractors do. ``true``/``false``
            force it. Pooling is always masked.
        normalize_waveform: zero-mean unit-variance per utterance over its valid samples,
            as these models' feature extractors do.
        sample_rate: must be 16000 (what these models were trained on).
    """

    def __init__(self, model: str | None = "facebook/wav2vec2-base",
                 config: Mapping[str, Any] | None = None, allow_download: bool = False,
                 freeze: str | bool = "feature_extractor", layer: str | int = "last",
                 pooling: str = "mean", attention_hidden: int = 128, proj_dim: int | None = None,
                 attention_mask: str | bool = "auto", normalize_waveform: bool = True,
                 gradient_checkpointing: bool = False, dropout: float = 0.1,
                 sample_rate: int = 16000) -> None:
        super().__init__()
        if int(sample_rate) != 16000:
            raise ValueError(f"voice.sample_rate={sample_rate}: wav2vec2/HuBERT/WavLM expect 16000 Hz "
                             "input; set voice.sample_rate=16000")
        freeze = {True: "all", False: "none"}.get(freeze, freeze)  # type: ignore[arg-type]
        if freeze not in FREEZE:
            raise ValueError(f"freeze={freeze!r}; choose one of {FREEZE}")
        if pooling not in ("mean", "attention"):
            raise ValueError(f"pooling={pooling!r}; choose mean or attention")
        self.backbone = build_backbone(model, config, allow_download)
        cfg = self.backbone.config
        if gradient_checkpointing and freeze != "all":
            self.backbone.gradient_checkpointing_enable()
        self.freeze = freeze
        if freeze == "all":
            self.backbone.requires_grad_(False)
        elif freeze == "feature_extractor":
            fe = getattr(self.backbone, "feature_extractor", None)
            if fe is None:
                raise ValueError(f"{type(self.backbone).__name__} has no CNN feature_extractor to freeze; "
                                 "use freeze=all or none")
            fe.requires_grad_(False)
            fe._requires_grad = False  # transformers skips its gradient bookkeeping then
        hidden = int(cfg.hidden_size)
        n_states = int(cfg.num_hidden_layers) + 1
        if layer == "weighted":
            self.layer_weights = nn.Parameter(torch.zeros(n_states))
        else:
            self.layer_weights = None
            if layer != "last" and not -n_states <= int(layer) < n_states:
                raise ValueError(f"layer={layer}: the model has hidden states 0..{n_states - 1}")
        self.layer = layer
        if attention_mask == "auto":
            attention_mask = getattr(cfg, "feat_extract_norm", "layer") == "layer"
        self.pass_mask = bool(attention_mask)
        self.normalize_waveform = normalize_waveform
        self.pool = AttentivePooling(hidden, attention_hidden) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden, proj_dim) if proj_dim else None
        self.out_dim = int(proj_dim or hidden)
        self.token_dim = int(hidden)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """The backbone's parameters by depth, CNN front first, then each transformer block
        (for ``model.layer_lr_decay``). The pooling and projection on top are not in them:
        they train at the full rate."""
        layers = layer_stack(self.backbone, int(self.backbone.config.num_hidden_layers))
        return blocks_by_depth(self.backbone, layers) if layers is not None else [list(self.backbone.parameters())]

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze == "all":  # a frozen backbone stays deterministic (no dropout/masking)
            self.backbone.eval()
        return self

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode(wave, lengths).pooled

    def encode(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        """Pooled ``[B, out_dim]`` and the chosen layer's frames ``[B, T', hidden]`` as tokens."""
        if wave.dim() == 3 and wave.shape[1] == 1:
            wave = wave[:, 0]
        B, n = wave.shape
        if lengths is None:
            lengths = torch.full((B,), n, dtype=torch.long, device=wave.device)
        lengths = lengths.to(wave.device)
        smask = length_mask(lengths, n)
        x = wave.float() * smask
        if self.normalize_waveform:
            m = smask.to(x.dtype)
            cnt = m.sum(-1, keepdim=True).clamp_min(1)
            mean = (x * m).sum(-1, keepdim=True) / cnt
            var = (((x - mean) * m) ** 2).sum(-1, keepdim=True) / cnt
            x = (x - mean) / (var + 1e-7).sqrt() * m
        need_states = self.layer != "last"
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.freeze != "all"):
            out = self.backbone(x, attention_mask=smask.long() if self.pass_mask else None,
                                output_hidden_states=need_states)
        if self.layer == "last":
            h = out.last_hidden_state
        elif self.layer == "weighted":
            states = torch.stack(out.hidden_states, dim=0)       # [L+1, B, T', D]
            w = self.layer_weights.softmax(0).to(states.dtype)
            h = (w[:, None, None, None] * states).sum(0)
        else:
            h = out.hidden_states[int(self.layer)]
        flen = self.backbone._get_feat_extract_output_lengths(lengths).long().clamp(1, h.shape[1])
        mask = length_mask(flen, h.shape[1])
        pooled = masked_mean(h, mask) if self.pool is None else self.pool(h, mask)
        pooled = self.dropout(pooled)
        return EncoderOutput(self.proj(pooled) if self.proj is not None else pooled, h, mask)
