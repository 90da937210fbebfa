"""Personalisation: adapt a trained model to one person from K labelled samples per class.

The backbone and head stay fixed; what is fitted is a small :class:`PersonAdapter`
(:mod:`emomm.inference.adapter`): per-class logit scale + bias (``logit_affine``) or class
prototypes from the person's embeddings blended with the head (``prototype``).

Which samples (documented protocol, deterministic):

* the person's samples are those whose speaker id equals ``person``, found in the first
  split (test, val, then train) that has them, read the evaluation way (no augmentation);
* they are ordered by file name; ``protocol="first"``: the first K of each class adapt,
  all the others evaluate; ``protocol="ravdess_repetition"`` (RAVDESS file names
  ``MM-VC-EE-II-SS-RR-AA``): the first K of each class among repetition 01 adapt, the
  repetition 02 clips evaluate (so the same sentence is never in both). In name order, the
  first K of a RAVDESS class are intensity 01 statement 01, intensity 01 statement 02,
  intensity 02 statement 01, ... (neutral has no strong intensity: at most 2 per repetition).

``python -m emomm.personalize`` is the command line (see ``conf/personalize.yaml``).
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from emomm.analysis.groups import confusion, metrics_from_confusion
from emomm.data.core.collate import collate_samples
from emomm.data.core.group_sources import SampleMeta, sample_meta
from emomm.data.core.speakers import parse_ravdess_name
from emomm.data.core.splits import dataset_labels
from emomm.inference.adapter import PersonAdapter, file_sha256
from emomm.labels import label_mapping

log = logging.getLogger(__name__)

PROTOCOLS = ("first", "ravdess_repetition")


# -- the person's samples ----------------------------------------------------------------------
def _eval_view(ds):
    """A shallow copy of ``ds`` that reads samples without augmentation (train splits)."""
    if isinstance(ds, torch.utils.data.Subset):
        twin = copy.copy(ds)
        twin.dataset = _eval_view(ds.dataset)
        return twin
    if getattr(ds, "train", False) or getattr(ds, "augment", None) is not None:
        ds = copy.copy(ds)
        for attr, value in (("train", False), ("augment", None)):
            if hasattr(ds, attr):
                setattr(ds, attr, value)
    return ds


def person_samples(datamodule, person: Any) -> tuple[Any, list[int], list[SampleMeta], list[int], str]:
    """``(dataset, positions, meta, data labels, split)`` of the person's samples, from the
    first split (test, val, train) that has them."""
    datamodule.setup("test")
    seen = []
    for split in ("test", "val", "train"):
        ds = datamodule.splits.get(split)
        if ds is None or any(ds is d for d in seen):
            continue
        seen.append(ds)
        meta = sample_meta(ds)
        idx = [i for i, m in enumerate(meta) if m.speaker is not None and str(m.speaker) == str(person)]
        if idx:
            if split == "train":
                log.warning("person %s is in the training split: adapted scores will be optimistic", person)
            labels = list(dataset_labels(ds))
            return _eval_view(ds), idx, [meta[i] for i in idx], [labels[i] for i in idx], split
    speakers = sorted({str(m.speaker) for d in seen for m in sample_meta(d) if m.speaker is not None})
    raise ValueError(f"person={person!r} has no samples in this data (speakers: {speakers or 'none recorded'}); "
                     "give one of those ids, or data=... with that person's recordings")


def select_shots(meta: Sequence[SampleMeta], labels: Sequence[int], shots: int,
                 protocol: str = "first") -> tuple[list[int], list[int]]:
    """``(adapt, evaluate)`` positions into ``meta`` (see the module docstring)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}: use one of {PROTOCOLS}")
    if shots < 1:
        raise ValueError(f"shots={shots}: need at least 1 sample per class")
    order = sorted(range(len(meta)), key=lambda i: (Path(meta[i].path or "").name, i))
    if protocol == "ravdess_repetition":
        rep = {i: parse_ravdess_name(meta[i].path).repetition for i in order}
        candidates, held = [i for i in order if rep[i] == 1], [i for i in order if rep[i] == 2]
    else:
        candidates, held = order, None
    taken: dict[int, int] = {}
    adapt = []
    for i in candidates:
        if taken.get(labels[i], 0) < shots:
            taken[labels[i]] = taken.get(labels[i], 0) + 1
            adapt.append(i)
    chosen = set(adapt)
    evaluate = held if held is not None else [i for i in order if i not in chosen]
    return adapt, evaluate


