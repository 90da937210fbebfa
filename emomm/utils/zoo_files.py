"""The on-disk form of a model-zoo entry, read without running code from it.

A zoo entry is a folder ``<zoo dir>/<name>/`` (the zoo dir is ``$EMOMM_ZOO_DIR``, else
``emomm/zoo/models`` inside the package, so wheels and a clone carry it) holding:

* ``weights.safetensors``: the trained weights (fp16 where parity with fp32 held, else fp32);
  safetensors holds tensors only, never a pickle;
* ``hparams.json``: the module's constructor arguments (the checkpoint's ``hyper_parameters``,
  checked against the ``_target_`` allow-list before anything is built, as a checkpoint's are)
  and the Lightning version that wrote it;
* ``card.yaml``: the model card (:mod:`emomm.zoo.cards`); its ``files`` section holds the
  SHA-256 of both files above, checked on every load: a changed file is refused, naming it;
* ``card.md``: the card rendered for people.

:func:`checkpoint_bytes` turns an entry into the bytes of an ordinary weights-only checkpoint
(in memory: nothing is written), so :func:`emomm.utils.safe_load.read_checkpoint`, and with it
every loader of emomm, takes a zoo entry wherever it takes a ``.ckpt``; ``ckpt_path=zoo:NAME``
names one (:func:`entry_dir`). A bundle (``kind: bundle``) has a card and no weights of its
own: its members are zoo models. So has an ensemble (``kind: ensemble``): the mean of the
probabilities of its ``members``, zoo models of one modality (:func:`ensemble_members`), each
pinned by its weights' SHA-256 on the ensemble's card.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load as load_safetensors  # tensors only, never a pickle

#: Environment variable naming another zoo folder (tests, a locally built zoo).
ZOO_DIR_ENV = "EMOMM_ZOO_DIR"
#: The zoo shipped inside the package.
PACKAGED_ZOO = Path(__file__).resolve().parents[1] / "zoo" / "models"
#: How a checkpoint path names a zoo entry: ``ckpt_path=zoo:face-fer2013``.
PREFIX = "zoo:"
WEIGHTS, HPARAMS, CARD, CARD_MD = "weights.safetensors", "hparams.json", "card.yaml", "card.md"
#: The fix for a changed or missing entry file.
REBUILD = ("reinstall emomm (or `git checkout emomm/zoo/models`), or rebuild the entry with "
           "`python -m emomm.zoo.build NAME`")


class ZooEntryError(ValueError):
    """A zoo entry that cannot be used (unknown name, missing or changed file); the message
    names the file and the fix. :mod:`emomm.utils.safe_load` raises it on as a CheckpointError."""


def zoo_dir() -> Path:
    """``$EMOMM_ZOO_DIR`` when set, else the zoo inside the package."""
    env = os.environ.get(ZOO_DIR_ENV)
    return Path(env).expanduser() if env else PACKAGED_ZOO


def names(root: Path | None = None) -> list[str]:
    """The entries (models and bundles) of the zoo at ``root`` (default :func:`zoo_dir`), sorted."""
    root = zoo_dir() if root is None else Path(root)
    return sorted(p.name for p in root.iterdir() if (p / CARD).is_file()) if root.is_dir() else []


def is_zoo_ref(value: Any) -> bool:
    """Whether ``value`` is a ``zoo:NAME`` reference."""
    return isinstance(value, str) and value.startswith(PREFIX)


def is_entry(path: str | Path) -> bool:
    """Whether ``path`` is a zoo entry's folder (one holding a ``card.yaml``)."""
    return Path(path).is_dir() and (Path(path) / CARD).is_file()


def entry_dir(name: str, root: Path | None = None) -> Path:
    """The folder of the entry ``name`` (``zoo:NAME`` or ``NAME``); an unknown name is a
    :class:`ZooEntryError` listing the names there are."""
    name = name[len(PREFIX):] if is_zoo_ref(name) else name
    root = zoo_dir() if root is None else Path(root)
    folder = root / name
    if not name or "/" in name or "\\" in name or name.startswith(".") or not is_entry(folder):
        known = ", ".join(names(root)) or "none: the zoo is empty"
        where = f"${ZOO_DIR_ENV}={root}" if os.environ.get(ZOO_DIR_ENV) else str(root)
        raise ZooEntryError(f"zoo:{name}: no such model in the zoo ({where}); the zoo has: {known} "
                            "(`python -m emomm.zoo` lists them)")
    return folder


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_card(folder: str | Path) -> dict[str, Any]:
    """The entry's ``card.yaml`` (plain YAML: ``safe_load``, no tags, no code)."""
    path = Path(folder) / CARD
    try:
        card = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ZooEntryError(f"{path}: cannot be read as a model card ({type(err).__name__}: "
                            f"{str(err)[:160]}); {REBUILD}") from None
    if not isinstance(card, dict) or not card.get("name"):
        raise ZooEntryError(f"{path}: is not a model card (no name); {REBUILD}")
    return card


