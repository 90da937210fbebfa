"""Model cards: the machine-readable ``card.yaml`` of a zoo entry, and its Markdown.

A card is written by :mod:`emomm.zoo.build` (no figure on it is typed by hand) and rendered
by :func:`render_markdown`; :func:`summary_row` gives the key figures ``python -m emomm.zoo``
lists. Sections (all optional but ``name`` and ``kind``):

``name``, ``kind`` (``model`` | ``bundle``), ``modality``, ``labels``, ``input``,
``training_data`` (dataset, licence, what it means for the weights), ``recipe`` (command, git
commit, seeds, the shipped seed, how it was chosen, variants tried), ``metrics`` (split,
per seed, mean, std), ``calibration`` (ECE before / after temperature scaling, temperature:
filled from ``python -m emomm.eval``'s output when it reports them), ``groups`` (per-group
gaps), ``occlusion`` (drop under occluders, faces), ``files`` (each file's name, SHA-256 and
size; the weights' dtype and fp16 parity), ``latency`` (CPU ms per input), ``intended_use``,
``limitations``, ``built`` (when and by which command); a bundle has ``members`` and
``label_mapping`` instead of weights.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf

from emomm.utils.atomic import atomic_write_text
from emomm.utils.zoo_files import CARD, CARD_MD

FORMAT = "emomm.zoo.card/1"
#: The headline metrics, in the order a listing shows the first present one.
HEADLINE = ("acc", "uar", "f1_weighted", "f1_macro")


def _pct(x: Any) -> str:
    return f"{100 * float(x):.1f}" if isinstance(x, (int, float)) else "-"


def runs_of(metrics: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What the metrics' spread is over (``seed`` or ``fold``: a cross-validation's folds) and
    the per-run figures."""
    return ("fold", metrics["per_fold"]) if metrics.get("per_fold") else ("seed", metrics.get("per_seed") or {})


def headline(card: dict[str, Any]) -> str:
    """``acc 69.9 ± 0.3 (val, 3 seeds)`` (or ``uar 67.7 ± 10.2 (5-fold CV)``) from the card's
    metrics (``metrics.headline`` names the metric, else the first of :data:`HEADLINE`), or ``-``."""
    m = card.get("metrics") or {}
    mean, std = m.get("mean") or {}, m.get("std") or {}
    key = m.get("headline") if m.get("headline") in mean else next((k for k in HEADLINE if k in mean), None)
    if key is None:
        return "-"
    unit, per = runs_of(m)
    n = len(per) or 1
    spread = f" ± {_pct(std[key])}" if key in std and n > 1 else ""
    where = f"{n}-fold CV" if unit == "fold" else f"{m.get('split', '?')}, {n} seed{'s' * (n > 1)}"
    return f"{key} {_pct(mean[key])}{spread} ({where})"


def size_bytes(card: dict[str, Any]) -> int:
    """The entry's files' total size, as its card records it."""
    return sum(int(f.get("bytes") or 0) for f in (card.get("files") or {}).values())


def summary_row(card: dict[str, Any]) -> dict[str, str]:
    """The key figures of one entry, for ``python -m emomm.zoo``."""
    lat = (card.get("latency") or {}).get("ms_per_input")
    members = ", ".join(m["name"] for m in card.get("members") or [])
    return {"name": card["name"], "kind": card.get("kind", "model"),
            "modality": card.get("modality") or members,
            "validation": headline(card),
            "size": f"{size_bytes(card) / 1e6:.1f} MB" if card.get("files") else "-",
            "cpu ms": f"{lat:.1f}" if isinstance(lat, (int, float)) else "-",
            "licence": str((card.get("training_data") or {}).get("licence") or "-")}


