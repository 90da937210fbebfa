"""Export a trained checkpoint for small devices: ``python -m emomm.export ckpt_path=...``.

``format=onnx`` writes ``model.onnx`` (fp32; ``quantize=int8`` adds ``model.int8.onnx``)
and ``format=torchscript`` writes ``model.pt`` (``torch.jit.trace``), each with
``model.json``: label names, modalities, the preprocessing stored in the checkpoint, the
graph's input and output names and shapes, the opset. :class:`emomm.inference.onnx_runner.OnnxRunner`
runs an exported ONNX model without PyTorch.

What the graph computes is exactly ``EmotionModule.forward`` in eval mode (test-time views
included), for the tensor modalities:

* ``face``: ``[B, C, S, S]`` float crops, normalised as the checkpoint's preprocessing says;
* ``video``: ``[B, T, C, S, S]`` with ``T = num_frames`` of the preprocessing, plus
  ``video_lengths`` ``int64 [B]`` (usable frames; transformer models - LSTM models take full clips);
* ``voice``: ``[B, N]`` waveforms of equal length (the clip pipeline pads every clip to
  ``voice.duration``; without a duration, export one utterance per call). The log-mel
  spectrogram becomes a fixed DFT convolution, because ONNX has no complex STFT that
  PyTorch's exporter can target; its parity with the PyTorch model is tested;
* multimodal models take ``present_<modality>`` ``bool [B]`` masks as well.

Raw-text models (``text``) tokenize strings inside the network and cannot be exported:
serve them with the PyTorch backend.

Outputs: ``logits [B, K]`` (the fused prediction) and, when the network exposes per-modality
heads (``EmotionClassifier.forward_all``), ``logits_<modality>`` for each modality.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Sequence

import hydra
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from emomm.utils.runtime import CONFIG_DIR, offline_defaults, resolve_ckpt, to_plain

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
    """:class:`~emomm.models.encoders.video.VideoEncoder` without boolean indexing: every
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
        from emomm.models.features import EncoderOutput

        b, t = x.shape[0], x.shape[1]
        feats = self.enc.frame_encoder(x.flatten(0, 1)).reshape(b, t, -1)           # [B, T, D]
        if not self.takes_lengths:
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


class LogMelDFT(nn.Module):
    """:class:`~emomm.models.encoders.voice.LogMelFrontend` for full-length waveforms
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
    """:class:`~emomm.models.encoders.voice.VoiceEncoder` (eval) for equal-length waveforms:
    the DFT front end, the same CNN blocks, projection, LSTM (unpacked: nothing is padded)
    and pooling."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.enc = encoder
        self.frontend = LogMelDFT(encoder.frontend)
        self.out_dim = encoder.out_dim
        self.token_dim = getattr(encoder, "token_dim", encoder.out_dim)
        self.takes_lengths = False   # equal-length waveforms only (see the module docstring)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode(wave, lengths).pooled

    def encode(self, wave: torch.Tensor, lengths: torch.Tensor | None = None):
        from emomm.models.features import EncoderOutput

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