# -- model outputs -----------------------------------------------------------------------------
@torch.no_grad()
def collect_outputs(module, dataset, positions: Sequence[int], batch_size: int = 32,
                    embeddings: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits ``[N, K]`` (test-time views averaged, as in eval) and fused embeddings
    ``[N, D]`` of ``dataset[positions]``."""
    module.eval()
    dev = next(module.parameters()).device
    logits, embs = [], []
    for s in range(0, len(positions), batch_size):
        batch = collate_samples([dataset[i] for i in positions[s:s + batch_size]])
        move = lambda d: {m: v.to(dev) if isinstance(v, torch.Tensor) else v for m, v in d.items()}  # noqa: E731
        b = {"inputs": move(batch["inputs"]), "present": move(batch["present"]), "lengths": move(batch["lengths"])}
        logits.append(module.outputs(b)["fused"].float().cpu())
        if embeddings:
            embs.append(module.net.embed(b["inputs"], b["present"], b["lengths"]).float().cpu())
    k = len(module.label_names)
    z = torch.cat(logits).numpy() if logits else np.zeros((0, k), np.float32)
    return z, (torch.cat(embs).numpy() if embs else None)


def model_labels(data_labels: Sequence[int], data_names: Sequence[str], model_names: Sequence[str]) -> np.ndarray:
    """Data label indices as the model's (by canonical name); a label the model lacks is an error."""
    if list(data_names) == list(model_names):
        return np.asarray(data_labels, dtype=np.int64)
    mapping = label_mapping(data_names, model_names)
    missing = sorted({data_names[y] for y in data_labels if y not in mapping})
    if missing:
        raise ValueError(f"the data has labels {missing} that the model ({list(model_names)}) cannot predict")
    return np.asarray([mapping[y] for y in data_labels], dtype=np.int64)


# -- fitting -----------------------------------------------------------------------------------
def fit_logit_affine(logits: np.ndarray, labels: np.ndarray, steps: int = 100, lr: float = 0.05,
                     reg: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class ``scale, bias [K]`` minimising cross-entropy of ``logits * scale + bias``
    on the adaptation samples + ``reg * (|scale - 1|^2 + |bias|^2)`` (Adam, full batch)."""
    z = torch.as_tensor(logits, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.long)
    k = z.shape[1]
    scale = torch.ones(k, requires_grad=True)
    bias = torch.zeros(k, requires_grad=True)
    opt = torch.optim.Adam([scale, bias], lr=lr)
    for _ in range(int(steps)):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z * scale + bias, y)
        loss = loss + reg * ((scale - 1).pow(2).sum() + bias.pow(2).sum())
        loss.backward()
        opt.step()
    return scale.detach(), bias.detach()


def fit_prototypes(embeddings: np.ndarray, labels: np.ndarray, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``prototypes [K, D]`` (mean of L2-normalised embeddings per class, re-normalised) and
    ``has_prototype [K]``."""
    e = torch.nn.functional.normalize(torch.as_tensor(embeddings, dtype=torch.float32), dim=-1)
    y = torch.as_tensor(labels, dtype=torch.long)
    protos = torch.zeros(k, e.shape[1])
    has = torch.zeros(k, dtype=torch.bool)
    for c in range(k):
        if (y == c).any():
            protos[c] = torch.nn.functional.normalize(e[y == c].mean(0), dim=0)
            has[c] = True
    return protos, has


def fit_adapter(method: str, logits: np.ndarray, embeddings: np.ndarray | None, labels: np.ndarray,
                label_names: Sequence[str], person: Any, shots: int, ckpt_path: str | Path = "",
                modality: str | None = None, steps: int = 100, lr: float = 0.05, reg: float = 0.1,
                alpha: float = 0.5, temperature: float = 0.1) -> PersonAdapter:
    """A :class:`PersonAdapter` fitted on the adaptation samples' outputs."""
    k = len(label_names)
    common = dict(person=str(person), method=method, shots=int(shots), label_names=list(label_names),
                  ckpt_path=str(ckpt_path), ckpt_sha256=file_sha256(ckpt_path) if ckpt_path and Path(ckpt_path).is_file()
                  else "", modality=modality, n_samples=int(len(labels)))
    if method == "logit_affine":
        scale, bias = fit_logit_affine(logits, labels, steps, lr, reg)
        return PersonAdapter(**common, scale=scale, bias=bias, extra={"steps": steps, "lr": lr, "reg": reg})
    if method == "prototype":
        if embeddings is None:
            raise ValueError("prototype adaptation needs embeddings")
        protos, has = fit_prototypes(embeddings, labels, k)
        return PersonAdapter(**common, prototypes=protos, has_prototype=has, alpha=float(alpha),
                             temperature=float(temperature))
    raise ValueError(f"method={method!r}: use logit_affine or prototype")


def uar(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Unweighted average recall of ``argmax(logits)`` over the classes present."""
    return float(metrics_from_confusion(confusion(np.asarray(logits).argmax(-1), np.asarray(labels), k))["uar"])


def personalize(module, datamodule, person: Any, shots: int, method: str = "logit_affine",
                protocol: str = "first", ckpt_path: str | Path = "", batch_size: int = 32,
                outputs: tuple | None = None, **fit: Any) -> tuple[PersonAdapter, dict[str, Any]]:
    """Fit an adapter for ``person`` and score it on the person's held-out samples.

    ``outputs``: a cached ``person_outputs(...)`` result (benchmarks loop over K and methods
    without re-running the network). Returns the adapter and a summary with UAR and accuracy
    before and after, and the adaptation / evaluation file names.
    """
    out = outputs or person_outputs(module, datamodule, person, batch_size)
    meta, labels, z, emb = out["meta"], out["labels"], out["logits"], out["embeddings"]
    adapt, held = select_shots(meta, labels, shots, protocol)
    if not adapt:
        raise ValueError(f"person {person}: no adaptation samples under protocol={protocol}")
    k = len(module.label_names)
    modality = module.net.modalities[0] if len(module.net.modalities) == 1 else None
    adapter = fit_adapter(method, z[adapt], None if emb is None else emb[adapt], labels[adapt], module.label_names,
                          person, shots, ckpt_path, modality, **fit)
    summary: dict[str, Any] = {"person": str(person), "method": method, "shots": shots, "protocol": protocol,
                               "split": out["split"], "n_adapt": len(adapt), "n_eval": len(held),
                               "adapt_files": [Path(meta[i].path or "").name for i in adapt]}
    if held:
        after = adapter.apply(z[held], None if emb is None else emb[held])
        summary |= {"uar_before": uar(z[held], labels[held], k), "uar_after": uar(after, labels[held], k),
                    "acc_before": float((z[held].argmax(-1) == labels[held]).mean()),
                    "acc_after": float((after.argmax(-1) == labels[held]).mean())}
    return adapter, summary


def person_outputs(module, datamodule, person: Any, batch_size: int = 32) -> dict[str, Any]:
    """The person's samples and the model's logits / embeddings on them (computed once)."""
    ds, pos, meta, data_labels, split = person_samples(datamodule, person)
    labels = model_labels(data_labels, datamodule.label_names, module.label_names)
    z, emb = collect_outputs(module, ds, pos, batch_size, embeddings=not module.net.decision_level)
    return {"meta": meta, "labels": labels, "logits": z, "embeddings": emb, "split": split}
