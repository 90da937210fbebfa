"""Ensembling finished runs: what ``python -m emomm.ensemble runs=[A,B] method=...`` does.

Each run's model scores the same dataset (each takes the modalities it knows from the batch,
so a face model and a voice model combine on paired data), read as that run was trained on it:
runs whose data options differ (e.g. MELD with and without speaker names) each read it through
their own datamodule, and their samples must line up. Probabilities are mapped to the
data's label order and combined (:mod:`emomm.models.ensemble_methods`): per sample, a run that
lacks its input there (none of its modalities present, e.g. a landmark model on a face whose
mesh was not found) is left out of the ensemble, as in the Predictor's ensembles. Each run alone
is still scored on every sample, as its own evaluation scores it (a landmark model alone: from
an empty mesh). Writes the run folder of a training run: metrics.json (``test`` = the ensemble,
``test_models`` = each run alone, ``test_dropped`` = on how many test samples each run was left
out of the ensemble), confusion matrix, and ``ensemble.csv``.
"""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import torch
from omegaconf import DictConfig

from emomm.analysis.occlusion import mesh_found, occluded_view, parse_occlusions
from emomm.data.core.collate import found_masks
from emomm.labels import label_mapping
from emomm.models.ensemble_methods import combine, dropped, member_present
from emomm.models.scoring import build_metrics, build_per_class
from emomm.models.module import EmotionModule
from emomm.runs.evaluation import eval_datamodule
from emomm.utils.artifacts import metrics_table, save_confusion_matrix, write_json
from emomm.utils.atomic import atomic_open
from emomm.utils.runtime import resolve_ckpt, to_plain
from emomm.utils.safe_load import CheckpointNotFoundError
from emomm.utils.zoo_files import is_entry, is_zoo_ref

log = logging.getLogger(__name__)


def resolve_run(path: str) -> Path:
    """A run folder (-> its checkpoints/best.ckpt), a checkpoint file or ``zoo:NAME`` (a model-zoo entry)."""
    if is_zoo_ref(path):
        return resolve_ckpt(path, ".")
    p = Path(path).expanduser()
    if is_entry(p):
        return p
    if p.is_dir():
        p = p / "checkpoints" / "best.ckpt"
    if not p.is_file():
        raise CheckpointNotFoundError(f"runs: {path} is neither a run folder with checkpoints/best.ckpt nor a .ckpt file")
    return p


def member_names(ckpts: list[Path]) -> list[str]:
    """One readable, unique name per checkpoint: the parts of its path in which the checkpoints
    differ (``.../seed_1/train/runs/<time>/checkpoints/best.ckpt`` and the same with ``seed_2``
    give ``seed_1/<time>`` and ``seed_2/<time>``; two checkpoints of one run give ``best`` and
    ``last``). A run folder's own name alone is a timestamp in a Hydra output tree, which says
    nothing about which seed or variant the member was."""
    parts = [[q for q in Path(c).resolve().with_suffix("").parts if q != "checkpoints"] for c in ckpts]
    if len({len(p) for p in parts}) == 1:
        keep = [i for i in range(len(parts[0])) if len({p[i] for p in parts}) > 1]
        names = ["/".join(p[i] for i in keep) for p in parts]
    else:  # different depths: what lies between the common leading and trailing parts
        head = tail = 0
        while all(len(p) > head + 1 and p[head] == parts[0][head] for p in parts):
            head += 1
        while all(len(p) > head + tail + 1 and p[-1 - tail] == parts[0][-1 - tail] for p in parts):
            tail += 1
        names = ["/".join(p[head:len(p) - tail]) for p in parts]
    if len(ckpts) == 1 or not all(names):  # one checkpoint, or the same file twice
        names = [p[-2] if p[-1] in ("best", "last") and len(p) > 1 else p[-1] for p in parts]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


def to_data_order(probs: torch.Tensor, model_labels: list[str], data_labels: list[str], name: str) -> torch.Tensor:
    """``[N, K_model]`` -> ``[N, K_data]``, renormalised over the data's classes."""
    mapping = label_mapping(data_labels, model_labels)
    missing = [n for i, n in enumerate(data_labels) if i not in mapping]
    if missing:
        raise ValueError(f"run {name} cannot predict the data's labels {missing} (its labels: {model_labels})")
    out = probs[:, [mapping[i] for i in range(len(data_labels))]]
    return out / out.sum(1, keepdim=True).clamp_min(1e-12)


