"""`VoiceEncoder`: log-mel spectrogram -> 2-D CNN -> (bi)LSTM -> attentive pooling.

The log-mel features are computed inside the encoder, on the padded waveform batch and on
the model's device (the GPU when there is one), not per file in the data loader. Padding is
masked end to end: the STFT sees zeros past each clip's length (constant, not reflect,
padding), the per-utterance statistics and ``top_db`` floor use valid frames only, every
convolution sees zeroed padding, the LSTM runs on packed sequences and the pooling ignores
padded frames - so in eval mode an utterance's embedding does not depend on what it is
batched with.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Sequence

import torch
import torchaudio.transforms as T
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils.data import DataLoader, Subset

from emomm.data.core.collate import collate_samples
from emomm.models.features import EncoderOutput

log = logging.getLogger(__name__)

NORMALIZE = ("utterance", "utterance_global", "dataset", "none")


def _plain(x: Any) -> dict[str, Any]:
    """A plain dict from None / dict / OmegaConf node."""
    if x is None:
        return {}
    try:
        from omegaconf import DictConfig, OmegaConf
        if isinstance(x, DictConfig):
            return OmegaConf.to_container(x, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover
        pass
    if not isinstance(x, Mapping):
        raise TypeError(f"expected a mapping of options, got {type(x).__name__}: {x!r}")
    return dict(x)


def length_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """``[B, size]`` bool, True on valid positions."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


