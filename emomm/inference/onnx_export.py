"""Export a trained checkpoint for small devices (library of ``python -m emomm.export``).

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
* ``voice``: ``[B, N]`` waveforms of equal length, any ``N`` from the encoder's shortest
  (one frame after its time pooling) up (the clip pipeline pads every clip to
  ``voice.duration``; without a duration, export one utterance per call). The log-mel
  spectrogram becomes a fixed DFT convolution, because ONNX has no complex STFT that
  PyTorch's exporter can target; its parity with the PyTorch model is tested;
* multimodal models take ``present_<modality>`` ``bool [B]`` masks as well.

Raw-text models (``text``) tokenize strings inside the network and cannot be exported:
serve them with the PyTorch backend.

Outputs: ``logits [B, K]`` (the fused prediction) and, when the network exposes per-modality
heads (``EmotionClassifier.forward_all``), ``logits_<modality>`` for each modality.

:func:`export` runs every written file against PyTorch on each declared shape
(:func:`parity_cases`: batch sizes, voice lengths, subsets of modalities) and refuses to
write a model that fails one.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from itertools import combinations
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from emomm.inference.export_graph import (  # noqa: F401  (re-exported)
    DEFAULT_OPSET, FORMATS, ExportError, ExportNet, _plain, dynamic_axes, example_inputs, graph_args, load_module)
from emomm.utils.targets import checked_data_config
from emomm.utils.ort import inference_session, onnxruntime
from emomm.utils.atomic import TMP_SUFFIX, atomic_path, atomic_write_json

log = logging.getLogger(__name__)
#: largest probability difference between an exported fp32 graph and PyTorch the check accepts
DEFAULT_TOLERANCE = 1e-4
#: batch sizes the parity check runs (1 and more than 1: the batch axis is declared dynamic)
PARITY_BATCH_SIZES = (1, 3)


def export_onnx(wrapper: ExportNet, example: tuple[torch.Tensor, ...], path: Path,
                opset: int = DEFAULT_OPSET, dynamo: bool = False) -> None:
    """``torch.onnx.export`` with a dynamic batch axis (and time axis for voice/video).

    The TorchScript-based exporter is the default: it exports every emomm encoder in under a
    second; ``dynamo=True`` uses ``torch.export`` (face models only, for now: the video and
    voice graphs have data-dependent shapes it refuses)."""
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
                        batch_size: int = 16, data_overrides: dict[str, Any] | None = None,
                        source: str | Path = "the checkpoint") -> list[tuple[torch.Tensor, ...]]:
    """Graph arguments for up to ``max_samples`` samples of the checkpoint's own data split.
    The stored data config is built only if its ``_target_``\ s are allowed
    (:func:`~emomm.utils.targets.check_targets`; ``source`` names the checkpoint file)."""
    from hydra.utils import instantiate

    data_cfg = checked_data_config(module.hparams.get("data"), source)
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
    onnxruntime()   # imported with its telemetry off before the quantization tools import it
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
           module: nn.Module | None = None, check: bool = True,
           tolerance: float = DEFAULT_TOLERANCE) -> dict[str, Any]:
    """Export a checkpoint (or an already loaded ``module``) to ``out_dir``; returns what
    ``model.json`` holds.

    ``check`` runs every exported file against PyTorch on every shape the graph declares
    (:func:`check_export`: batch sizes, voice lengths, subsets of modalities) and refuses the
    export (:class:`ExportError`) when one fails or differs by more than ``tolerance`` in
    probability. The files are written to a hidden staging folder inside ``out_dir`` and move
    into place only once they pass, ``model.json`` last: a refused or interrupted export
    leaves ``out_dir`` as it was (a previous export included)."""
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
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".export.", suffix=TMP_SUFFIX, dir=out))
    try:
        meta = _export_staged(module, stage, ckpt_path, format, quantize, quantize_method, opset, tta, dynamo,
                              calibration, check, tolerance)
        # model.json, written last and atomically, marks a complete export: no moment shows
        # new model files beside the previous export's metadata.
        (out / "model.json").unlink(missing_ok=True)
        for name in meta["files"].values():
            os.replace(stage / name, out / name)
        atomic_write_json(out / "model.json", meta)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    shutil.rmtree(stage, ignore_errors=True)
    log.info("exported %s -> %s (%s) in %.1f s", ckpt_path or "module", out, ", ".join(meta["files"].values()),
             meta["export_seconds"])
    return meta


def _export_staged(module: nn.Module, out: Path, ckpt_path, format: str, quantize, quantize_method: str,
                   opset: int, tta: bool, dynamo: bool, calibration, check: bool,
                   tolerance: float) -> dict[str, Any]:
    """Write the model files into ``out`` (the staging folder) and check them; returns the
    metadata."""
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
                                            data_overrides=c.get("data_overrides"),
                                            source=ckpt_path or "the checkpoint")
            quantize_int8(out / "model.onnx", out / "model.int8.onnx", wrapper.input_names, calib,
                          method=quantize_method)
            files["int8"] = "model.int8.onnx"
    else:
        with torch.no_grad():
            traced = torch.jit.trace(wrapper, example, check_trace=False)
        with atomic_path(out / "model.pt") as tmp:
            traced.save(str(tmp))
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
        # a calibrated checkpoint's temperatures: already divided in the graph's logits
        "calibration": _plain(hp.get("calibration")),
        "quantize": {"type": "int8", "method": quantize_method} if "int8" in files else None,
        "source": str(ckpt_path) if ckpt_path else None,
        "torch_version": torch.__version__,
        "export_seconds": round(seconds, 2),
        "sizes_bytes": {k: (out / v).stat().st_size for k, v in files.items()},
    }
    if check:
        meta["check"] = check_export(wrapper, out, files, format, example, tolerance=tolerance)
    return meta


def softmax_np(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def min_length(wrapper: ExportNet, modality: str, exported: int) -> int:
    """The shortest input along ``modality``'s time axis the parity check tries: what the
    encoder adapter declares (``min_length``), else a quarter of the exported length."""
    return int(getattr(wrapper.net.encoders[modality], "min_length", 0) or max(1, exported // 4))


def parity_cases(wrapper: ExportNet, example: tuple[torch.Tensor, ...],
                 batch_sizes: Sequence[int] = PARITY_BATCH_SIZES) -> list[tuple[str, tuple[torch.Tensor, ...]]]:
    """``(label, graph arguments)`` for every shape the graph declares: each batch size with
    each length of every dynamic time axis (the shortest allowed, a middle one, the exported
    one, a longer one); every non-empty proper subset of the modalities (absent ones masked,
    their inputs left in place as a batch of mixed samples has them) at the shortest and the
    exported length; one batch whose samples each have a different subset; and one with
    shorter sequences where the graph takes ``<modality>_lengths``."""
    inputs, _, _ = wrapper.split_args(example)
    axes = dynamic_axes(wrapper)
    timed = {m: [a for a in axes.get(m, {}) if a != 0] for m in wrapper.modalities}
    span: dict[str, list[int]] = {}
    for m, ax in timed.items():
        if ax:
            n = int(inputs[m].shape[ax[0]])
            lo = min(min_length(wrapper, m, n), n)
            span[m] = sorted({lo, (lo + n) // 2, n, n + n // 2})
    steps = max((len(v) for v in span.values()), default=1)
    exported_step = {m: v.index(int(inputs[m].shape[timed[m][0]])) for m, v in span.items()}
    g = torch.Generator().manual_seed(0)
    big = max(batch_sizes)

    def make(b: int, step: int | None, present: dict[str, torch.Tensor] | None = None,
             lengths: dict[str, torch.Tensor] | None = None) -> tuple[str, tuple]:
        x, desc = {}, [f"batch={b}"]
        for m in wrapper.modalities:
            shape = list(inputs[m].shape)
            shape[0] = b
            if m in span:
                i = exported_step[m] if step is None else min(step, len(span[m]) - 1)
                shape[timed[m][0]] = span[m][i]
                desc.append(f"{m} length={span[m][i]}")
            scale = float(inputs[m].float().std()) or 1.0
            x[m] = scale * torch.randn(*shape, generator=g)
        for m, ln in (lengths or {}).items():
            desc.append(f"{m}_lengths={ln.tolist()}")
        if wrapper.multi:
            rows = [[m for m in wrapper.modalities if bool(present[m][i])] for i in range(b)] if present else []
            desc.append("present: " + ("every modality" if not rows else
                                       "/".join("+".join(r) or "none" for r in rows)))
        return ", ".join(desc), graph_args(wrapper, x, present, lengths)

    cases = [make(b, step) for b in batch_sizes for step in range(steps)]
    if wrapper.multi:
        subsets = [s for k in range(1, len(wrapper.modalities)) for s in combinations(wrapper.modalities, k)]
        for sub in subsets:
            present = {m: torch.full((big,), m in sub, dtype=torch.bool) for m in wrapper.modalities}
            cases += [make(big, step, present) for step in sorted({0, *exported_step.values()})]
        rows = subsets + [tuple(wrapper.modalities)]
        present = {m: torch.tensor([m in rows[i % len(rows)] for i in range(big)]) for m in wrapper.modalities}
        cases.append(make(big, None, present))
    seq = {m: int(inputs[m].shape[1]) for m in wrapper.modalities if f"{m}_lengths" in wrapper.input_names}
    if seq:
        cases.append(make(big, None, lengths={m: torch.tensor([t, t // 2 + 1, 1] * big)[:big] for m, t in seq.items()}))
    return cases


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:400]


def check_export(wrapper: ExportNet, out: Path, files: dict[str, str], format: str,
                 args: tuple[torch.Tensor, ...], tolerance: float = DEFAULT_TOLERANCE) -> dict[str, Any]:
    """Every exported file against PyTorch on :func:`parity_cases`: largest
    ``|p_exported - p_torch|`` over every output (the fused and per-modality logits), per file.

    Raises :class:`ExportError` naming the case when a file fails to run on one, or when the
    fp32 (or TorchScript) graph differs by more than ``tolerance``; an int8 graph must run on
    every case, its rounding is reported, not judged."""
    cases = parity_cases(wrapper, args)
    refs = []
    with torch.no_grad():
        for _, a in cases:
            r = wrapper(*a)
            refs.append([softmax_np(t.float().numpy()) for t in ((r,) if isinstance(r, torch.Tensor) else r)])
    result: dict[str, Any] = {}
    for kind, name in files.items():
        if format == "onnx":
            sess = inference_session(out / name)

            def run(a, sess=sess):
                return sess.run(list(wrapper.output_names), {n: t.numpy() for n, t in zip(wrapper.input_names, a)})
        else:
            loaded = torch.jit.load(str(out / name))

            def run(a, loaded=loaded):
                with torch.no_grad():
                    o = loaded(*a)
                return [t.numpy() for t in ((o,) if isinstance(o, torch.Tensor) else o)]
        worst = 0.0
        for (label, a), ref in zip(cases, refs):
            try:
                got = run(a)
            except Exception as e:
                raise ExportError(f"the exported {name} fails on inputs it declares ({label}): {_first_line(e)}; "
                                  "nothing was written. The graph bakes a size it declares dynamic: report "
                                  "this with the checkpoint's config, and serve it with backend=torch meanwhile"
                                  ) from None
            diff = max(float(np.abs(softmax_np(g) - r).max()) for g, r in zip(got, ref))
            if kind != "int8" and not diff <= tolerance:
                raise ExportError(f"the exported {name} disagrees with the PyTorch model on {label}: "
                                  f"max |p_exported - p_torch| = {diff:.3g} > tolerance {tolerance:g}; nothing "
                                  "was written. Serve the checkpoint with backend=torch, or report this with "
                                  "its config")
            worst = max(worst, diff)
        result[f"{kind}_max_abs_prob_diff"] = worst
    result["cases"] = [label for label, _ in cases]
    result["tolerance"] = tolerance
    return result