def verified_file(folder: str | Path, card: dict[str, Any], key: str) -> bytes:
    """The bytes of the file the card's ``files.<key>`` names, once their SHA-256 matches
    the card's; a missing or changed file is a :class:`ZooEntryError` naming it."""
    spec = (card.get("files") or {}).get(key) or {}
    if not spec.get("file") or not spec.get("sha256"):
        raise ZooEntryError(f"{Path(folder) / CARD}: names no {key} file with its sha256; {REBUILD}")
    path = Path(folder) / str(spec["file"])
    if path.parent != Path(folder) or not path.is_file():
        raise ZooEntryError(f"{path}: missing from the zoo entry; {REBUILD}")
    data = path.read_bytes()
    got = sha256_bytes(data)
    if got != spec["sha256"]:
        raise ZooEntryError(
            f"{path}: refused to load: its SHA-256 is {got}, not the {spec['sha256']} its card records: the "
            f"file was changed (tampered with, or damaged in a copy) since the entry was built; {REBUILD}")
    return data


def entry_checkpoint(folder: str | Path) -> dict[str, Any]:
    """The entry at ``folder`` as a checkpoint dict (``state_dict`` in fp32, ``hyper_parameters``,
    ``pytorch-lightning_version``), both files checked against the card's SHA-256 first."""
    folder = Path(folder)
    card = read_card(folder)
    if card.get("kind", "model") == "ensemble":
        members = [str(m.get("name")) for m in card.get("members") or []]
        raise ZooEntryError(f"zoo:{card['name']} is a mean ensemble of {', '.join('zoo:' + m for m in members)}, "
                            f"not one model: this needs one model, so give one of its members (ckpt_path=zoo:"
                            f"{members[0] if members else 'NAME'}); predict, serve, live and Predictor.from_pretrained "
                            "take the ensemble whole")
    if card.get("kind", "model") != "model":
        raise ZooEntryError(f"{folder}: zoo:{card['name']} is a {card.get('kind')}, not one model: load it with "
                            "emomm.zoo.load_bundle / Predictor.from_pretrained")
    weights = verified_file(folder, card, "weights")
    try:
        meta = json.loads(verified_file(folder, card, "hparams"))
        state = load_safetensors(weights)
    except (ValueError, RuntimeError) as err:  # (a checksum held: a file built wrongly)
        raise ZooEntryError(f"{folder}: cannot be read ({type(err).__name__}: {str(err)[:160]}); {REBUILD}") from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    # an entry shipped without its frozen pretrained weights names them by their SHA-256
    # (EmotionModule.on_load_checkpoint fills them in from the installed model once it matches)
    extra = {"pretrained_sha256": meta["pretrained_sha256"]} if meta.get("pretrained_sha256") else {}
    return {"state_dict": state, "hyper_parameters": meta["hyper_parameters"],
            "pytorch-lightning_version": meta.get("pytorch-lightning_version", "2.0.0"), **extra}


def ensemble_members(path: str | Path) -> list[Path] | None:
    """The member entries' folders of the ensemble entry at ``path`` (same zoo), each checked
    to be a model whose weights' SHA-256 is the one the ensemble's card pins; None when
    ``path`` is not an ensemble entry. A member missing or rebuilt since is a
    :class:`ZooEntryError` naming it."""
    folder = Path(path)
    if not is_entry(folder):
        return None
    card = read_card(folder)
    if card.get("kind") != "ensemble":
        return None
    out = []
    for m in card.get("members") or []:
        try:
            member = entry_dir(str(m["name"]), folder.parent)
        except ZooEntryError:
            raise ZooEntryError(f"{folder / CARD}: its member zoo:{m['name']} is not in the zoo at {folder.parent}; "
                                f"{REBUILD}") from None
        got = ((read_card(member).get("files") or {}).get("weights") or {}).get("sha256")
        if got != m.get("weights_sha256"):
            raise ZooEntryError(f"{member / CARD}: zoo:{m['name']} has weights {got}, not the {m.get('weights_sha256')} "
                                f"the ensemble zoo:{card['name']} was built with; {REBUILD}")
        out.append(member)
    if len(out) < 2:
        raise ZooEntryError(f"{folder / CARD}: an ensemble names two or more members; {REBUILD}")
    return out


def checkpoint_bytes(folder: str | Path) -> bytes:
    """:func:`entry_checkpoint` saved as a weights-only checkpoint, in memory."""
    buf = io.BytesIO()
    torch.save(entry_checkpoint(folder), buf)
    return buf.getvalue()
