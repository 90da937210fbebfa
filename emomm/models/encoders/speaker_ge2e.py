"""`GE2EVoiceEncoder`: a pretrained speaker-verification LSTM as voice encoder.

The network is Resemblyzer's voice encoder (Apache-2.0): a GE2E-trained (Wan et al. 2018)
3-layer LSTM (256 units) over a 40-bin power mel spectrogram (25 ms window, 10 ms hop,
16 kHz), trained to tell thousands of speakers apart (LibriSpeech, VoxCeleb 1 and 2). It is
the one pretrained speech network that installs here: ``make models`` takes its 17 MB
``pretrained.pt`` out of the Resemblyzer 0.1.4 wheel (:mod:`emomm.utils.wheel_models`).

Why a speaker model helps with emotion: to separate voices it has to track pitch, timbre,
effort and voice quality, the same cues that carry emotion. Its *middle* layer carries them
best: a logistic regression on the time mean + std of each layer's outputs, frozen, scored
RAVDESS UAR 55 / 70 / 57 for layers 1 / 2 / 3 on actors 17-20 and 54 / 68 / 57 in 5-fold CV
by actor (benchmarks/ge2e_probe.py); the top layer is tuned to speaker identity, which does
not transfer to unseen actors. So ``layers`` keeps the first N layers (default 2).

Shapes: waveforms ``[B, T]`` at 16 kHz (+ ``lengths [B]``) -> frames ``[B, T', 256]`` at
100 per second -> pooled ``[B, out_dim]`` (``mean_std``: 512, attention: 256).
The LSTM is unidirectional, so a clip's frames do not depend on the padding after it; the
pooling masks the padding, so in eval mode an embedding does not depend on its batch.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torchaudio.transforms as T
from torch import nn

from emomm.models.encoders.voice_cnn_lstm import (AttentivePooling, SpecAugment, _plain, length_mask, masked_mean,
                                        waveform_batch)
from emomm.models.features import EncoderOutput
from emomm.utils.wheel_models import RESEMBLYZER

SAMPLE_RATE, N_MELS, HIDDEN, N_LAYERS = 16000, 40, 256, 3
POOLING = ("mean_std", "attention", "attention_stats", "mean")


def load_ge2e_layers(path: str | Path | None, n_layers: int) -> nn.ModuleList:
    """The first ``n_layers`` layers of the pretrained LSTM, each its own one-layer
    ``nn.LSTM`` (so they can be frozen, dropped or given their own learning rate).
    ``path`` None: the file ``make models`` fetched; ``"random"``: untrained (tests)."""
    layers = nn.ModuleList(nn.LSTM(N_MELS if i == 0 else HIDDEN, HIDDEN, batch_first=True)
                           for i in range(n_layers))
    if path == "random":
        return layers
    path = Path(path).expanduser() if path else RESEMBLYZER.default_path()
    if not path.is_file():
        raise FileNotFoundError(RESEMBLYZER.missing_message(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("model_state", state)
    for i, layer in enumerate(layers):
        try:
            layer.load_state_dict({f"{kind}_l0": state[f"lstm.{kind}_l{i}"]
                                   for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")})
        except (KeyError, RuntimeError) as err:
            raise ValueError(f"{path}: not a Resemblyzer voice-encoder state ({err})") from None
    return layers


def frozen_layers(freeze: bool | int, layers: int) -> int:
    """How many of the ``layers`` kept LSTM layers (bottom first) ``freeze`` holds fixed:
    true all, false none, an integer N the first N."""
    if isinstance(freeze, bool):
        return layers if freeze else 0
    if not isinstance(freeze, int) or not 0 <= freeze <= layers:
        raise ValueError(f"freeze={freeze!r}: true, false or a number of layers 0..{layers} "
                         f"(the first N of the {layers} kept layers stay fixed)")
    return freeze


class BatchNormAnyBatch(nn.BatchNorm1d):
    """BatchNorm1d that normalises a training batch of one sample (a dataset's last, short
    batch) with the running statistics instead of failing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight,
                                            self.bias, False, 0.0, self.eps)
        return super().forward(x)


