"""Bundles: unimodal zoo models combined at decision level (``face-voice``, ``face-voice-text``).

A bundle's card (``kind: bundle``) lists its ``members`` (zoo model names), each with its
``modality``, its ``temperature`` (from the member's own card: fitted on its own validation
split), its fusion ``weight`` (chosen on validation data, :func:`choose_weights`) and an
explicit ``label_map`` from the member's labels onto the bundle's ``labels``. Several member
labels may map onto one bundle label, their probabilities adding up: RAVDESS's ``calm`` is
merged into ``neutral`` (:data:`SYNONYMS`), so FER2013's 7 classes are the bundle's.

Fusion (:func:`fuse`), for one input: each present member's probabilities, temperature-scaled
(``softmax(z / T)``), mapped onto the bundle's labels, then their weighted mean over the
members present (the weights of the absent ones dropped and the rest renormalised), so any
subset of modalities works: face only, voice only, both.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from emomm.zoo.cards import write_card

#: Member label -> bundle label where the names differ (RAVDESS -> FER2013's names).
SYNONYMS = {"calm": "neutral", "fearful": "fear", "surprised": "surprise", "anger": "angry",
            "happiness": "happy", "sadness": "sad", "joy": "happy"}

#: What the card says about the mapping (written onto bundle cards).
MAPPING_NOTE = ("Each member's classes are mapped onto the bundle's by name (synonyms: "
                + ", ".join(f"{a} -> {b}" for a, b in SYNONYMS.items())
                + "); the probabilities of classes mapped onto one label add up. RAVDESS's 'calm' has no FER2013 "
                  "class: it is merged into 'neutral' (both are low-arousal, neutral-valence speech). A bundle "
                  "label a member lacks gets probability 0 from that member.")


def default_label_map(member_labels: Sequence[str], labels: Sequence[str]) -> dict[str, str]:
    """``{member label: bundle label}`` by name or :data:`SYNONYMS`; a member label that maps
    onto none of ``labels`` is a ValueError naming it (say where it goes in the card)."""
    out = {}
    for name in member_labels:
        target = name if name in labels else SYNONYMS.get(name)
        if target not in labels:
            raise ValueError(f"member label {name!r} maps onto none of the bundle's labels {list(labels)}: "
                             "give it a label_map entry")
        out[name] = target
    return out


def mapping_matrix(member_labels: Sequence[str], labels: Sequence[str], label_map: Mapping[str, str]) -> np.ndarray:
    """``[K_member, K_bundle]`` 0/1 matrix: member probabilities ``@`` it are the bundle's."""
    m = np.zeros((len(member_labels), len(labels)), np.float64)
    for i, name in enumerate(member_labels):
        if label_map.get(name) not in labels:
            raise ValueError(f"label_map sends member label {name!r} to {label_map.get(name)!r}, "
                             f"not one of the bundle's labels {list(labels)}")
        m[i, list(labels).index(label_map[name])] = 1.0
    return m


def scaled_probs(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(z / T)`` from ``probs = softmax(z)`` ``[N, K]`` (the same: ``p ** (1/T)`` renormalised)."""
    logp = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, None)) / float(temperature)
    logp -= logp.max(-1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(-1, keepdims=True)


def member_probs(card: Mapping[str, Any], member: Mapping[str, Any], member_labels: Sequence[str],
                 probs: np.ndarray) -> np.ndarray:
    """One member's probabilities ``[N, K_member]`` -> temperature-scaled, on the bundle's labels ``[N, K]``."""
    return scaled_probs(probs, member.get("temperature", 1.0)) @ mapping_matrix(
        member_labels, card["labels"], member["label_map"])


def fuse(card: Mapping[str, Any], mapped: Mapping[str, np.ndarray], weights: Mapping[str, float] | None = None) -> np.ndarray:
    """The weighted mean ``[N, K]`` of the present members' mapped probabilities ``mapped``
    (``{member name: [N, K]}``, from :func:`member_probs`), weights renormalised over them."""
    if not mapped:
        raise ValueError(f"bundle {card['name']}: no member had an input; it takes "
                         f"{[m['modality'] for m in card['members']]}")
    weights = weights or {m["name"]: float(m.get("weight", 1.0)) for m in card["members"]}
    total = sum(weights[n] for n in mapped)
    if total <= 0:  # every present member weighted 0: their plain mean rather than nothing
        return np.mean([mapped[n] for n in mapped], axis=0)
    return sum(weights[n] * mapped[n] for n in mapped) / total


def _nll(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None))))


def choose_weights(card: Mapping[str, Any], mapped: Mapping[str, np.ndarray], y: np.ndarray,
                   step: float = 0.05) -> tuple[dict[str, float], float]:
    """The member weights (on a grid of ``step``, summing to 1) whose fusion of the validation
    inputs ``mapped`` (``{member: [N, K]}``, all members on the same N inputs) has the lowest
    negative log-likelihood of the labels ``y`` (indices into the bundle's labels); returns
    ``(weights, nll)``. Ties keep the most even weights."""
    names = [m["name"] for m in card["members"] if m["name"] in mapped]
    if len(names) < 2:
        return {n: 1.0 for n in names}, _nll(fuse(card, mapped, {n: 1.0 for n in names}), y)
    n_steps = int(round(1 / step))
    best: tuple[float, float, dict[str, float]] | None = None
    for combo in itertools.product(range(n_steps + 1), repeat=len(names) - 1):
        if sum(combo) > n_steps:
            continue
        w = dict(zip(names, [c / n_steps for c in combo] + [(n_steps - sum(combo)) / n_steps]))
        score = (_nll(fuse(card, mapped, w), y), float(np.var(list(w.values()))))
        if best is None or score < best[:2]:
            best = (*score, w)
    return best[2], best[0]


def bundle_card(name: str, labels: Sequence[str], members: Sequence[Mapping[str, Any]],
                **sections: Any) -> dict[str, Any]:
    """A bundle's card: ``members`` are ``{name, modality, labels, temperature?, weight?,
    label_map?}`` (the member's labels give its default :func:`default_label_map`)."""
    rows = []
    for m in members:
        label_map = dict(m.get("label_map") or default_label_map(m["labels"], labels))
        mapping_matrix(m["labels"], labels, label_map)  # every member label goes somewhere
        rows.append({"name": m["name"], "modality": m["modality"], "weight": float(m.get("weight", 1.0 / len(members))),
                     "temperature": float(m.get("temperature", 1.0)), "label_map": label_map})
    return {"name": name, "kind": "bundle", "labels": list(labels), "members": rows,
            "label_mapping": MAPPING_NOTE, **sections}


def write_bundle(folder: str | Path, card: dict[str, Any]) -> Path:
    """Write the bundle's ``card.yaml`` + ``card.md`` into ``folder``."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return write_card(folder, card)
