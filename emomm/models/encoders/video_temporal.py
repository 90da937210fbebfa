"""`VideoEncoder`: a per-frame face encoder followed by a temporal model.

Input ``[B, T, C, H, W]`` face-crop sequences plus ``lengths [B]`` (usable frames per clip;
the rest is padding). Each usable frame goes through a :class:`FaceEncoder` (any timm
backbone; padded frames are skipped, not encoded), then a temporal model:

* ``lstm``: a (bi)LSTM over the packed sequence (padding never enters it); the clip
  embedding is the final hidden state of each direction (``pool=last``) or the mean of
  the outputs over the usable frames (``pool=mean``);
* ``transformer``: a CLS token and sinusoidal (or learned) positional encodings, a
  ``TransformerEncoder`` with a key-padding mask; the clip embedding is the CLS output.

``init_from`` loads the face encoder's weights from a trained emomm face checkpoint
(``.ckpt`` of a ``modality=face`` run with the same backbone and channels); ``freeze``
then keeps them fixed (the frame encoder also stays in eval mode, so its batch-norm
statistics do not move).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from emomm.models.encoders.face_timm import FaceEncoder
from emomm.models.features import EncoderOutput
from emomm.utils.targets import load_checked_checkpoint

log = logging.getLogger(__name__)

TEMPORAL = ("lstm", "transformer")


class SinusoidalPositions(nn.Module):
    def __init__(self, dim: int, max_len: int = 1024) -> None:
        super().__init__()
        pos = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, dim, 2) * (-math.log(10000.0) / dim))
        pe = torch.zeros(max_len, dim)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)[:, : dim // 2]
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pe.shape[0]:
            raise ValueError(f"sequence of {x.shape[1]} steps exceeds max_len={self.pe.shape[0]}")
        return x + self.pe[: x.shape[1]].to(x.dtype)


def load_face_encoder_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The face encoder's weights (``FaceEncoder`` keys) and config from an emomm checkpoint."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"model.encoders.video.init_from={path} does not exist; give the .ckpt "
                                "of a trained modality=face run")
    ckpt = load_checked_checkpoint(path)  # its hyper-parameters are a config from a file too
    state = ckpt.get("state_dict", ckpt)
    prefixes = ("net.encoders.face.", "_orig_mod.net.encoders.face.", "net._orig_mod.encoders.face.")
    out = {}
    for k, v in state.items():
        for p in prefixes:
            if k.startswith(p):
                out[k[len(p):]] = v
    if not out:
        raise ValueError(f"{path}: no face encoder weights (keys net.encoders.face.*) in this checkpoint; "
                         "init_from needs a checkpoint trained with modality=face")
    cfg = ((ckpt.get("hyper_parameters") or {}).get("encoders") or {}).get("face") or {}
    return out, dict(cfg)


def check_temporal(temporal: str, pool: str, modality: str) -> None:
    """A clear error for an unknown ``temporal`` or ``pool`` of ``model.encoders.<modality>``."""
    if temporal not in TEMPORAL:
        raise ValueError(f"model.encoders.{modality}.temporal={temporal!r} is not one of {list(TEMPORAL)}")
    if pool not in ("last", "mean"):
        raise ValueError(f"model.encoders.{modality}.pool={pool!r} must be last or mean")


class TemporalModel:
    """The temporal model over per-frame features ``[B, T, d_frame]`` that clip encoders share
    (a mixin of an ``nn.Module``: its layers are the module's own, so checkpoints keep their
    keys): :meth:`build_temporal` makes the layers, :meth:`pool_frames` runs them."""

    def build_temporal(self, d_frame: int, temporal: str, hidden_size: int, num_layers: int, dropout: float,
                       bidirectional: bool, pool: str, num_heads: int, ff_mult: int, positional: str,
                       max_len: int) -> None:
        self.temporal, self.pool = temporal, pool
        if temporal == "lstm":
            self.rnn = nn.LSTM(d_frame, hidden_size, num_layers=num_layers, batch_first=True,
                               bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
            self.out_dim = hidden_size * (2 if bidirectional else 1)
        else:
            if hidden_size % num_heads:
                raise ValueError(f"hidden_size={hidden_size} must be divisible by num_heads={num_heads}")
            self.proj = nn.Linear(d_frame, hidden_size)
            self.cls = nn.Parameter(torch.zeros(1, 1, hidden_size))
            nn.init.normal_(self.cls, std=0.02)
            self.max_len = int(max_len)
            if positional == "sinusoidal":
                self.pos_enc = SinusoidalPositions(hidden_size, max_len + 1)
            elif positional == "learned":
                self.pos_emb = nn.Parameter(torch.zeros(1, max_len + 1, hidden_size))
                nn.init.normal_(self.pos_emb, std=0.02)
            else:
                raise ValueError(f"positional={positional!r} must be sinusoidal or learned")
            self.positional = positional
            layer = nn.TransformerEncoderLayer(hidden_size, num_heads, hidden_size * ff_mult, dropout,
                                               activation="gelu", batch_first=True, norm_first=True)
            self.transformer = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(hidden_size)
            self.out_dim = hidden_size

    def pool_frames(self, feats: torch.Tensor, lengths: torch.Tensor, valid: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame features ``[B, T, d_frame]`` (zeros on padding), ``lengths [B]``, ``valid``
        Bool ``[B, T]`` -> ``(clip embedding [B, out_dim], tokens [B, T, token_dim])``."""
        if self.temporal == "lstm":
            return self._lstm(feats, lengths, valid)
        return self._transformer(feats, valid)

    def _lstm(self, feats, lengths, valid):
        packed = nn.utils.rnn.pack_padded_sequence(feats, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h, _) = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=feats.shape[1])
        if self.pool == "last":
            dirs = 2 if self.rnn.bidirectional else 1
            last = h.view(self.rnn.num_layers, dirs, feats.shape[0], -1)[-1].transpose(0, 1).reshape(feats.shape[0], -1)
            return last, out
        m = valid.unsqueeze(-1).to(out.dtype)
        return (out * m).sum(1) / m.sum(1).clamp(min=1), out

    def _transformer(self, feats, valid):
        z = self.proj(feats)
        z = torch.cat([self.cls.expand(z.shape[0], -1, -1).to(z.dtype), z], dim=1)
        if self.positional == "learned":
            if z.shape[1] > self.pos_emb.shape[1]:
                raise ValueError(f"{z.shape[1] - 1} frames exceed max_len={self.max_len}")
            z = z + self.pos_emb[:, : z.shape[1]].to(z.dtype)
        else:
            z = self.pos_enc(z)
        pad = torch.cat([torch.zeros_like(valid[:, :1]), ~valid], dim=1)         # True = ignore
        z = self.norm(self.transformer(z, src_key_padding_mask=pad))
        return z[:, 0], z[:, 1:]