def loader_order(loader) -> list[int] | None:
    """The dataset indices in the order ``loader`` serves them (e.g. text batched by length),
    or None where its batches are not drawn from a batch sampler."""
    batches = getattr(loader, "batch_sampler", None)
    return None if batches is None else [int(i) for b in batches for i in b]


class Scored(NamedTuple):
    """Several models on one split: probabilities ``[M, N, K]``, labels ``[N]`` and
    ``present`` Bool ``[M, N]`` (whether the sample has any modality the model reads, not
    an empty stand-in: :func:`~emomm.data.core.collate.found_masks`)."""
    probs: torch.Tensor
    labels: torch.Tensor
    present: torch.Tensor


@torch.no_grad()
def collect(models: dict[str, EmotionModule], loader, data_labels: list[str]) -> Scored:
    """Per-model probabilities, labels and presence (:class:`Scored`) over one loader, in
    dataset order where the loader serves another (so runs read through different loaders line up)."""
    probs: dict[str, list[torch.Tensor]] = {n: [] for n in models}
    has: dict[str, list[torch.Tensor]] = {n: [] for n in models}
    labels = []
    for batch in loader:
        n = len(batch["label"])
        for name, model in models.items():
            p = model(batch).float().softmax(-1)
            probs[name].append(to_data_order(p, model.label_names, data_labels, name))
            has[name].append(member_present(found_masks(batch), list(model.hparams.encoders), n))
        labels.append(batch["label"])
    p, y = torch.stack([torch.cat(v) for v in probs.values()]), torch.cat(labels)
    present = torch.stack([torch.cat(v) for v in has.values()])
    order = loader_order(loader)
    if order is not None and sorted(order) == list(range(len(y))):
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        p, y, present = p[:, inverse], y[inverse], present[:, inverse]
    return Scored(p, y, present)


def score(probs: torch.Tensor, labels: torch.Tensor, k: int) -> tuple[dict[str, float], list]:
    metrics, per_class = build_metrics(k), build_per_class(k)
    preds = probs.argmax(-1)
    metrics.update(preds, labels)
    per_class.update(preds, labels)
    return {k_: float(v) for k_, v in metrics.compute().items()}, per_class.compute()["confmat"].tolist()


# Data-config keys that hold one modality's options (or the modality list), which
# ``stored_data_config`` merges across runs, and ``seed``: runs that differ only by seed (a seed
# ensemble) share the first run's data, as they always did, instead of being read once per seed
# (and, where the seed draws a validation split, failing to line up). Every other key must agree.
SHARED_KEYS = {"modalities", "options", "faces", "face", "voice", "video", "text", "seed"}


def _dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def data_signature(model: EmotionModule) -> tuple[str, dict[str, str]]:
    """What decides a model's inputs: its stored data config without the per-modality keys,
    and per modality it encodes, that modality's options (``options.<m>`` or ``<m>``, and the
    face detector ``faces`` for face and video)."""
    data = to_plain(model.hparams.get("data")) or {}
    common = {k: v for k, v in data.items() if k not in SHARED_KEYS}
    per = {}
    for m in model.hparams.encoders:
        opts = (data.get("options") or {}).get(m) if "options" in data else data.get(m)
        per[m] = _dump([opts, data.get("faces") if m in ("face", "video") else None])
    return _dump(common), per


def input_groups(cfg: DictConfig, models: dict[str, EmotionModule]) -> list[list[str]]:
    """Model names grouped so that each group can read one dataset: same data config and, for
    each modality two runs share, the same options. Runs trained on differently prepared inputs
    (e.g. MELD with and without speaker names, ``text.speakers``) thus score the data as they
    were trained on it, not as the first run was; runs of disjoint modalities share one
    datamodule (widened to all their modalities). With ``data=`` given: one group, the given
    data for all (with a warning if the runs' inputs differ)."""
    groups: list[tuple[str, dict[str, str], list[str]]] = []
    for name, model in models.items():
        common, per = data_signature(model)
        for g_common, g_per, names in groups:
            if g_common == common and all(g_per.get(m, v) == v for m, v in per.items()):
                g_per.update(per)
                names.append(name)
                break
        else:
            groups.append((common, dict(per), [name]))
    names = [g[2] for g in groups]
    if cfg.get("data") and len(names) > 1:
        log.warning("data= is given, so every run reads it with the first run's options, although the runs "
                    "were trained on differently prepared data (%s); leave data= out to score each on its own",
                    " | ".join(",".join(g) for g in names))
        return [list(models)]
    return names


