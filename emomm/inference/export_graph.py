"""The export graph: a checkpoint's network as something ONNX / TorchScript can trace.

:class:`ExportNet` wraps ``EmotionModule.forward`` in eval mode (test-time views included)
with one tensor input per modality (plus ``present_<m>`` masks for multimodal models); the
encoder adapters here compute what the encoders compute without the operations exporters
cannot trace. :mod:`emomm.inference.onnx_export` writes and checks the files; see its docstring
for the graph's inputs and outputs.
"""
from __future__ import annotations

import copy
import logging
import math
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn

from emomm.models.calibration import apply_temperatures
from emomm.models.encoders.face_timm import FaceEncoder
from emomm.models.encoders.landmark_geometry import LandmarkEncoder
from emomm.models.encoders.video_temporal import VideoEncoder
from emomm.models.encoders.voice_cnn_lstm import VoiceEncoder
from emomm.models.features import EncoderOutput
from emomm.models.module import EmotionModule
from emomm.models.eval_views import tta_views
from emomm.utils.zoo_files import is_entry


log = logging.getLogger(__name__)
FORMATS = ("onnx", "torchscript")
DEFAULT_OPSET = 18


class ExportError(ValueError):
    """The checkpoint holds something this exporter cannot turn into a graph."""


# -- export-friendly encoder adapters ---------------------------------------------------------
# They compute what the encoders compute, without the operations exporters cannot trace:
# boolean-mask indexing with data-dependent sizes (video), complex STFTs and packed
# sequences (voice). They share the encoders' parameters (no copies of weights).
class VideoAdapter(nn.Module):
    """:class:`~emomm.models.encoders.video_temporal.VideoEncoder` without boolean indexing: every
    frame, padded ones included, goes through the frame encoder (in eval mode each frame's
    features depend on that frame alone), and padded frames' features are zeroed, which is
    what the encoder's scatter into a zero tensor gives."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.enc = encoder
        self.out_dim = encoder.out_dim
        self.token_dim = getattr(encoder, "token_dim", encoder.out_dim)
        # The LSTM packs sequences by length, which the exporter cannot trace: LSTM models are
        # exported for full-length clips (what the clip pipeline gives: `num_frames` frames).
        self.takes_lengths = encoder.temporal != "lstm"

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode(x, lengths).pooled

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None):
        b, t = x.shape[0], x.shape[1]
        feats = self.frames(x.flatten(0, 1)).reshape(b, t, -1)                       # [B, T, D]
        if self.enc.temporal == "lstm":
            rnn = self.enc.rnn
            out, (h, _) = rnn(feats)
            if self.enc.pool == "last":
                dirs = 2 if rnn.bidirectional else 1
                pooled = h.view(rnn.num_layers, dirs, b, -1)[-1].transpose(0, 1).reshape(b, -1)
            else:
                pooled = out.mean(dim=1)
            return EncoderOutput(pooled, out, torch.ones(b, t, dtype=torch.bool, device=x.device))
        if lengths is None:
            lengths = torch.full((b,), t, dtype=torch.long, device=x.device)
        lengths = lengths.clamp(min=1, max=t)
        valid = torch.arange(t, device=x.device)[None, :] < lengths[:, None]       # [B, T]
        feats = feats * valid.unsqueeze(-1).to(feats.dtype)
        pooled, tokens = self.enc._transformer(feats, valid)
        return EncoderOutput(pooled, tokens, valid)

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, ...]`` frames -> ``[N, D]`` per-frame features."""
        return self.enc.frame_encoder(x)


class LandmarkAdapter(VideoAdapter):
    """:class:`~emomm.models.encoders.landmark_geometry.LandmarkEncoder` as a clip model: a face
    ``[B, P, 3]`` is a one-frame clip ``[B, 1, P, 3]``; the LSTM, as for video, takes full-length
    clips only; a photo model (``clips`` False) takes no lengths at all."""

    def __init__(self, encoder: nn.Module, clips: bool) -> None:
        super().__init__(encoder)
        self.takes_lengths = self.takes_lengths and clips

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc.encode_faces(x)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor | None = None):
        if x.dim() == 3:
            x, lengths = x.unsqueeze(1), None
        return super().encode(x, lengths)