def _table(rows: list[list[str]], head: list[str]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


#: Metrics that are not fractions (shown as they are, not as percent).
RAW = frozenset({"nll", "loss"})


def _metric_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """``[metric, mean, std, per seed (or fold)]`` rows; the spread is "-" with one seed (there is none)."""
    mean, std, per = metrics.get("mean") or {}, metrics.get("std") or {}, runs_of(metrics)[1]
    keys = [k for k in HEADLINE if k in mean] + sorted(k for k in mean if k not in HEADLINE)

    def fmt(k: str, x: Any) -> str:
        return f"{float(x):.3f}" if k in RAW and isinstance(x, (int, float)) else _pct(x)
    return [[k, fmt(k, mean[k]), fmt(k, std.get(k)) if len(per) > 1 else "-",
             " / ".join(fmt(k, (per[s] or {}).get(k)) for s in per)] for k in keys]


def render_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown (``card.md``): every section the YAML has, figures as written."""
    out = [f"# {card['name']}", "", f"*{card.get('kind', 'model')}*"
           + (f", modality **{card['modality']}**" if card.get("modality") else "")
           + f". Generated from `{CARD}` by `emomm.zoo.cards`; do not edit by hand.", ""]
    if card.get("summary"):
        out += [str(card["summary"]), ""]
    if card.get("labels"):
        out += [f"**Labels** ({len(card['labels'])}): {', '.join(card['labels'])}", ""]
    if card.get("input"):
        out += [f"**Input**: {card['input']}", ""]
    if card.get("members"):
        out += ["## Members", ""] + _table(
            [[m["name"], str(m.get("modality", "")), f"{float(m.get('weight', 0)):.2f}",
              f"{float(m.get('temperature', 1.0)):.3f}",
              ", ".join(f"{a} -> {b}" for a, b in (m.get("label_map") or {}).items() if a != b) or "same names"]
             for m in card["members"]], ["model", "modality", "weight", "temperature", "labels mapped"]) + [""]
    if card.get("label_mapping"):
        out += ["## Label mapping", "", str(card["label_mapping"]), ""]
    data = card.get("training_data") or {}
    if data:
        out += ["## Training data", ""] + [f"- **{k}**: {v}" for k, v in data.items()] + [""]
    recipe = card.get("recipe") or {}
    if recipe:
        out += ["## Recipe", ""] + [f"- **{k}**: `{v}`" if k == "command" else f"- **{k}**: {v}"
                                    for k, v in recipe.items()] + [""]
    metrics = card.get("metrics") or {}
    if metrics:
        split = str(metrics.get("split", "?"))
        out += [f"## Metrics ({split}{' split' if split in ('train', 'val', 'test') else ''}, %)", ""]
        out += _table(_metric_rows(metrics), ["metric", "mean", "std", f"per {runs_of(metrics)[0]}"]) + [""]
        if metrics.get("note"):
            out += [str(metrics["note"]), ""]
    for section in ("calibration", "groups", "occlusion", "latency", "weights_chosen_on"):
        if card.get(section):
            out += [f"## {section.replace('_', ' ').capitalize()}", "", "```yaml",
                    yaml.safe_dump(card[section], sort_keys=False).rstrip(), "```", ""]
    files = card.get("files") or {}
    if files:
        out += ["## Files", ""] + _table(
            [[str(f.get("file")), f"{int(f.get('bytes') or 0):,}", str(f.get("dtype", "")), f"`{f.get('sha256', '')}`"]
             for f in files.values()], ["file", "bytes", "dtype", "sha256"]) + [""]
        parity = (files.get("weights") or {}).get("parity_max_prob_diff")
        if parity is not None:
            out += [f"fp16 parity: the largest probability difference from fp32 on the validation inputs "
                    f"was {float(parity):.2e} (shipped as fp16 when <= 1e-3).", ""]
    if card.get("intended_use"):
        out += ["## Intended use", "", str(card["intended_use"]), ""]
    if card.get("limitations"):
        out += ["## Limitations", ""] + [f"- {x}" for x in card["limitations"]] + [""]
    if card.get("built"):
        out += ["## Built", ""] + [f"- **{k}**: {v}" for k, v in card["built"].items()] + [""]
    return "\n".join(out).rstrip() + "\n"


def _plain(obj: Any) -> Any:
    """JSON's fallback for what a card may be handed: OmegaConf lists/dicts, numpy values."""
    if isinstance(obj, (DictConfig, ListConfig)):
        return OmegaConf.to_container(obj, resolve=True)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"a model card holds plain data only, not {type(obj).__name__}")


def write_card(folder: str | Path, card: dict[str, Any]) -> Path:
    """Write ``card.yaml`` and the ``card.md`` rendered from it into ``folder``; the YAML's path.
    The card is plain data (through JSON: keys become strings), so ``yaml.safe_load`` reads it."""
    folder = Path(folder)
    card = json.loads(json.dumps({"format": FORMAT, **card}, default=_plain))
    atomic_write_text(folder / CARD, yaml.safe_dump(card, sort_keys=False, allow_unicode=True))
    atomic_write_text(folder / CARD_MD, render_markdown(card))
    return folder / CARD