def adapt_encoder(modality: str, encoder: nn.Module) -> nn.Module:
    from emomm.models.encoders.face import FaceEncoder
    from emomm.models.encoders.video import VideoEncoder
    from emomm.models.encoders.voice import VoiceEncoder

    if isinstance(encoder, FaceEncoder):
        return encoder
    if isinstance(encoder, VideoEncoder):
        return VideoAdapter(encoder)
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
        net.encoders = nn.ModuleDict({m: adapt_encoder(m, e) for m, e in module.net.encoders.items()})
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
        self.full_length = [m for m in self.modalities if m in ("voice", "video")
                            and not getattr(net.encoders[m], "takes_lengths", False)]
        if self.multi:
            names += [f"present_{m}" for m in self.modalities]
        self.input_names = names
        self.output_names = ["logits"] + ([f"logits_{m}" for m in self.modalities] if self.per_modality else [])

    def split_args(self, args: Sequence[torch.Tensor]):
        named = dict(zip(self.input_names, args))
        inputs = {m: named[m] for m in self.modalities}
        lengths = {m: named[f"{m}_lengths"] for m in self.modalities if f"{m}_lengths" in named}
        present = {m: named[f"present_{m}"] for m in self.modalities if f"present_{m}" in named}
        return inputs, present, lengths

    def forward(self, *args: torch.Tensor):
        from emomm.models.tta import tta_views

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
        elif m == "voice":
            sr, dur = int(p.get("sample_rate", 16000)), p.get("duration") or 1.0
            out[m] = 0.1 * torch.randn(batch, int(round(float(dur) * sr)), generator=g)
        else:
            raise ExportError(f"modality {m!r} cannot be exported (tensor modalities: face, video, voice); "
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
    from emomm.models.module import EmotionModule

    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={path} does not exist; give a .ckpt written by emomm.train "
                                "(e.g. outputs/train/runs/<run>/checkpoints/best.ckpt)")
    return EmotionModule.load_from_checkpoint(path, map_location="cpu").eval()