class GE2EVoiceEncoder(nn.Module):
    """Waveforms ``[B, T]`` (+ ``lengths``) at 16 kHz -> utterance embeddings ``[B, out_dim]``.

    Args:
        sample_rate: must be 16000 (the network's rate; set ``voice.sample_rate``).
        weights: the ``pretrained.pt`` file (null: where ``make models`` puts it; ``random``:
            untrained, for tests).
        layers: how many of the 3 pretrained LSTM layers to keep (1-3; see the module
            docstring for why 2).
        freeze: true keeps the pretrained layers fixed (a probe with a trained pooling and
            head); an integer N keeps the first N of them fixed and fine-tunes the rest; false
            fine-tunes them all (``model.layer_lr_decay`` gives lower layers lower rates).
        volume_dbfs: each clip's gain is raised (never lowered) to this loudness over its
            valid samples, as Resemblyzer's preprocessing does; null: off.
        specaugment: :class:`SpecAugment` options on the mel frames (train only); null: off.
        pooling: ``mean_std`` (masked mean and standard deviation over time), ``attention``,
            ``attention_stats`` or ``mean``.
        attention_hidden: width of the attention scorer.
        norm: ``batch`` (BatchNorm1d: per-feature standardisation, learnt during training),
            ``layer`` or null, on the pooled embedding. The LSTM's outputs vary little over
            time, so the mean + std features are small (~0.04 std) and a linear head on them
            barely moved: frozen, 41 UAR after 37 epochs without a norm, where a standardised
            logistic regression on the same features gave 68.
        dropout: on the pooled embedding.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, weights: str | None = None, layers: int = 2,
                 freeze: bool | int = False, volume_dbfs: float | None = -30.0,
                 specaugment: Mapping[str, Any] | None = None, pooling: str = "mean_std",
                 attention_hidden: int = 128, norm: str | None = "batch", dropout: float = 0.2) -> None:
        super().__init__()
        if int(sample_rate) != SAMPLE_RATE:
            raise ValueError(f"the GE2E voice encoder was trained at {SAMPLE_RATE} Hz, got "
                             f"sample_rate={sample_rate}: set voice.sample_rate={SAMPLE_RATE}")
        if not 1 <= int(layers) <= N_LAYERS:
            raise ValueError(f"layers={layers}: keep 1 to {N_LAYERS} of the pretrained LSTM layers")
        if pooling not in POOLING:
            raise ValueError(f"pooling={pooling!r}; choose one of {POOLING}")
        # Resemblyzer's own mel: librosa's defaults (Slaney scale and area normalisation),
        # power, not log; constant padding so a clip alone and zero-padded in a batch match.
        self.mel = T.MelSpectrogram(SAMPLE_RATE, n_fft=400, hop_length=160, n_mels=N_MELS,
                                    power=2.0, norm="slaney", mel_scale="slaney", center=True,
                                    pad_mode="constant")
        self.hop = 160
        self.volume_dbfs = volume_dbfs
        spec = _plain(specaugment)
        self.specaugment = SpecAugment(**spec) if spec and spec.pop("enabled", True) is not False else None
        self.lstm = load_ge2e_layers(weights, int(layers))
        self.n_frozen = frozen_layers(freeze, int(layers))
        self.freeze = self.n_frozen == len(self.lstm)
        self.lstm[:self.n_frozen].requires_grad_(False)
        self.pooling = pooling
        self.pool = (AttentivePooling(HIDDEN, attention_hidden, stats=pooling == "attention_stats")
                     if pooling.startswith("attention") else None)
        self.token_dim = HIDDEN
        self.out_dim = self.pool.out_dim if self.pool is not None else HIDDEN * (2 if pooling == "mean_std" else 1)
        if norm not in ("batch", "layer", None):
            raise ValueError(f"norm={norm!r}; choose batch, layer or null")
        self.norm = {"batch": BatchNormAnyBatch, "layer": nn.LayerNorm}[norm](self.out_dim) if norm else nn.Identity()
        self.dropout = nn.Dropout(dropout)

    def _gain(self, wave: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Raise each clip to ``volume_dbfs`` RMS over its valid samples (never lower it)."""
        if self.volume_dbfs is None:
            return wave
        power = (wave ** 2).sum(dim=1) / valid.sum(dim=1).clamp_min(1)
        target = 10.0 ** (float(self.volume_dbfs) / 10.0)                  # power at volume_dbfs
        gain = (target / power.clamp_min(1e-12)).sqrt().clamp_min(1.0)
        return wave * gain[:, None]

    def features(self, wave: torch.Tensor, lengths: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame-level features ``[B, T', 256]`` (the last kept LSTM layer) and their lengths."""
        wave, lengths = waveform_batch(wave, lengths)
        n = wave.shape[1]
        with torch.autocast(device_type=wave.device.type, enabled=False):
            valid = length_mask(lengths, n).to(wave.dtype)
            x = self.mel(self._gain(wave.float() * valid, valid))           # [B, 40, T']
        flen = (lengths // self.hop + 1).clamp(1, x.shape[-1])
        if self.specaugment is not None:
            x = self.specaugment(x, flen)
        h = x.transpose(1, 2)                                               # [B, T', 40]
        for layer in self.lstm:
            h, _ = layer(h)
        return h, flen

    def train(self, mode: bool = True):
        super().train(mode)
        # frozen layers stay in eval mode (no dropout inside, but be explicit); all frozen: their list too
        (self.lstm if self.freeze else self.lstm[:self.n_frozen]).eval()
        return self

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameters bottom first, for layer-wise rate decay: one group per LSTM layer, the
        pooling and norm (fresh modules) with the top layer."""
        groups = [list(layer.parameters()) for layer in self.lstm]
        fresh = [p for m in (self.pool, self.norm) if m is not None for p in m.parameters()]
        groups[-1] = groups[-1] + fresh
        return groups

    def encode(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        """Pooled ``[B, out_dim]`` and the frames ``[B, T', 256]`` as tokens."""
        h, flen = self.features(wave, lengths)
        mask = length_mask(flen, h.shape[1])
        if self.pool is not None:
            pooled = self.pool(h, mask)
        else:
            pooled = masked_mean(h, mask)
            if self.pooling == "mean_std":
                var = masked_mean((h - pooled[:, None]) ** 2, mask)
                pooled = torch.cat([pooled, (var + 1e-6).sqrt()], dim=-1)
        return EncoderOutput(self.dropout(self.norm(pooled)), h, mask)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode(wave, lengths).pooled