class LogMelDFT(nn.Module):
    """:class:`~emomm.models.encoders.voice_cnn_lstm.LogMelFrontend` for full-length waveforms
    ``[B, N]``, with the power spectrum as two real convolutions (cos and sin kernels times
    the window) instead of ``torch.stft``. Same frames (centre, zero padding), same mel
    filters, same dB floor and normalisation."""

    def __init__(self, frontend: nn.Module) -> None:
        super().__init__()
        self.fe = frontend
        spec = frontend.mel.spectrogram
        n_fft, win = int(spec.n_fft), int(spec.win_length)
        window = spec.window.detach().double()
        left = (n_fft - win) // 2   # torch.stft centres a shorter window inside n_fft
        w = torch.zeros(n_fft, dtype=torch.float64)
        w[left:left + win] = window
        k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
        n = torch.arange(n_fft, dtype=torch.float64)[None, :]
        ang = 2 * math.pi * k * n / n_fft
        kernels = torch.cat([torch.cos(ang) * w, -torch.sin(ang) * w])          # [2F, n_fft]
        self.register_buffer("kernels", kernels.float().unsqueeze(1), persistent=False)
        self.register_buffer("fb", frontend.mel.mel_scale.fb.detach().float(), persistent=False)
        self.n_fft, self.hop, self.n_freq = n_fft, int(spec.hop_length), n_fft // 2 + 1
        db = frontend.to_db
        self.multiplier, self.amin = float(db.multiplier), float(db.amin)
        self.db_offset = float(db.multiplier) * math.log10(max(float(db.amin), float(db.ref_value)))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = wave.shape[0]
        x = F.pad(wave.float().unsqueeze(1), (self.n_fft // 2, self.n_fft // 2))   # [B, 1, N + n_fft]
        z = F.conv1d(x, self.kernels, stride=self.hop)                            # [B, 2F, frames]
        re, im = z[:, : self.n_freq], z[:, self.n_freq:]
        power = re * re + im * im                                                  # [B, F, frames]
        mel = torch.matmul(power.transpose(1, 2), self.fb).transpose(1, 2)        # [B, M, frames]
        db = self.multiplier * torch.log10(torch.clamp(mel, min=self.amin)) - self.db_offset
        frames = db.shape[-1]
        flen = torch.full((b,), frames, dtype=torch.long, device=wave.device)
        if self.fe.top_db is not None:
            peak = db.amax(dim=(1, 2), keepdim=True)
            db = torch.maximum(db, peak - float(self.fe.top_db))
        fmask = torch.ones_like(db[:, :1, :], dtype=torch.bool)
        return self.fe._normalize(db, fmask, flen), flen


class VoiceAdapter(nn.Module):
    """:class:`~emomm.models.encoders.voice_cnn_lstm.VoiceEncoder` (eval) for equal-length waveforms:
    the DFT front end, the same CNN blocks, projection, LSTM (unpacked: nothing is padded)
    and pooling."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.enc = encoder
        self.frontend = LogMelDFT(encoder.frontend)
        self.out_dim = encoder.out_dim
        self.token_dim = getattr(encoder, "token_dim", encoder.out_dim)
        self.takes_lengths = False   # equal-length waveforms only (see the module docstring)
        #: the shortest waveform (samples) the graph takes: one frame left after the time pooling
        pools = math.prod(int(t) for t in getattr(encoder, "time_pools", [1]))
        self.min_length = max(self.frontend.n_fft, self.frontend.hop * pools)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode(wave, lengths).pooled

    def encode(self, wave: torch.Tensor, lengths: torch.Tensor | None = None):
        enc = self.enc
        if wave.dim() == 3:
            wave = wave[:, 0]
        x, _ = self.frontend(wave)
        x = x.unsqueeze(1)
        for block in enc.blocks:
            x = block(x)
        b, c, m, frames = x.shape
        h = x.permute(0, 3, 1, 2).reshape(b, frames, c * m)
        if enc.proj is not None:
            h = enc.proj(h)
        if enc.lstm is not None:
            h, _ = enc.lstm(h)
        pooled = h.mean(dim=1) if enc.pool is None else enc.pool(h, None)
        mask = torch.ones(b, frames, dtype=torch.bool, device=wave.device)
        return EncoderOutput(enc.dropout(pooled), h, mask)


class ExportAttention(nn.Module):
    """:class:`torch.nn.MultiheadAttention` (eval) with every reshape written in the traced
    tensors' own sizes. The TorchScript exporter folds the key length of PyTorch's packed
    key/value projection (``key is value``, as in cross-attention) into a constant, so a graph
    traced with 26 voice frames fails on any other length (``Reshape {38,2,128} -> {26,8,32}``).
    Shares the wrapped module's parameters. ``[B, Tq, E], [B, Tk, E] -> ([B, Tq, E], None)``."""

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ExportError("nn.MultiheadAttention with add_bias_kv or add_zero_attn is not exportable here")
        self.mha = mha
        self.batch_first = mha.batch_first
        self.heads = mha.num_heads

    def _weights(self) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor | None, ...]]:
        m = self.mha
        if m._qkv_same_embed_dim:
            w = tuple(m.in_proj_weight.chunk(3))
        else:
            w = (m.q_proj_weight, m.k_proj_weight, m.v_proj_weight)
        b = tuple(m.in_proj_bias.chunk(3)) if m.in_proj_bias is not None else (None, None, None)
        return w, b

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, E] -> [B, H, T, E/H]``."""
        return x.reshape(x.shape[0], x.shape[1], self.heads, -1).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = False,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, None]:
        if not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        (wq, wk, wv), (bq, bk, bv) = self._weights()
        q = self._heads(F.linear(query, wq, bq))
        k = self._heads(F.linear(key, wk, bk))
        v = self._heads(F.linear(value, wv, bv))
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])     # [B, H, Tq, Tk]
        for mask in (attn_mask, None if key_padding_mask is None else key_padding_mask[:, None, None, :]):
            if mask is None:
                continue
            if mask.dim() == 3:     # [B*H, Tq, Tk]
                mask = mask.reshape(scores.shape[0], self.heads, mask.shape[-2], mask.shape[-1])
            if mask.dtype == torch.bool:
                scores = scores.masked_fill(mask, float("-inf"))
            else:
                scores = scores + mask.to(scores.dtype)
        out = torch.matmul(scores.softmax(-1), v).transpose(1, 2)                    # [B, Tq, H, E/H]
        out = self.mha.out_proj(out.reshape(out.shape[0], out.shape[1], -1))
        return (out if self.batch_first else out.transpose(0, 1)), None


def shape_agnostic(module: nn.Module) -> nn.Module:
    """``module`` with each :class:`torch.nn.MultiheadAttention` inside it (not under a
    :class:`torch.nn.TransformerEncoder`, which reads the attention's own attributes) replaced
    by :class:`ExportAttention`. Containers on the way are shallow copies: the original module
    is left as it is and the parameters are shared."""
    if isinstance(module, nn.MultiheadAttention):
        return ExportAttention(module)
    if isinstance(module, (nn.TransformerEncoder, nn.TransformerEncoderLayer)):
        return module
    children = dict(module.named_children())
    swapped = {n: shape_agnostic(c) for n, c in children.items()}
    if all(swapped[n] is c for n, c in children.items()):
        return module
    new = copy.copy(module)
    new._modules = {**module._modules, **swapped}   # a new table: the original keeps its children
    return new


def adapt_encoder(modality: str, encoder: nn.Module, preprocessing: dict[str, Any] | None = None) -> nn.Module:
    """``encoder`` as the exporters can trace it (``preprocessing``: the modality's, from the checkpoint)."""
    if isinstance(encoder, FaceEncoder):
        return encoder
    if isinstance(encoder, VideoEncoder):
        return VideoAdapter(encoder)
    if isinstance(encoder, LandmarkEncoder) and encoder.temporal != "none":
        return LandmarkAdapter(encoder, clips=bool((preprocessing or {}).get("num_frames")))
    if isinstance(encoder, VoiceEncoder):
        return VoiceAdapter(encoder)
    if modality == "text" or type(encoder).__name__.lower().startswith("text"):
        raise ExportError(f"modality {modality!r} ({type(encoder).__name__}) tokenizes raw strings inside "
                          "the model and cannot be exported; run it with backend=torch")
    return encoder  # anything else (e.g. speech SSL) is traced as it is; export errors say why


# -- the exported network ---------------------------------------------------------------------
class ExportNet(nn.Module):
    """Positional tensors in ``input_names`` order -> ``(logits, *modality_logits)``.

    ``EmotionModule.forward`` in eval mode: the module's test-time views (mirror, shifts)
    are averaged in the graph, so an exported model predicts what the checkpoint does.
    """

    def __init__(self, module: nn.Module, tta: bool = True) -> None:
        super().__init__()
        net = copy.copy(module.net)      # shallow: the encoders' weights are shared, not copied
        net._modules = dict(net._modules)   # its own submodule table: the module keeps its encoders
        prep = dict(module.hparams.get("preprocessing") or {})
        net.encoders = nn.ModuleDict({m: adapt_encoder(m, e, prep.get(m)) for m, e in module.net.encoders.items()})
        if getattr(net, "fusion", None) is not None:
            net.fusion = shape_agnostic(net.fusion)
        self.net = net.eval()
        self.modalities = sorted(module.net.encoders)
        hp = module.hparams
        self.hflip = list(hp.get("tta_hflip") or []) if tta else []
        self.shift = dict(hp.get("tta_shift") or {}) if tta else {}
        # A model trained on random crops takes whole images and crops them (not a TTA option).
        self.crop = dict(getattr(module, "eval_crop", {}) or {})
        self.tencrop = list(hp.get("tta_tencrop") or []) if tta else []
        self.multi = len(self.modalities) > 1
        self.per_modality = callable(getattr(module.net, "forward_all", None))
        names = list(self.modalities)
        names += [f"{m}_lengths" for m in self.modalities if getattr(net.encoders[m], "takes_lengths", False)]
        #: modalities whose inputs must be unpadded, equal-length sequences
        self.full_length = [m for m in self.modalities if m in ("voice", "video", "landmarks")
                            and not getattr(net.encoders[m], "takes_lengths", False)]
        if self.multi:
            names += [f"present_{m}" for m in self.modalities]
        self.input_names = names
        self.output_names = ["logits"] + ([f"logits_{m}" for m in self.modalities] if self.per_modality else [])
        # a calibrated checkpoint's temperatures (emomm.models.calibration), divided in the graph
        self.temperatures = getattr(module, "temperatures", None)

    def split_args(self, args: Sequence[torch.Tensor]):
        named = dict(zip(self.input_names, args))
        inputs = {m: named[m] for m in self.modalities}
        lengths = {m: named[f"{m}_lengths"] for m in self.modalities if f"{m}_lengths" in named}
        present = {m: named[f"present_{m}"] for m in self.modalities if f"present_{m}" in named}
        return inputs, present, lengths

    def forward(self, *args: torch.Tensor):
        inputs, present, lengths = self.split_args(args)
        outs = None
        views = tta_views(inputs, self.hflip, self.shift, self.crop, self.tencrop)
        for view in views:
            if self.per_modality:
                o = self.net.forward_all(view, present or None, lengths or None)
                cur = [o.logits] + [o.modality_logits[m] for m in self.modalities]
            else:
                cur = [self.net(view, present or None, lengths or None)]
            outs = cur if outs is None else [a + b for a, b in zip(outs, cur)]
        outs = [o / len(views) for o in outs]
        if self.temperatures:
            names = ["fused"] + [f"modality/{m}" for m in self.modalities][:len(outs) - 1]
            scaled = apply_temperatures(dict(zip(names, outs)), self.temperatures)
            outs = [scaled[n] for n in names]
        return outs[0] if len(outs) == 1 else tuple(outs)


def example_inputs(module: nn.Module, batch: int = 2) -> dict[str, torch.Tensor]:
    """Example tensors per modality from the checkpoint's preprocessing (shapes only)."""
    prep = dict(module.hparams.get("preprocessing") or {})
    out: dict[str, torch.Tensor] = {}
    g = torch.Generator().manual_seed(0)
    for m in sorted(module.net.encoders):
        p = dict(prep.get(m) or {})
        if m == "face" or "image_size" in p and m != "video":
            s, c = int(p.get("image_size", 64)), int(p.get("in_chans", 3))
            out[m] = torch.randn(batch, c, s, s, generator=g)
        elif m == "video":
            s, c, t = int(p.get("image_size", 64)), int(p.get("in_chans", 3)), int(p.get("num_frames", 8))
            out[m] = torch.randn(batch, t, c, s, s, generator=g)
        elif m == "landmarks":   # a face [B, P, 3], or a clip [B, T, P, 3] for clip models
            clip = (int(p["num_frames"]),) if p.get("num_frames") else ()
            out[m] = torch.randn(batch, *clip, int(p.get("points", 468)), 3, generator=g)
        elif m == "voice":
            sr, dur = int(p.get("sample_rate", 16000)), p.get("duration") or 1.0
            out[m] = 0.1 * torch.randn(batch, int(round(float(dur) * sr)), generator=g)
        else:
            raise ExportError(f"modality {m!r} cannot be exported (tensor modalities: face, video, voice, landmarks); "
                              "run it with backend=torch")
    return out


def graph_args(wrapper: ExportNet, inputs: dict[str, Any], present: dict[str, Any] | None = None,
               lengths: dict[str, Any] | None = None) -> tuple[torch.Tensor, ...]:
    """The positional arguments of ``wrapper`` for a batch of model inputs."""
    present, lengths = present or {}, lengths or {}
    args = []
    for name in wrapper.input_names:
        if name.startswith("present_"):
            m = name[len("present_"):]
            b = len(inputs[m])
            args.append(torch.as_tensor(present.get(m, torch.ones(b, dtype=torch.bool)), dtype=torch.bool))
        elif name.endswith("_lengths"):
            m = name[: -len("_lengths")]
            x = inputs[m]
            full = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
            args.append(torch.as_tensor(lengths.get(m, full), dtype=torch.long))
        else:
            args.append(torch.as_tensor(inputs[name], dtype=torch.float32))
    return tuple(args)


def dynamic_axes(wrapper: ExportNet) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {}
    for name in wrapper.input_names:
        axes[name] = {0: "batch"}
        if name == "voice":   # video graphs bake T (attention reshapes): clips have num_frames
            axes[name][1] = f"{name}_time"
    for name in wrapper.output_names:
        axes[name] = {0: "batch"}
    return axes


# -- export -------------------------------------------------------------------------------------
def load_module(ckpt_path: str | Path):
    path = Path(ckpt_path).expanduser()
    if not (path.is_file() or is_entry(path)):  # a .ckpt, or a model-zoo entry's folder
        raise FileNotFoundError(f"ckpt_path={path} does not exist; give a .ckpt written by emomm.train "
                                "(e.g. outputs/train/runs/<run>/checkpoints/best.ckpt)")
    return EmotionModule.load_from_checkpoint(path, map_location="cpu").eval()


def _plain(x: Any) -> Any:
    if isinstance(x, (DictConfig, ListConfig)):
        return OmegaConf.to_container(x, resolve=True)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