def waveform_batch(wave: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A voice encoder's input as ``[B, T]`` (``[B, 1, T]`` is squeezed) and its lengths
    ``[B]`` on the same device (the full length where none are given)."""
    if wave.dim() == 3 and wave.shape[1] == 1:
        wave = wave[:, 0]
    if wave.dim() != 2:
        raise ValueError(f"voice input must be a waveform batch [B, T], got {tuple(wave.shape)}")
    if lengths is None:
        lengths = torch.full((wave.shape[0],), wave.shape[1], dtype=torch.long, device=wave.device)
    return wave, lengths.to(wave.device)


def vtlp_warp(freqs: torch.Tensor, alpha: torch.Tensor, nyquist: float, f_hi: float) -> torch.Tensor:
    """Piecewise-linear frequency warp of vocal-tract length perturbation (Jaitly & Hinton
    2013): ``f -> alpha f`` up to the boundary ``b = f_hi min(alpha, 1) / alpha``, then a
    straight line to the Nyquist frequency, which stays fixed (the warp maps [0, nyq] onto
    itself). ``freqs [F]`` Hz, ``alpha [B]`` -> warped ``[B, F]`` Hz."""
    a = alpha.float()[:, None]
    f = freqs.float()[None, :]
    b = f_hi * torch.clamp(a, max=1.0) / a
    upper = nyquist - (nyquist - a * b) / (nyquist - b) * (nyquist - f)
    return torch.where(f <= b, a * f, upper).clamp(0.0, nyquist)


def vtlp_filterbank(fb: torch.Tensor, alpha: torch.Tensor, sample_rate: int, f_hi: float = 4800.0
                    ) -> torch.Tensor:
    """Mel filterbanks ``[B, F, M]`` for warp factors ``alpha [B]`` from the plain one
    ``fb [F, M]`` (F linear STFT bins from 0 Hz to Nyquist).

    Warping the spectrum's frequency axis by ``w`` and then applying filter ``H_m`` is,
    per source bin, applying ``H_m(w(f))``: so each row of the warped bank is the plain bank
    read (linearly interpolated) at the warped frequency. ``alpha = 1`` gives ``fb`` exactly.
    """
    n_freqs = fb.shape[0]
    nyquist = sample_rate / 2
    f_hi = min(f_hi, 0.9 * nyquist)  # the boundary must stay below Nyquist (low sample rates)
    freqs = torch.linspace(0, nyquist, n_freqs, device=fb.device)
    pos = vtlp_warp(freqs, alpha.to(fb.device), nyquist, f_hi) / nyquist * (n_freqs - 1)  # [B, F]
    lo = pos.floor().long().clamp(0, n_freqs - 1)
    hi = (lo + 1).clamp(max=n_freqs - 1)
    frac = (pos - lo.float()).unsqueeze(-1)                                             # [B, F, 1]
    return fb[lo] * (1 - frac) + fb[hi] * frac


class LogMelFrontend(nn.Module):
    """Waveforms ``[B, T]`` (+ lengths) -> log-mel ``[B, n_mels, frames]`` + frame lengths.

    Args:
        sample_rate: of the input waveforms.
        n_mels, win_ms, hop_ms, n_fft (default: next power of two >= window), f_min, f_max
            (default: Nyquist): the mel spectrogram (torchaudio ``MelSpectrogram``, power 2,
            converted to dB by ``AmplitudeToDB``).
        top_db: floor each utterance at its peak minus ``top_db`` dB (null: no floor).
        normalize: ``utterance`` - per mel bin, mean/std over the utterance's valid frames
            (CMVN); ``utterance_global`` - one mean/std per utterance over all bins (keeps
            the spectral shape); ``dataset`` - per mel bin, mean/std of the training set:
            computed over the training split before training when the LightningModule
            calls :meth:`VoiceEncoder.fit_to_data`, otherwise accumulated over the training
            batches as they come; stored in the checkpoint, fixed in eval; ``none``.
        vtlp: vocal-tract length perturbation in training only, ``{alpha: [0.9, 1.1],
            f_hi: 4800, p: 1.0}``: with probability ``p`` an utterance's mel filterbank is
            warped by a factor drawn uniformly in ``alpha`` (:func:`vtlp_filterbank`); costs
            one batched matmul instead of the plain one. null: off.
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 64, win_ms: float = 25.0,
                 hop_ms: float = 10.0, n_fft: int | None = None, f_min: float = 20.0,
                 f_max: float | None = None, top_db: float | None = 80.0,
                 normalize: str = "utterance", eps: float = 1e-5,
                 vtlp: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        vt = _plain(vtlp)
        if vt and vt.pop("enabled", True) is not False:
            unknown = set(vt) - {"alpha", "f_hi", "p"}
            if unknown:
                raise ValueError(f"frontend.vtlp: unknown options {sorted(unknown)}; known: alpha, f_hi, p")
            lo, hi = (float(v) for v in vt.get("alpha", (0.9, 1.1)))
            if not 0 < lo <= hi:
                raise ValueError(f"frontend.vtlp.alpha=[{lo}, {hi}]: need 0 < low <= high")
            self.vtlp = {"alpha": (lo, hi), "f_hi": float(vt.get("f_hi", 4800.0)), "p": float(vt.get("p", 1.0))}
        else:
            self.vtlp = None
        if normalize not in NORMALIZE:
            raise ValueError(f"frontend.normalize={normalize!r}; choose one of {NORMALIZE}")
        self.sample_rate = int(sample_rate)
        self.win = int(round(sample_rate * win_ms / 1000))
        self.hop = int(round(sample_rate * hop_ms / 1000))
        if self.win < 2 or self.hop < 1:
            raise ValueError(f"window {win_ms} ms / hop {hop_ms} ms too short at {sample_rate} Hz")
        self.n_fft = int(n_fft or 2 ** (self.win - 1).bit_length())
        if self.n_fft < self.win:
            raise ValueError(f"frontend.n_fft={self.n_fft} is shorter than the window ({self.win} samples)")
        f_max = float(f_max or sample_rate / 2)
        if not 0 <= f_min < f_max <= sample_rate / 2:
            raise ValueError(f"need 0 <= f_min ({f_min}) < f_max ({f_max}) <= sample_rate/2 ({sample_rate / 2})")
        self.n_mels, self.top_db, self.normalize, self.eps = int(n_mels), top_db, normalize, eps
        # Constant (zero) padding: a clip alone and the same clip zero-padded in a batch
        # give identical frames.
        self.mel = T.MelSpectrogram(sample_rate=sample_rate, n_fft=self.n_fft, win_length=self.win,
                                    hop_length=self.hop, f_min=f_min, f_max=f_max, n_mels=n_mels,
                                    power=2.0, center=True, pad_mode="constant")
        self.to_db = T.AmplitudeToDB(stype="power", top_db=None)  # top_db is applied per utterance
        self.register_buffer("stat_mean", torch.zeros(n_mels))
        self.register_buffer("stat_var", torch.ones(n_mels))
        self.register_buffer("stat_count", torch.zeros(()))
        # Set once the statistics were computed over the training set before training
        # (`VoiceEncoder.fit_to_data`); the running update then stops.
        self.register_buffer("stat_frozen", torch.zeros((), dtype=torch.bool))
        self._warned = False

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths // self.hop + 1

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        wave, lengths = waveform_batch(wave, lengths)
        n = wave.shape[1]
        with torch.autocast(device_type=wave.device.type, enabled=False):
            wave = wave.float() * length_mask(lengths, n)
            if self.training and self.vtlp is not None:
                db = self.to_db(self._warped_mel(wave))         # [B, M, frames]
            else:
                db = self.to_db(self.mel(wave))                 # [B, M, frames]
        frames = db.shape[-1]
        flen = self.frame_lengths(lengths).clamp(1, frames)
        fmask = length_mask(flen, frames)[:, None, :]           # [B, 1, frames]
        if self.top_db is not None:
            peak = db.masked_fill(~fmask, float("-inf")).amax(dim=(1, 2), keepdim=True)
            db = torch.maximum(db, peak - float(self.top_db))
        db = self._normalize(db, fmask, flen)
        return db.masked_fill(~fmask, 0.0), flen

    def _warped_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """Power mel spectrogram ``[B, M, frames]`` with a random VTLP warp per utterance."""
        spec = self.mel.spectrogram(wave)                       # [B, F, frames]
        B = wave.shape[0]
        lo, hi = self.vtlp["alpha"]
        alpha = torch.empty(B, device=wave.device).uniform_(lo, hi)
        keep = torch.rand(B, device=wave.device) >= self.vtlp["p"]
        alpha = torch.where(keep, torch.ones_like(alpha), alpha)
        fb = vtlp_filterbank(self.mel.mel_scale.fb, alpha, self.sample_rate, self.vtlp["f_hi"])
        return torch.bmm(fb.transpose(1, 2), spec)             # [B, M, F] @ [B, F, frames]

    def _normalize(self, db: torch.Tensor, fmask: torch.Tensor, flen: torch.Tensor) -> torch.Tensor:
        mode = self.normalize
        if mode == "none":
            return db
        m = fmask.to(db.dtype)
        if mode == "dataset":
            if self.training and not bool(self.stat_frozen):
                self._update_stats(db, m)
            if self.stat_count > 0:
                return (db - self.stat_mean[:, None]) / (self.stat_var[:, None] + self.eps).sqrt()
            if not self._warned:
                log.warning("frontend.normalize=dataset but no training batch was seen yet: "
                            "using per-utterance statistics")
                self._warned = True
            mode = "utterance"
        dims = (2,) if mode == "utterance" else (1, 2)
        count = m.sum(dim=dims, keepdim=True) * (1 if mode == "utterance" else db.shape[1])
        mean = (db * m).sum(dim=dims, keepdim=True) / count
        var = (((db - mean) * m) ** 2).sum(dim=dims, keepdim=True) / count
        return (db - mean) / (var + self.eps).sqrt()

    @torch.no_grad()
    def _update_stats(self, db: torch.Tensor, m: torch.Tensor) -> None:
        """Merge this batch's per-bin moments into the running ones (Chan et al.)."""
        n_b = m.sum()
        if n_b == 0:
            return
        mean_b = (db * m).sum(dim=(0, 2)) / n_b
        var_b = (((db - mean_b[None, :, None]) * m) ** 2).sum(dim=(0, 2)) / n_b
        n_a = self.stat_count
        total = n_a + n_b
        delta = mean_b - self.stat_mean
        self.stat_mean += delta * n_b / total
        self.stat_var.copy_((self.stat_var * n_a + var_b * n_b + delta ** 2 * n_a * n_b / total) / total)
        self.stat_count.copy_(total)


class SpecAugment(nn.Module):
    """Frequency and time masking (Park et al. 2019), in training mode only.

    Each utterance gets ``freq_masks`` bands of up to ``freq_width`` mel bins and
    ``time_masks`` spans of up to ``time_width`` frames (and at most ``max_time_fraction``
    of its valid length), placed inside its valid frames and filled with its mean.
    """

    def __init__(self, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2,
                 time_width: int = 20, max_time_fraction: float = 0.2) -> None:
        super().__init__()
        self.freq_masks, self.freq_width = int(freq_masks), int(freq_width)
        self.time_masks, self.time_width = int(time_masks), int(time_width)
        self.max_time_fraction = float(max_time_fraction)

    @staticmethod
    def _spans(n: int, width: torch.Tensor, size: torch.Tensor, device) -> torch.Tensor:
        """``[B, n]`` bool mask: one random span of width < ``width`` within ``size``."""
        B = width.shape[0]
        w = (torch.rand(B, device=device) * (width.float() + 1)).long().clamp(max=size)
        start = (torch.rand(B, device=device) * (size - w + 1).float()).long()
        pos = torch.arange(n, device=device)[None, :]
        return (pos >= start[:, None]) & (pos < (start + w)[:, None])

    def forward(self, x: torch.Tensor, flen: torch.Tensor) -> torch.Tensor:
        if not self.training or (self.freq_masks == 0 and self.time_masks == 0):
            return x
        B, M, frames = x.shape
        dev = x.device
        fmask = length_mask(flen, frames)[:, None, :]
        fill = (x * fmask).sum(dim=(1, 2), keepdim=True) / (fmask.sum(dim=(1, 2), keepdim=True) * M)
        masked = torch.zeros_like(x, dtype=torch.bool)
        for _ in range(self.freq_masks):
            band = self._spans(M, torch.full((B,), self.freq_width, device=dev),
                               torch.full((B,), M, device=dev), dev)
            masked |= band[:, :, None]
        for _ in range(self.time_masks):
            width = torch.minimum(torch.full_like(flen, self.time_width),
                                  (flen.float() * self.max_time_fraction).long())
            span = self._spans(frames, width, flen, dev)
            masked |= span[:, None, :]
        return torch.where(masked & fmask, fill.expand_as(x), x)


class AttentivePooling(nn.Module):
    """Masked attention pooling over time: ``[B, T, D]`` -> ``[B, D]`` (or ``[B, 2D]``
    with ``stats=True``: attention-weighted mean and standard deviation)."""

    def __init__(self, dim: int, hidden: int = 128, stats: bool = False) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.stats = stats
        self.out_dim = dim * (2 if stats else 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        e = self.score(h).squeeze(-1).float()                   # [B, T]
        if mask is not None:
            e = e.masked_fill(~mask, float("-inf"))
        a = e.softmax(dim=-1).to(h.dtype).unsqueeze(-1)         # [B, T, 1]
        mean = (a * h).sum(dim=1)
        if not self.stats:
            return mean
        var = (a * (h - mean[:, None]) ** 2).sum(dim=1)
        return torch.cat([mean, (var + 1e-6).sqrt()], dim=-1)


def masked_mean(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return h.mean(dim=1)
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(dim=1) / m.sum(dim=1).clamp_min(1)


def _per_block(value: int | Sequence[int], n: int, name: str) -> list[int]:
    if isinstance(value, int):
        return [value] * n
    value = [int(v) for v in value]
    if len(value) != n:
        raise ValueError(f"{name} has {len(value)} entries for {n} CNN blocks")
    return value


class VoiceEncoder(nn.Module):
    """Waveforms ``[B, T]`` (+ ``lengths``) -> utterance embeddings ``[B, out_dim]``.

    Args:
        sample_rate: of the input waveforms.
        frontend: :class:`LogMelFrontend` options (n_mels, win_ms, hop_ms, n_fft, f_min,
            f_max, top_db, normalize).
        specaugment: :class:`SpecAugment` options (train only); null switches it off.
        channels: output channels of the CNN blocks (Conv3x3-BN-ReLU-MaxPool-Dropout each).
        freq_pool / time_pool: max-pool factors per block (an int for all blocks, or a list).
        conv_dropout: dropout after each block.
        proj_dim: the CNN output per frame (channels x remaining mel bins) is projected to
            this width (Linear-LayerNorm-ReLU) before the LSTM, which keeps the LSTM cheap;
            null feeds it directly.
        lstm_hidden / lstm_layers / bidirectional / lstm_dropout: the recurrent layer over
            time; ``lstm_layers=0`` skips it.
        pooling: ``attention`` (attentive pooling), ``attention_stats`` (weighted mean +
            std) or ``mean``; all masked by the valid lengths.
        attention_hidden: width of the attention scorer.
        dropout: on the pooled embedding.
        channels_last: run the CNN blocks in NHWC memory layout. The same model (only the
            layout of its activations changes; a seeded run differs by float rounding and
            by the order the conv dropout draws its masks). On CPU, PyTorch's max-pool and
            batch norm have vectorised NHWC kernels and oneDNN's convolutions skip reorders:
            the RAVDESS recipe's training step took 0.61 s instead of 0.74 s in fp32, and
            0.40 s with bf16, at one thread on an Intel Xeon (benchmarks/step_time.py voice).
    """

    def __init__(self, sample_rate: int = 16000, frontend: Mapping[str, Any] | None = None,
                 specaugment: Mapping[str, Any] | None = None,
                 channels: Sequence[int] = (32, 64, 128), kernel_size: int = 3,
                 freq_pool: int | Sequence[int] = 2, time_pool: int | Sequence[int] = 2,
                 conv_dropout: float = 0.1, proj_dim: int | None = 128,
                 lstm_hidden: int = 128, lstm_layers: int = 1,
                 bidirectional: bool = True, lstm_dropout: float = 0.0,
                 pooling: str = "attention", attention_hidden: int = 128,
                 dropout: float = 0.2, channels_last: bool = True) -> None:
        super().__init__()
        self.channels_last = bool(channels_last)
        self.frontend = LogMelFrontend(sample_rate=sample_rate, **_plain(frontend))
        spec = _plain(specaugment)
        self.specaugment = SpecAugment(**spec) if spec and spec.pop("enabled", True) is not False else None
        channels = [int(c) for c in channels]
        fp = _per_block(freq_pool, len(channels), "freq_pool")
        tp = _per_block(time_pool, len(channels), "time_pool")
        self.time_pools = tp
        blocks, c_in, mels = [], 1, self.frontend.n_mels
        for c, f, t in zip(channels, fp, tp):
            blocks.append(nn.Sequential(
                nn.Conv2d(c_in, c, kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                nn.MaxPool2d((f, t)) if (f, t) != (1, 1) else nn.Identity(),
                nn.Dropout(conv_dropout)))
            c_in, mels = c, mels // f
            if mels < 1:
                raise ValueError(f"freq_pool {fp} reduces {self.frontend.n_mels} mel bins to nothing")
        self.blocks = nn.ModuleList(blocks)
        if self.channels_last:  # the weights too: NHWC input with NCHW weights reorders every step
            self.blocks.to(memory_format=torch.channels_last)
        feat = c_in * mels
        self.proj = None
        if proj_dim:
            self.proj = nn.Sequential(nn.Linear(feat, proj_dim), nn.LayerNorm(proj_dim), nn.ReLU(inplace=True))
            feat = int(proj_dim)
        if lstm_layers > 0:
            self.lstm = nn.LSTM(feat, lstm_hidden, num_layers=lstm_layers, batch_first=True,
                                bidirectional=bidirectional,
                                dropout=lstm_dropout if lstm_layers > 1 else 0.0)
            feat = lstm_hidden * (2 if bidirectional else 1)
        else:
            self.lstm = None
        if pooling not in ("attention", "attention_stats", "mean"):
            raise ValueError(f"pooling={pooling!r}; choose attention, attention_stats or mean")
        self.pooling = pooling
        self.pool = AttentivePooling(feat, attention_hidden, stats=pooling == "attention_stats") \
            if pooling != "mean" else None
        self.out_dim = self.pool.out_dim if self.pool is not None else feat
        self.token_dim = feat
        self.dropout = nn.Dropout(dropout)

    def features(self, wave: torch.Tensor, lengths: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame-level features ``[B, T', D]`` and their lengths, before pooling."""
        x, flen = self.frontend(wave, lengths)                  # [B, M, F]
        if self.specaugment is not None:
            x = self.specaugment(x, flen)
        x = x.unsqueeze(1)                                      # [B, 1, M, F]: one channel is already
                                                                # NHWC; the first conv's NHWC weights
                                                                # make every later block NHWC
        for block, tp in zip(self.blocks, self.time_pools):
            x = block(x)
            flen = (flen // tp).clamp_min(1)
            x = x * length_mask(flen, x.shape[-1])[:, None, None, :].to(x.dtype)
        B, C, M, frames = x.shape
        h = x.permute(0, 3, 1, 2).reshape(B, frames, C * M)     # [B, T', C*M']
        if self.proj is not None:
            h = self.proj(h)
        if self.lstm is not None:
            if bool((flen < frames).any()):
                packed = pack_padded_sequence(h, flen.cpu(), batch_first=True, enforce_sorted=False)
                h, _ = self.lstm(packed)
                h, _ = pad_packed_sequence(h, batch_first=True, total_length=frames)
            else:
                h, _ = self.lstm(h)
        return h, flen

    @torch.no_grad()
    def fit_to_data(self, datamodule: Any, modality: str = "voice", max_clips: int = 4000,
                    batch_size: int = 64) -> None:
        """With ``normalize: dataset``: per-bin log-mel mean/std over (up to ``max_clips``
        of) the training split, computed once before training and then fixed."""
        fe = self.frontend
        if fe.normalize != "dataset" or bool(fe.stat_frozen):
            return
        ds = datamodule.splits["train"]
        if len(ds) > max_clips:
            ds = Subset(ds, torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:max_clips].tolist())
        device = fe.stat_mean.device
        fe.stat_count.zero_()
        was_training = fe.training
        fe.train()
        for batch in DataLoader(ds, batch_size=batch_size, collate_fn=collate_samples):
            x = batch["inputs"][modality].to(device)
            lengths = batch["lengths"].get(modality)
            fe(x, None if lengths is None else lengths.to(device))
        fe.train(was_training)
        fe.stat_frozen.fill_(True)
        log.info("voice log-mel statistics from %d training clips (%d frames): mean %.1f dB, std %.1f dB",
                 len(ds), int(fe.stat_count), float(fe.stat_mean.mean()), float(fe.stat_var.mean().sqrt()))

    def encode(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        """Pooled ``[B, out_dim]`` and the frames ``[B, T', token_dim]`` (after the LSTM) as tokens."""
        h, flen = self.features(wave, lengths)
        mask = length_mask(flen, h.shape[1])
        pooled = masked_mean(h, mask) if self.pool is None else self.pool(h, mask)
        return EncoderOutput(self.dropout(pooled), h, mask)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode(wave, lengths).pooled