def _plain(x: Any) -> Any:
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
        if isinstance(x, (DictConfig, ListConfig)):
            return OmegaConf.to_container(x, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def export_onnx(wrapper: ExportNet, example: tuple[torch.Tensor, ...], path: Path,
                opset: int = DEFAULT_OPSET, dynamo: bool = False) -> None:
    """``torch.onnx.export`` with a dynamic batch axis (and time axis for voice/video).

    The TorchScript-based exporter is the default: it exports every emomm encoder in under a
    second; ``dynamo=True`` uses ``torch.export`` (face models only, for now: the video and
    voice graphs have data-dependent shapes it refuses)."""
    import warnings

    path.parent.mkdir(parents=True, exist_ok=True)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # The fused transformer-layer kernel PyTorch uses in eval mode has no ONNX form.
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        _export_onnx(wrapper, example, path, opset, dynamo)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def _export_onnx(wrapper, example, path, opset, dynamo):
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            dyn = {n: {i: torch.export.Dim.DYNAMIC for i in ax} for n, ax in dynamic_axes(wrapper).items()
                   if n in wrapper.input_names}
            torch.onnx.export(wrapper, example, str(path), input_names=wrapper.input_names,
                              output_names=wrapper.output_names, dynamic_shapes=dyn, dynamo=True,
                              opset_version=opset, verbose=False)
        else:
            torch.onnx.export(wrapper, example, str(path), input_names=wrapper.input_names,
                              output_names=wrapper.output_names, dynamic_axes=dynamic_axes(wrapper),
                              opset_version=opset, dynamo=False, do_constant_folding=True)


def calibration_batches(module: nn.Module, wrapper: ExportNet, split: str = "val", max_samples: int = 128,
                        batch_size: int = 16, data_overrides: dict[str, Any] | None = None
                        ) -> list[tuple[torch.Tensor, ...]]:
    """Graph arguments for up to ``max_samples`` samples of the checkpoint's own data split."""
    from hydra.utils import instantiate

    data_cfg = _plain(module.hparams.get("data"))
    if not data_cfg:
        raise ExportError("the checkpoint stores no data config to calibrate int8 on; use "
                          "quantize_method=dynamic (no calibration data needed)")
    data_cfg = {**data_cfg, **(data_overrides or {}), "batch_size": batch_size}
    dm = instantiate(data_cfg)
    dm.setup("validate" if split == "val" else "test")
    loader = dm.val_dataloader() if split == "val" else dm.test_dataloader()
    out, seen = [], 0
    for batch in loader:
        out.append(graph_args(wrapper, batch["inputs"], batch.get("present"), batch.get("lengths")))
        seen += len(batch["label"])
        if seen >= max_samples:
            break
    return out


def fp32_nodes(path: Path) -> list[str]:
    """Nodes kept in fp32: the classifier head and each encoder's first convolution. They hold
    a tiny share of the compute but most of the rounding damage (the input layer sees raw
    pixels or spectra, the head writes the logits an argmax decides on)."""
    import onnx

    nodes = onnx.load(str(path), load_external_data=False).graph.node
    keep = [n.name for n in nodes if "/net/head/" in n.name]
    first: dict[str, str] = {}
    for n in nodes:
        if n.op_type == "Conv":
            parts = n.name.split("/")
            enc = parts[2] if len(parts) > 2 and parts[1] == "net" else ""
            first.setdefault(enc, n.name)
    return keep + list(first.values())


def quantize_int8(fp32_path: Path, int8_path: Path, input_names: Sequence[str],
                  calibration: list[tuple[torch.Tensor, ...]] | None, method: str = "static") -> None:
    """int8 weights (``dynamic``) or int8 weights and activations with ranges measured on
    calibration batches (``static``, QDQ format: fastest on CPUs with VNNI, and what mobile
    runtimes execute natively)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    exclude = fp32_nodes(fp32_path)
    pre = int8_path.with_name(int8_path.stem + ".pre.onnx")
    try:
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        src = pre
    except Exception as e:  # pre-processing is an optimisation; quantize the plain graph instead
        log.warning("onnxruntime quant_pre_process failed (%s); quantizing the graph as exported", e)
        src = fp32_path
    try:
        if method == "dynamic":
            quantize_dynamic(str(src), str(int8_path), weight_type=QuantType.QInt8, nodes_to_exclude=exclude)
        elif method == "static":
            if not calibration:
                raise ExportError("quantize_method=static needs calibration batches")
            from onnxruntime.quantization import CalibrationDataReader, QuantFormat

            class Reader(CalibrationDataReader):
                def __init__(self):
                    self.it = iter(calibration)

                def get_next(self):
                    args = next(self.it, None)
                    return None if args is None else {n: a.numpy() for n, a in zip(input_names, args)}

            quantize_static(str(src), str(int8_path), Reader(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            per_channel=True, nodes_to_exclude=exclude)
        else:
            raise ExportError(f"quantize_method={method!r} must be static or dynamic")
    finally:
        pre.unlink(missing_ok=True)


def export(ckpt_path: str | Path | None = None, out_dir: str | Path = "exported", format: str = "onnx",
           quantize: str | None = None, quantize_method: str = "dynamic", opset: int = DEFAULT_OPSET,
           tta: bool = True, dynamo: bool = False, calibration: dict[str, Any] | None = None,
           module: nn.Module | None = None, check: bool = True) -> dict[str, Any]:
    """Export a checkpoint (or an already loaded ``module``) to ``out_dir``; returns what
    ``model.json`` holds. ``check`` runs the exported model once against PyTorch and stores the
    largest probability difference in ``model.json``."""
    if format not in FORMATS:
        raise ExportError(f"format={format!r} is not one of {list(FORMATS)}")
    if quantize not in (None, "none", "int8"):
        raise ExportError(f"quantize={quantize!r}: only int8 (or null) is supported")
    if quantize == "int8" and format != "onnx":
        raise ExportError("quantize=int8 needs format=onnx (onnxruntime quantization)")
    if module is None:
        if ckpt_path is None:
            raise ExportError("give ckpt_path=<checkpoint .ckpt>")
        module = load_module(ckpt_path)
    module.eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wrapper = ExportNet(module, tta=tta).eval()
    example = graph_args(wrapper, example_inputs(module))
    t0 = time.perf_counter()
    files: dict[str, str] = {}
    if format == "onnx":
        export_onnx(wrapper, example, out / "model.onnx", opset=opset, dynamo=dynamo)
        files["fp32"] = "model.onnx"
        if quantize == "int8":
            calib = None
            if quantize_method == "static":
                c = dict(calibration or {})
                calib = calibration_batches(module, wrapper, split=c.get("split", "val"),
                                            max_samples=int(c.get("max_samples", 128)),
                                            batch_size=int(c.get("batch_size", 16)),
                                            data_overrides=c.get("data_overrides"))
            quantize_int8(out / "model.onnx", out / "model.int8.onnx", wrapper.input_names, calib,
                          method=quantize_method)
            files["int8"] = "model.int8.onnx"
    else:
        with torch.no_grad():
            traced = torch.jit.trace(wrapper, example, check_trace=False)
        traced.save(str(out / "model.pt"))
        files["torchscript"] = "model.pt"
    seconds = time.perf_counter() - t0
    hp = module.hparams
    meta = {
        "format": format,
        "files": files,
        "label_names": list(module.label_names),
        "modalities": list(wrapper.modalities),
        "preprocessing": _plain(hp.get("preprocessing") or {}),
        "inputs": [{"name": n, "dtype": str(a.dtype).replace("torch.", ""),
                    "shape": [("batch" if i == 0 else (f"{n}_time" if i == 1 and n == "voice" else d))
                              for i, d in enumerate(a.shape)]}
                   for n, a in zip(wrapper.input_names, example)],
        "outputs": list(wrapper.output_names),
        "modality_outputs": ({m: f"logits_{m}" for m in wrapper.modalities} if wrapper.per_modality
                             else ({wrapper.modalities[0]: "logits"} if len(wrapper.modalities) == 1 else {})),
        "full_length": list(wrapper.full_length),
        "opset": opset if format == "onnx" else None,
        "tta": {"hflip": wrapper.hflip, "shift": wrapper.shift},
        "quantize": {"type": "int8", "method": quantize_method} if "int8" in files else None,
        "source": str(ckpt_path) if ckpt_path else None,
        "torch_version": torch.__version__,
        "export_seconds": round(seconds, 2),
        "sizes_bytes": {k: (out / v).stat().st_size for k, v in files.items()},
    }
    if check:
        meta["check"] = check_export(wrapper, out, files, format, example)
    (out / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    log.info("exported %s -> %s (%s) in %.1f s", ckpt_path or "module", out, ", ".join(files.values()), seconds)
    return meta


def softmax_np(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def check_export(wrapper: ExportNet, out: Path, files: dict[str, str], format: str,
                 args: tuple[torch.Tensor, ...]) -> dict[str, float]:
    """Largest |p_exported - p_torch| on the example batch, per exported file."""
    with torch.no_grad():
        ref = wrapper(*args)
    ref = (ref if isinstance(ref, torch.Tensor) else ref[0]).float().softmax(-1).numpy()
    result = {}
    for kind, name in files.items():
        if format == "onnx":
            import onnxruntime as ort

            sess = ort.InferenceSession(str(out / name), providers=["CPUExecutionProvider"])
            got = sess.run(["logits"], {n: a.numpy() for n, a in zip(wrapper.input_names, args)})[0]
        else:
            loaded = torch.jit.load(str(out / name))
            with torch.no_grad():
                o = loaded(*args)
            got = (o if isinstance(o, torch.Tensor) else o[0]).numpy()
        result[f"{kind}_max_abs_prob_diff"] = float(np.abs(softmax_np(got) - ref).max())
    return result


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    offline_defaults()
    ckpt = resolve_ckpt(cfg.ckpt_path, cfg.paths.log_dir)
    meta = export(ckpt_path=ckpt, out_dir=cfg.out_dir, format=cfg.format, quantize=cfg.get("quantize"),
                  quantize_method=cfg.quantize_method, opset=cfg.opset, tta=cfg.tta, dynamo=cfg.dynamo,
                  calibration=to_plain(cfg.get("calibration")))
    print(json.dumps({k: meta[k] for k in ("files", "sizes_bytes", "modalities", "outputs", "check")
                      if k in meta}, indent=2))
    print(f"written to {Path(cfg.out_dir).resolve()}")


if __name__ == "__main__":
    main()
