"""Calibration of a classifier's probabilities: ECE, reliability bins, temperature scaling.

A model is *calibrated* when, of the samples it gives 80% confidence, about 80% are right.
The expected calibration error (ECE, torchmetrics ``MulticlassCalibrationError``: 15 equal
bins of top-1 confidence, L1) is the bin-weighted mean ``|accuracy - confidence|``.

Temperature scaling (Guo et al., 2017) divides every logit by one positive number ``T``
fitted to minimise the negative log-likelihood of a held-out split: ``T > 1`` softens an
over-confident model. The argmax, so every accuracy metric, stays the same.

A fitted temperature travels in the checkpoint, as the ``calibration`` hyper-parameter of
:class:`~emomm.models.module.EmotionModule` (``python -m emomm.eval calibrate=true`` writes
it)::

    calibration: {temperature: 1.83, heads: {face: 1.6, voice: 2.1}, fitted_on: {...}}

``temperature`` scales the fused logits (and the fused head on any subset of modalities);
``heads`` (multimodal models) each modality's own head. The module applies it to every
logit it hands out in eval mode (:func:`apply_temperatures`), so the ``Predictor``, the
ensembles, ONNX exports, serve and live all give ``softmax(logits / T)``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_calibration_error

from emomm.utils.atomic import atomic_path
from emomm.utils.safe_load import load_checkpoint

#: ECE bins (torchmetrics' default and the usual choice in the literature).
N_BINS = 15
#: The range a fitted temperature is searched in (log-spaced, bounded: never 0 or inf).
T_RANGE = (0.05, 20.0)


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = N_BINS) -> float:
    """ECE of probabilities ``[N, K]`` against labels ``Long[N]`` (torchmetrics, L1, ``n_bins``
    equal-width bins of the top-1 confidence); 0.0 for no samples."""
    if len(labels) == 0:
        return 0.0
    return float(multiclass_calibration_error(probs.float(), labels.long(), num_classes=probs.shape[-1],
                                              n_bins=n_bins, norm="l1"))


def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``softmax(logits [N, K] / temperature)`` for labels ``Long[N]``."""
    if len(labels) == 0:
        return 0.0
    return float(F.cross_entropy(logits.double() / temperature, labels.long()))


def reliability_bins(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = N_BINS) -> dict[str, list[float]]:
    """The reliability diagram of probabilities ``[N, K]`` and labels ``Long[N]``: per
    equal-width bin of top-1 confidence (``n_bins``; a confidence of exactly 1 joins the last),
    ``count``, mean ``confidence`` and ``accuracy`` (0 where the bin is empty) and the bin
    ``edges`` (``n_bins + 1``)."""
    conf, pred = probs.float().max(-1)
    correct = (pred == labels.long()).float()
    idx = (conf * n_bins).long().clamp(0, n_bins - 1)
    count = torch.zeros(n_bins).scatter_add_(0, idx, torch.ones_like(conf))
    conf_sum = torch.zeros(n_bins).scatter_add_(0, idx, conf)
    acc_sum = torch.zeros(n_bins).scatter_add_(0, idx, correct)
    safe = count.clamp(min=1)
    return {"edges": torch.linspace(0, 1, n_bins + 1).tolist(), "count": count.tolist(),
            "confidence": (conf_sum / safe).tolist(), "accuracy": (acc_sum / safe).tolist()}


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, bounds: tuple[float, float] = T_RANGE,
                    tol: float = 1e-4) -> float:
    """The temperature ``T`` that minimises :func:`nll` of ``logits [N, K] / T`` for labels
    ``Long[N]``: a golden-section search over ``log T`` within ``bounds`` (the NLL is convex in
    ``1/T``, so the 1-D search finds its minimum; no learning rate, no step count). Deterministic."""
    if len(labels) == 0:
        raise ValueError("cannot fit a temperature on no samples")
    z, y = logits.detach().double().cpu(), labels.detach().long().cpu()
    loss = lambda log_t: float(F.cross_entropy(z / math.exp(log_t), y))  # noqa: E731
    a, b = math.log(bounds[0]), math.log(bounds[1])
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    while b - a > tol:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return math.exp((a + b) / 2)


def parse_calibration(calibration: Any, where: str = "calibration") -> dict[str, Any] | None:
    """``{"temperature": T, "heads": {modality: T}}`` from a ``calibration`` hyper-parameter
    (None: uncalibrated); a ``ValueError`` naming ``where`` unless every temperature is a
    finite positive number."""
    if calibration is None:
        return None
    if not isinstance(calibration, Mapping):
        raise ValueError(f"{where} must be a mapping like {{temperature: 1.5}}, not {calibration!r}")

    def positive(value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{where}.{key} = {value!r}: a temperature must be a finite number > 0 "
                             "(refit it with python -m emomm.eval ckpt_path=... calibrate=true)")
        return float(value)

    heads = calibration.get("heads") or {}
    if not isinstance(heads, Mapping):
        raise ValueError(f"{where}.heads must map modalities to temperatures, not {heads!r}")
    return {"temperature": positive(calibration.get("temperature"), "temperature"),
            "heads": {str(m): positive(t, f"heads.{m}") for m, t in heads.items()}}


def apply_temperatures(out: Mapping[str, torch.Tensor], temps: Mapping[str, Any] | None
                       ) -> dict[str, torch.Tensor]:
    """Logits by name (``fused``, ``subset/<a+b>``, ``modality/<m>``, ``aux/<task>``; each
    ``[B, K]``) divided by their temperature from :func:`parse_calibration`'s ``temps``: the
    fused temperature for ``fused`` and ``subset/*``, a head's own for ``modality/<m>``, and,
    for a one-modality model (whose own head is the fused prediction), the fused one.
    Auxiliary heads, and heads without a temperature, are left as they are."""
    if not temps:
        return dict(out)
    heads = temps.get("heads") or {}
    single = sum(k.startswith("modality/") for k in out) == 1

    def temperature(name: str) -> float | None:
        if name == "fused" or name.startswith("subset/"):
            return temps["temperature"]
        if name.startswith("modality/"):
            m = name.split("/", 1)[1]
            return heads.get(m, temps["temperature"] if single else None)
        return None

    return {k: v if temperature(k) is None else v / temperature(k) for k, v in out.items()}


def write_calibrated_copy(ckpt: str | Path, hparams: Mapping[str, Any], dest: str | Path) -> Path:
    """A copy of the checkpoint ``ckpt`` at ``dest`` whose hyper-parameters are updated by
    ``hparams`` (a ``calibration`` and the options it was fitted under); the weights as stored."""
    saved = load_checkpoint(Path(ckpt))
    saved["hyper_parameters"] = {**saved["hyper_parameters"], **hparams}
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        torch.save(saved, tmp)
    return dest
