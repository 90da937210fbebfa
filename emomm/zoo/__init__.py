"""The model zoo: named pretrained models (and bundles of them) that ship inside the package.

    import emomm.zoo
    emomm.zoo.names()                     # ['face-fer2013', 'face-voice', ...]
    emomm.zoo.card("face-fer2013")        # the model card (dict)
    module = emomm.zoo.load("face-fer2013")   # an EmotionModule, weights checked by SHA-256

Everything that takes a checkpoint takes ``zoo:NAME`` (``ckpt_path=zoo:face-fer2013`` in
predict, eval, export, live, serve, personalize, ensemble; :mod:`emomm.utils.zoo_files`), and
``Predictor.from_pretrained(NAME)`` / ``BundlePredictor.from_pretrained(BUNDLE)`` wrap them.
``$EMOMM_ZOO_DIR`` points at another zoo folder (tests, a local build). ``python -m emomm.zoo``
lists the entries with their key figures, ``python -m emomm.zoo show NAME`` prints a card;
``python -m emomm.zoo.build NAME`` (``make zoo``) trains, scores and packages them.
"""
from __future__ import annotations

from typing import Any

from emomm.models.module import EmotionModule
from emomm.utils.runtime import resolve_ckpt
from emomm.utils.safe_load import CheckpointNotFoundError
from emomm.utils.zoo_files import PREFIX, ZooEntryError, entry_dir, read_card, zoo_dir
from emomm.utils.zoo_files import names as _names

__all__ = ["load", "names", "card", "folder", "default_name", "default_checkpoint", "zoo_dir", "entry_dir", "ZooEntryError"]

#: What live mode and the web app serve without a ckpt_path, best first: the face + voice
#: bundle when it is built (its members with it), else the face model.
DEFAULTS = ("face-voice", "face-fer2013")


def names() -> list[str]:
    """Every entry of the zoo (models and bundles), sorted."""
    return _names()


def folder(name: str):
    """The entry's folder (``zoo:`` prefix optional); an unknown name is a
    :class:`~emomm.utils.safe_load.CheckpointNotFoundError` listing the zoo."""
    return resolve_ckpt(name if name.startswith(PREFIX) else PREFIX + name, ".")


def card(name: str) -> dict[str, Any]:
    """The card of the entry ``name`` (``zoo:`` prefix optional)."""
    return read_card(folder(name))


def load(name: str, map_location: Any = "cpu") -> EmotionModule:
    """The zoo model ``name`` as an :class:`~emomm.models.module.EmotionModule` in eval mode:
    its weights and hyper-parameters checked against the card's SHA-256, its ``_target_``\\ s
    against the allow-list, no pickle read."""
    return EmotionModule.load_from_checkpoint(folder(name), map_location=map_location).eval()


def _complete(name: str) -> bool:
    """Whether the entry ``name`` is in the zoo with every member it names."""
    try:
        c = read_card(entry_dir(name))
        for m in c.get("members") or []:
            entry_dir(m["name"])
    except ZooEntryError:
        return False
    return True


def default_name() -> str:
    """The best entry of :data:`DEFAULTS` the zoo has (``face-voice`` when built, else
    ``face-fer2013``); a :class:`ZooEntryError` when it has none."""
    for name in DEFAULTS:
        if _complete(name):
            return name
    raise ZooEntryError(f"the zoo at {zoo_dir()} has none of the default models ({', '.join(DEFAULTS)}): give "
                        "ckpt_path=..., or build one with `python -m emomm.zoo.build face-fer2013`")


def default_checkpoint(ckpt_path) -> tuple[str, str | None]:
    """``(ckpt_path, start-up line)``: ``ckpt_path`` as given, or when it is None the zoo's
    best default (:func:`emomm.zoo.default_name`: the face-voice bundle when built, else the
    face model) and the line that says so."""
    if ckpt_path is not None:
        return ckpt_path, None
    try:
        name = default_name()
    except ZooEntryError as err:
        raise CheckpointNotFoundError(str(err)) from None
    return f"zoo:{name}", f"no ckpt_path given: using zoo:{name}, the zoo's default (ckpt_path=... picks another)"
