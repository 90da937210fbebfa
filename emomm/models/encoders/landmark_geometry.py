"""`LandmarkEncoder`: face-mesh geometry -> an embedding, for one face or a clip of faces.

Input: normalised face-mesh points (:func:`emomm.faces.landmark_norm.normalize_landmarks`),
either ``[B, P, 3]`` (one face per sample) or ``[B, T, P, 3]`` with ``lengths [B]`` (a clip: the
usable frames first, the rest padding). Each face goes through a small MLP on its flattened
points (``[P * 3] -> [hidden_size]``); a clip's faces then go through the same temporal model as
:class:`~emomm.models.encoders.video_temporal.VideoEncoder` (``temporal=transformer|lstm``).
A single face is a one-frame clip, so one model serves photos and videos alike;
``temporal=none`` drops the temporal model (single faces only).
"""
from __future__ import annotations

import torch
from torch import nn

from emomm.models.encoders.video_temporal import TemporalModel, check_temporal
from emomm.models.features import EncoderOutput


class LandmarkEncoder(TemporalModel, nn.Module):
    """Args:
        num_points: P, the points per face (468: MediaPipe's mesh without irises).
        hidden_size: width of the face MLP and of the temporal model (LSTM: per direction).
        depth: hidden layers of the face MLP.
        dropout: in the face MLP and the temporal model.
        point_dropout: training only: this share of the points of each face zeroed (a robustness
            aid against missing or jittery points; 0 = off).
        temporal: ``transformer`` | ``lstm`` | ``none``; num_layers, num_heads, ff_mult,
            positional, max_len, bidirectional, pool: of the temporal model (as VideoEncoder's).
    """

    def __init__(self, num_points: int = 468, hidden_size: int = 256, depth: int = 2, dropout: float = 0.1,
                 point_dropout: float = 0.0, temporal: str = "transformer", num_layers: int = 1,
                 num_heads: int = 4, ff_mult: int = 2, positional: str = "sinusoidal", max_len: int = 512,
                 bidirectional: bool = True, pool: str = "last") -> None:
        super().__init__()
        self.num_points, self.point_dropout = int(num_points), float(point_dropout)
        layers: list[nn.Module] = [nn.Flatten(-2)]
        d = self.num_points * 3
        for _ in range(max(1, int(depth))):
            layers += [nn.Linear(d, hidden_size), nn.GELU(), nn.Dropout(dropout)]
            d = hidden_size
        self.face_mlp = nn.Sequential(*layers, nn.LayerNorm(hidden_size))
        if temporal == "none":
            self.temporal, self.out_dim = "none", int(hidden_size)
        else:
            check_temporal(temporal, pool, "landmarks")
            self.build_temporal(hidden_size, temporal, hidden_size, num_layers, dropout, bidirectional, pool,
                                num_heads, ff_mult, positional, max_len)

    def encode_faces(self, points: torch.Tensor) -> torch.Tensor:
        """``[N, P, 3]`` -> ``[N, hidden_size]``."""
        if self.training and self.point_dropout > 0:
            keep = torch.rand(points.shape[:-1], device=points.device) >= self.point_dropout
            points = points * keep.unsqueeze(-1).to(points.dtype)
        return self.face_mlp(points)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode(x, lengths).pooled

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> EncoderOutput:
        """Embedding ``[B, out_dim]`` and per-frame tokens ``[B, T, out_dim]`` (one token for a
        single face; padded frames masked)."""
        if x.dim() == 3:
            x, lengths = x.unsqueeze(1), None
        if x.dim() != 4 or tuple(x.shape[-2:]) != (self.num_points, 3):
            raise ValueError(f"LandmarkEncoder takes [B, {self.num_points}, 3] faces or [B, T, {self.num_points}, 3] "
                             f"clips, got {tuple(x.shape)}; set landmarks.points to the mesh's point count")
        b, t = x.shape[:2]
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.long, device=x.device)
        lengths = lengths.to(x.device).clamp(min=1, max=t)
        valid = torch.arange(t, device=x.device)[None, :] < lengths[:, None]        # [B, T]
        if self.temporal == "none":
            if t != 1:
                raise ValueError(f"model.encoders.landmarks.temporal=none takes single faces, got clips of {t} "
                                 "frames; use temporal=transformer or lstm")
            feats = self.encode_faces(x[:, 0])
            return EncoderOutput(feats, feats.unsqueeze(1), valid)
        # every frame is encoded (padding is zeros, masked below): a fixed graph that exports to ONNX
        feats = self.encode_faces(x.flatten(0, 1)).view(b, t, -1) * valid.unsqueeze(-1).to(x.dtype)
        pooled, tokens = self.pool_frames(feats, lengths, valid)
        return EncoderOutput(pooled, tokens, valid)