def group_datamodules(cfg: DictConfig, models: dict[str, EmotionModule], ckpts: dict[str, Path]) -> list[tuple]:
    """``[(names, datamodule set up for test)]``, one per :func:`input_groups` group."""
    out = []
    for group in input_groups(cfg, models):
        dm = eval_datamodule(cfg, [models[n] for n in group], ckpts[group[0]])
        dm.setup("test")
        out.append((group, dm))
    return out


def collect_all(cfg: DictConfig, models: dict[str, EmotionModule], ckpts: dict[str, Path],
                dms: list[tuple] | None = None):
    """Each model on the val and test splits (:class:`Scored`, models in ``models``' order),
    one datamodule per :func:`input_groups` group (``dms``: those of :func:`group_datamodules`,
    made here when None); the groups' samples must line up (same labels in the same order),
    else a ValueError names the runs.
    Returns ``(val, test, datamodule of the first group, groups)``."""
    dms = dms if dms is not None else group_datamodules(cfg, models, ckpts)
    groups = [g for g, _ in dms]
    parts: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
    first = ref = None
    for group, dm in dms:
        first = first or dm
        got = {}
        for split, loader in (("val", dm.val_dataloader()), ("test", dm.test_dataloader())):
            if split == "test" and dm.splits["test"] is dm.splits["val"]:  # e.g. MELD without its test file
                got["test"] = got["val"]
                for n in group:
                    parts[n]["test"] = parts[n]["val"]
                continue
            p, y, present = collect({n: models[n] for n in group}, loader, first.label_names)
            got[split] = y
            for i, n in enumerate(group):
                parts.setdefault(n, {})[split] = (p[i], present[i])
        if ref is None:
            ref = (group, got)
        elif any(got[s].shape != ref[1][s].shape or not torch.equal(got[s], ref[1][s]) for s in got):
            raise ValueError(f"runs {group} and {ref[0]} were trained on different data: their val/test samples "
                             "do not line up, so they cannot be combined sample by sample; pass data=... to "
                             "score all on one dataset")
    val, test = (Scored(torch.stack([parts[n][s][0] for n in models]), ref[1][s],
                        torch.stack([parts[n][s][1] for n in models])) for s in ("val", "test"))
    return val, test, first, groups


def collect_occluded(dms: list[tuple], models: dict[str, EmotionModule], labels: list[str], spec: Any,
                     seed: int) -> tuple[Scored, dict[str, dict | None]]:
    """Each model on the test split under occlusion ``spec`` (:class:`Scored`;
    :func:`emomm.analysis.occlusion.occluded_view`: pixels painted, meshes re-run for models
    that read landmarks, a face whose mesh is lost lacks them), and per model that reads
    landmarks how many faces kept a mesh (:func:`~emomm.analysis.occlusion.mesh_found`)."""
    parts, has, meshes, y = {}, {}, {}, None
    for group, dm in dms:
        modalities = list(dict.fromkeys(m for n in group for m in models[n].hparams.encoders))
        base = dm.splits["test"]
        dm.splits["test"], found = occluded_view(dm, "test", spec, seed, modalities)
        try:
            p, y, present = collect({n: models[n] for n in group}, dm.test_dataloader(), labels)
        finally:
            dm.splits["test"] = base
        for i, n in enumerate(group):
            parts[n], has[n] = p[i], present[i]
            if "landmarks" in models[n].hparams.encoders:
                meshes[n] = mesh_found(found)
    return Scored(torch.stack([parts[n] for n in models]), y, torch.stack([has[n] for n in models])), meshes


#: How ``test_models`` are scored, beside the ensemble's rule (recorded in metrics.json).
SCORING = ("ensemble: per sample, the mean (or weighted mean, or stacking input) over the runs that have any "
           "modality they read there; a run without its input (e.g. a landmark model on a face whose mesh was "
           "not found) is left out of that sample, the others renormalised (dropped: on how many samples). "
           "test_models: each run alone on every sample, from an empty input where its modality is absent "
           "(a landmark model alone: an all-zero mesh), as its own evaluation scores it")


def score_split(method: str, val: Scored, test: Scored, names: list[str], k: int) -> tuple[dict[str, Any], list]:
    """The ensemble (fitted on ``val``) and each model on ``test``: ``{ensemble, models,
    dropped}`` (``dropped``: per model, on how many test samples it lacked its input and was
    left out of the ensemble) and the ensemble's confusion matrix; also what was fitted."""
    probs, fitted = combine(method, val.probs, val.labels, test.probs, val.present, test.present)
    metrics, confmat = score(probs, test.labels, k)
    return ({"ensemble": metrics, "models": {n: score(test.probs[i], test.labels, k)[0] for i, n in enumerate(names)},
             "dropped": dict(zip(names, dropped(test.present)))}, confmat, fitted)