class VideoEncoder(TemporalModel, nn.Module):
    """Args:
        backbone / in_chans / pretrained / pretrained_path / frame_kwargs: the per-frame
            :class:`FaceEncoder` (``frame_kwargs`` go to timm, e.g. ``drop_rate``).
        init_from: an emomm ``.ckpt`` whose face encoder initialises the frame encoder.
        freeze: keep the frame encoder fixed (weights and batch-norm statistics).
        temporal: ``lstm`` or ``transformer``.
        hidden_size: LSTM hidden size per direction / transformer width (frame features
            are projected to it).
        num_layers, dropout: of the temporal model.
        bidirectional, pool: LSTM only (``last`` or ``mean``).
        num_heads, ff_mult, positional (``sinusoidal`` | ``learned``), max_len: transformer only.
        frame_chunk: frames per frame-encoder call (bounds activation memory); 0 = all.
    """

    def __init__(self, backbone: str = "resnet18", in_chans: int = 3, pretrained: bool = False,
                 pretrained_path: str | None = None, frame_kwargs: dict[str, Any] | None = None,
                 init_from: str | None = None, freeze: bool = False, temporal: str = "transformer",
                 hidden_size: int = 256, num_layers: int = 2, dropout: float = 0.1,
                 bidirectional: bool = True, pool: str = "last", num_heads: int = 4, ff_mult: int = 2,
                 positional: str = "sinusoidal", max_len: int = 512, frame_chunk: int = 0) -> None:
        super().__init__()
        check_temporal(temporal, pool, "video")
        self.frame_encoder = FaceEncoder(backbone, in_chans=in_chans, pretrained=pretrained,
                                         pretrained_path=pretrained_path, **(frame_kwargs or {}))
        if init_from:
            self._init_from(init_from, backbone, in_chans)
        self.freeze = bool(freeze)
        if self.freeze:
            self.frame_encoder.requires_grad_(False)
        self.frame_chunk = int(frame_chunk)
        self.build_temporal(self.frame_encoder.out_dim, temporal, hidden_size, num_layers, dropout,
                            bidirectional, pool, num_heads, ff_mult, positional, max_len)

    def _init_from(self, path: str, backbone: str, in_chans: int) -> None:
        state, cfg = load_face_encoder_state(path)
        for key, mine in (("backbone", backbone), ("in_chans", in_chans)):
            theirs = cfg.get(key)
            if theirs is not None and theirs != mine:
                raise ValueError(f"init_from={path}: its face encoder has {key}={theirs!r} but the video "
                                 f"encoder asks for {key}={mine!r}; set model.encoders.video.{key}={theirs!r}")
        missing, unexpected = self.frame_encoder.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"init_from={path}: weights do not fit the frame encoder (missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]})")
        log.info("video frame encoder initialised from the face encoder of %s", path)

    def train(self, mode: bool = True) -> "VideoEncoder":
        super().train(mode)
        if self.freeze:
            self.frame_encoder.eval()
        return self

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` -> ``[N, d_frame]``, in chunks of ``frame_chunk``."""
        chunk = self.frame_chunk or len(frames)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            return torch.cat([self.frame_encoder(frames[i: i + chunk]) for i in range(0, len(frames), chunk)])

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode(x, lengths).pooled

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        """Clip embedding ``[B, out_dim]`` and per-frame tokens ``[B, T, token_dim]`` (the
        temporal model's outputs; padded frames masked)."""
        if x.dim() != 5:
            raise ValueError(f"VideoEncoder takes [B, T, C, H, W], got {tuple(x.shape)}")
        b, t = x.shape[:2]
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.long, device=x.device)
        lengths = lengths.to(x.device).clamp(min=1, max=t)
        valid = torch.arange(t, device=x.device)[None, :] < lengths[:, None]       # [B, T]
        feats_valid = self.encode_frames(x[valid])                                  # [N, D]
        feats = feats_valid.new_zeros(b, t, feats_valid.shape[-1])
        feats[valid] = feats_valid
        pooled, tokens = self.pool_frames(feats, lengths, valid)
        return EncoderOutput(pooled, tokens, valid)
