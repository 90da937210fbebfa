"""Names that moved: old checkpoints and configs keep loading after a class or module moves.

A checkpoint stores the dotted ``_target_`` of every building block it was trained with
(encoders, fusion, schedulers, the data module of its stored data config), and a groups file
names its group source the same way. When a module moves or a class is renamed, those files
would no longer build. :func:`upgrade_targets` rewrites the old names to the new ones before
the config is checked (:func:`emomm.utils.targets.check_targets`) and built, so a checkpoint
written before the move predicts exactly as before.

Add a line here whenever a ``_target_``-able name moves (``grep -rn _target_ conf``):

* :data:`MOVED_MODULES`: ``old.module -> new.module`` when a whole module moved (every name
  in it keeps its own name);
* :data:`MOVED_NAMES`: ``old.module.Name -> new.module.NewName`` when one name moved or was
  renamed (checked first).

Never remove a line: a checkpoint trained before the move may be loaded years later.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

#: ``old.module -> new.module``. Sections by area of the package, so moves do not collide.
MOVED_MODULES: dict[str, str] = {
    # -- models, callbacks ---------------------------------------------------------------------
    "emomm.models.encoders.face": "emomm.models.encoders.face_timm",
    "emomm.models.encoders.video": "emomm.models.encoders.video_temporal",
    "emomm.models.encoders.voice": "emomm.models.encoders.voice_cnn_lstm",
    "emomm.models.encoders.text": "emomm.models.encoders.text_transformer",
    "emomm.utils.ema": "emomm.callbacks.ema",
    "emomm.utils.lookahead": "emomm.callbacks.lookahead",
    "emomm.utils.small_crops": "emomm.callbacks.small_crops",
    "emomm.utils.last_epoch": "emomm.callbacks.last_epoch",
    "emomm.utils.wandb_report": "emomm.callbacks.wandb_report",

    # -- data, faces, groups -------------------------------------------------------------------
    # issue 43: the DataModules of stored data configs moved into emomm/data/datasets/
    "emomm.data.cremad": "emomm.data.datasets.cremad",
    "emomm.data.cremad_video": "emomm.data.datasets.cremad_video",
    "emomm.data.face_photos": "emomm.data.datasets.face_photos",
    "emomm.data.fer2013": "emomm.data.datasets.fer2013",
    "emomm.data.meld": "emomm.data.datasets.meld",
    "emomm.data.paired": "emomm.data.datasets.paired",
    "emomm.data.ravdess": "emomm.data.datasets.ravdess",
    "emomm.data.ravdess_video": "emomm.data.datasets.ravdess_video",
    "emomm.data.text_csv": "emomm.data.datasets.text_csv",
    "emomm.data.video_folder": "emomm.data.datasets.video_folder",

    # -- inference, live, serve, analysis, entry points ----------------------------------------

}

#: ``old.module.Name -> new.module.Name``: single names moved or renamed.
MOVED_NAMES: dict[str, str] = {
    # -- models, callbacks ---------------------------------------------------------------------
    "emomm.utils.resume.ResumeState": "emomm.callbacks.resume_state.ResumeState",  # the rest of utils.resume stayed

    # -- data, faces, groups -------------------------------------------------------------------
    # issue 43: group sources (conf/groups/*.yaml) live beside their datasets, not in the analysis
    "emomm.analysis.groups.RavdessSex": "emomm.data.datasets.ravdess.RavdessSex",
    "emomm.analysis.groups.CremadDemographics": "emomm.data.datasets.cremad.CremadDemographics",
    "emomm.analysis.groups.CsvGroups": "emomm.data.core.group_sources.CsvGroups",

    # -- inference, live, serve, analysis, entry points ----------------------------------------

}

TARGET_KEY = "_target_"


def moved_name(target: str) -> str:
    """The current dotted name of ``target`` (itself when it did not move).

    >>> moved_name("emomm.models.module.EmotionModule")
    'emomm.models.module.EmotionModule'
    """
    if target in MOVED_NAMES:
        return MOVED_NAMES[target]
    module, _, name = target.rpartition(".")
    return f"{MOVED_MODULES[module]}.{name}" if module in MOVED_MODULES else target


def upgrade_targets(cfg: Any) -> Any:
    """``cfg`` (nested mappings and lists, plain or OmegaConf) with every ``_target_`` string
    renamed by :func:`moved_name`; a new object of the same kind, ``cfg`` itself untouched.
    Interpolations stay as written (they are refused later, not resolved here)."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.create(upgrade_targets(OmegaConf.to_container(cfg, resolve=False)))
    stack: list[Any] = []
    out = _copy(cfg, stack)
    while stack:  # iterative: a deep file cannot exhaust the stack
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            if key == TARGET_KEY and isinstance(value, str):
                node[key] = moved_name(value)
            else:
                node[key] = _copy(value, stack)
    return out


def _copy(value: Any, stack: list[Any]) -> Any:
    """A shallow copy of a mapping (as ``dict``) or list/tuple (as ``list``), queued on
    ``stack`` for its children; anything else as it is."""
    if isinstance(value, Mapping):
        copy: Any = dict(value)
    elif isinstance(value, (list, tuple)):
        copy = list(value)
    else:
        return value
    stack.append(copy)
    return copy