def occlusion_table(cfg: DictConfig, dms: list[tuple], models: dict[str, EmotionModule], labels: list[str],
                    val: Scored, clean: dict[str, Any]) -> dict[str, Any]:
    """``occlusion=[...]``: the ensemble (fitted on the clean ``val``) and each model on the
    test split clean and under each condition (:func:`score_split`): ``test_occlusion``
    ``{condition: {ensemble, models, dropped}}`` and, for models reading landmarks, ``test_occlusion_mesh``."""
    specs = parse_occlusions(to_plain(cfg.get("occlusion")))
    if not specs:
        return {}
    table = {"clean": clean}
    meshes = {"clean": {n: mesh_found(getattr(dm.splits["test"], "found", None)) for g, dm in dms for n in g
                        if "landmarks" in models[n].hparams.encoders}}
    for spec in specs:
        test, meshes[spec.name] = collect_occluded(dms, models, labels, spec, cfg.seed)
        table[spec.name] = score_split(cfg.method, val, test, list(models), len(labels))[0]
        print(f"occlusion {spec.name}: ensemble acc {100 * table[spec.name]['ensemble']['acc']:.2f}; " + ", ".join(
            f"{n} {100 * m['acc']:.2f}" for n, m in table[spec.name]["models"].items())
            + "".join(f"; {n}'s mesh found on {m['found']}/{m['faces']}" for n, m in meshes[spec.name].items() if m)
            + "".join(f"; {n} left out on {c}" for n, c in table[spec.name]["dropped"].items() if c))
    return {"test_occlusion": table} | ({"test_occlusion_mesh": meshes} if any(meshes.values()) else {})


def ensemble(cfg: DictConfig) -> dict[str, Any]:
    """Combine ``cfg.runs`` by ``cfg.method`` and score the ensemble; returns what metrics.json holds."""
    L.seed_everything(cfg.seed, workers=True)
    out_dir = Path(cfg.paths.output_dir)
    paths = [resolve_run(str(r)) for r in cfg.runs]
    if len(paths) < 2:
        raise ValueError(f"runs= lists {len(paths)} run; an ensemble needs at least two")
    models, ckpts = {}, {}
    for name, c in zip(member_names(paths), paths):
        models[name] = EmotionModule.load_from_checkpoint(c, map_location="cpu").eval()
        ckpts[name] = c
    parse_occlusions(to_plain(cfg.get("occlusion")))  # a bad spec fails before any scoring
    dms = group_datamodules(cfg, models, ckpts)
    val, test, dm, groups = collect_all(cfg, models, ckpts, dms)
    labels = dm.label_names
    if dm.splits["test"] is dm.splits["val"] and cfg.method != "mean":
        log.warning("the data's test split is its validation split: %s is fitted and scored on the same "
                    "samples, so its figures are optimistic", cfg.method)
    clean, confmat, fitted = score_split(cfg.method, val, test, list(models), len(labels))
    metrics, per_model = clean["ensemble"], clean["models"]
    summary = {"method": cfg.method, "runs": [str(c) for c in paths], "test": metrics,
               "test_models": per_model, "test_dropped": clean["dropped"], "scoring": SCORING, "fitted": fitted,
               "label_names": labels, "input_groups": groups,
               "data_sizes": {s: len(dm.splits[s]) for s in ("val", "test")}, "data": to_plain(cfg.get("data"))}
    summary |= occlusion_table(cfg, dms, models, labels, val, clean)
    write_json(out_dir / "metrics.json", summary)
    save_confusion_matrix(confmat, labels, out_dir, f"ensemble ({cfg.method})")
    keys = ["acc", "uar", "f1_macro", "f1_weighted"]
    with atomic_open(out_dir / "ensemble.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", *keys])
        for name, m in [*per_model.items(), (f"ensemble:{cfg.method}", metrics)]:
            w.writerow([name, *[f"{m[k_]:.6f}" for k_ in keys]])
    for name, m in per_model.items():
        left = clean["dropped"][name]
        print(f"{name:>40}: UAR {100 * m['uar']:.2f}  acc {100 * m['acc']:.2f}"
              + (f"  (left out of the ensemble on {left} samples without its input)" if left else ""))
    print("\n" + metrics_table(metrics, f"ensemble ({cfg.method}) of {len(models)} runs, test metrics (%)"))
    return summary
