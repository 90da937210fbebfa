"""Bundles: unimodal zoo models combined at decision level (``face-voice``, ``face-voice-text``).

A bundle's card (``kind: bundle``) lists its ``members`` (zoo model names), each with its
``modality``, its ``temperature`` (from the member's own card: fitted on its own validation
split), its fusion ``weight`` (chosen on validation data, :func:`choose_weights`) and an
explicit ``label_map`` from the member's labels onto the bundle's ``labels``. Several member
labels may map onto one bundle label, their probabilities adding up: RAVDESS's ``calm`` is
merged into ``neutral`` (:data:`SYNONYMS`), so FER2013's 7 classes are the bundle's.

Fusion (:func:`fuse`), for one input: each present member's probabilities, temperature-scaled
(``softmax(z / T)``; a member whose shipped weights already divide by their temperature, the
zoo's calibrated copies, says ``temperature_in_model: true`` and is not scaled twice), mapped
onto the bundle's labels, then their weighted mean over the members present (the weights of
the absent ones dropped and the rest renormalised), so any subset of modalities works: face
only, voice only, both.

:data:`BUNDLES` names the bundles the zoo builds (``python -m emomm.zoo.build face-voice``,
:func:`build_bundle`): the member models must be in the zoo already; their temperatures come
from their cards, their weights from :func:`choose_weights` on paired validation predictions
when such data exists, else equal, and the card says which and why.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from emomm.utils.zoo_files import ZooEntryError, entry_dir, read_card, zoo_dir
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
    """One member's probabilities ``[N, K_member]`` -> temperature-scaled (unless the member's
    model applies its temperature itself), on the bundle's labels ``[N, K]``."""
    t = 1.0 if member.get("temperature_in_model") else member.get("temperature", 1.0)
    return scaled_probs(probs, t) @ mapping_matrix(
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
                     "temperature": float(m.get("temperature", 1.0)),
                     "temperature_in_model": bool(m.get("temperature_in_model", False)), "label_map": label_map})
    return {"name": name, "kind": "bundle", "labels": list(labels), "members": rows,
            "label_mapping": MAPPING_NOTE, **sections}


def write_bundle(folder: str | Path, card: dict[str, Any]) -> Path:
    """Write the bundle's ``card.yaml`` + ``card.md`` into ``folder``."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return write_card(folder, card)


#: The bundles the zoo builds: ``{name: member zoo models}``; the first member's labels are the
#: bundle's (FER2013's 7 classes: the others map onto them, :data:`SYNONYMS`).
BUNDLES: dict[str, tuple[str, ...]] = {
    "face-voice": ("face-fer2013", "voice-ravdess"),
    "face-voice-text": ("face-fer2013", "voice-ravdess", "text-meld"),
}

#: Why the members are weighted equally when no paired validation data exists (on the card).
EQUAL_WEIGHTS_WHY = ("equal weights after temperature scaling: no validation data pairs the members' modalities "
                     "(FER2013 has faces only, RAVDESS as shipped speech only, MELD text only), and weights "
                     "chosen on one member's own validation split would say nothing about the others; each "
                     "member's temperature was fitted on its own validation split, so its probabilities are "
                     "comparable in confidence")


def member_row(name: str, card: Mapping[str, Any], hparams_calibrated: bool) -> dict[str, Any]:
    """The bundle card's row for the zoo model ``name`` from its card: modality, labels and
    the temperature fitted on its own validation split (``temperature_in_model`` when its
    shipped weights already apply it)."""
    if card.get("kind", "model") not in ("model", "ensemble"):
        raise ValueError(f"zoo:{name} is a {card.get('kind')}: a bundle's members are models or ensembles")
    temperature = (card.get("calibration") or {}).get("temperature")
    return {"name": name, "modality": card["modality"], "labels": list(card["labels"]),
            "temperature": float(temperature or 1.0),
            "temperature_in_model": bool(hparams_calibrated and temperature)}


def _calibrated_in_model(folder: Path) -> bool:
    """Whether the entry's stored hyper-parameters carry a fitted temperature (its model
    divides its logits by it)."""
    try:
        hp = json.loads((folder / "hparams.json").read_text()).get("hyper_parameters") or {}
    except (OSError, ValueError):
        return False
    return bool((hp.get("calibration") or {}).get("temperature"))


def build_bundle(name: str, root: str | Path | None = None, members: Sequence[str] | None = None,
                 paired: tuple[Mapping[str, np.ndarray], np.ndarray] | None = None,
                 command: str = "") -> Path:
    """Write the bundle ``name`` into the zoo at ``root`` (default :func:`zoo_dir`) from its
    members' cards (:data:`BUNDLES`, or ``members``). ``paired``: ``({member: probs [N, K_member]},
    labels [N] on the bundle's labels)`` of paired validation inputs, from which the weights are
    chosen (:func:`choose_weights`); without it the weights are equal (:data:`EQUAL_WEIGHTS_WHY`).
    A member missing from the zoo is a :class:`ZooEntryError` naming it and how to build it."""
    root = Path(root) if root else zoo_dir()
    names = list(members or BUNDLES.get(name) or ())
    if not names:
        raise ValueError(f"no bundle named {name!r}; bundles: {', '.join(BUNDLES)}")
    rows = []
    for member in names:
        try:
            folder = entry_dir(member, root)
        except ZooEntryError:
            raise ZooEntryError(f"bundle {name}: its member zoo:{member} is not in the zoo at {root}; build it "
                                f"first: python -m emomm.zoo.build {member}") from None
        rows.append(member_row(member, read_card(folder), _calibrated_in_model(folder)))
    labels = rows[0]["labels"]
    card = bundle_card(name, labels, rows)
    if paired is not None:
        probs, y = paired
        mapped = {m["name"]: member_probs(card, m, next(r["labels"] for r in rows if r["name"] == m["name"]),
                                          probs[m["name"]]) for m in card["members"] if m["name"] in probs}
        weights, nll = choose_weights(card, mapped, np.asarray(y))
        chosen = {"how": "weights on a 0.05 grid with the lowest NLL of the fused prediction", "n": int(len(y)),
                  "nll": nll}
    else:
        weights = {r["name"]: 1.0 / len(rows) for r in rows}
        chosen = {"how": "equal", "why": EQUAL_WEIGHTS_WHY}
    for m in card["members"]:
        m["weight"] = float(weights.get(m["name"], 0.0))
    modalities = [r["modality"] for r in rows]
    card.update({
        "modality": "+".join(modalities),
        "input": "any subset of: " + ", ".join(modalities) + " (each member takes its own input; members "
                 "without one are left out and the others' weights renormalised)",
        "weights_chosen_on": chosen,
        "training_data": {"licence": "the most restrictive of the members' (see each member's card): "
                          + "; ".join(f"{r['name']}: {(read_card(entry_dir(r['name'], root)).get('training_data') or {}).get('licence', '?')}"
                                      for r in rows)},
        "intended_use": "research and demos: one emotion label from whichever of a face, a voice"
                        + (" and a text" if "text" in modalities else "") + " is present, with each member's "
                        "own prediction (simple mode) beside the fused one (hybrid mode)",
        "limitations": ["decision-level fusion of models trained on different people and data: the members "
                        "never saw the same person, so the fusion learnt no cross-modal cue",
                        "each member's limitations hold (see its card)"],
        "built": {"by": command or f"emomm.zoo.bundles.build_bundle({name!r})"},
    })
    return write_bundle(root / name, card).parent
