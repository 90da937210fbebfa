"""Which callables a config read from a file may name: the ``_target_`` allow-list.

emomm builds models, data and callbacks from configs whose ``_target_`` names a callable that
Hydra's ``instantiate`` calls (recursively: a ``_target_`` nested anywhere in the arguments,
in lists or in ``_args_``, is called too, ``_partial_`` or not). A config the user wrote is
theirs to run; a config read from a file they did not write - a checkpoint's
``hyper_parameters`` (encoders, fusion, optimizer, scheduler, the stored data config), a
model card, a groups file - must not call anything but emomm's model building blocks, or
``builtins.open`` / ``os.system`` / ``shutil.copyfile`` would run on load.

:func:`check_targets` walks such a config and raises :class:`UnsafeTargetError` (naming the
file, the key path, the target and what to do) for the first ``_target_`` that is not:

* one of :data:`LIBRARY_TARGETS`, the few library classes emomm's configs name (exact names);
* one of :data:`EMOMM_FUNCTIONS`, the functions emomm's configs name (exact names);
* a class defined in emomm that is a model building block: a subclass of one of
  :data:`BUILDING_BLOCKS` (``nn.Module``: encoders, fusions, the LightningModule;
  ``LightningDataModule``; Lightning and Hydra callbacks; group sources). The dotted name
  must be plain (every part starts with a letter: no ``__builtins__``), is resolved the
  way Hydra resolves it, and the class's own ``__module__`` must be emomm's, so a name that
  reaches a library through an emomm module (``emomm.models.encoders.text_transformer.os.system``,
  ``...text.Path.write_text``) is refused, as is any other emomm function (some write files).

It also refuses OmegaConf interpolations (``${...}``) in such a config: ``instantiate``
resolves them, and a resolver such as ``oc.create`` builds new ``_target_``\\ s out of a
string. emomm.train stores resolved values, so its checkpoints hold none.

Every YAML under ``conf/`` passes (tested), so a new config cannot be silently refused.
"""
from __future__ import annotations

import functools
import inspect
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterator

from hydra._internal.utils import _locate  # what instantiate resolves names with
from omegaconf import DictConfig, ListConfig, OmegaConf

from emomm.utils.moved import upgrade_targets
from emomm.utils.safe_load import UnsafeCheckpointError, load_checkpoint

#: The library classes emomm's configs name (``grep -rhn _target_ conf``), by exact name, and
#: the common torch optimizers a run may swap in (``model.optimizer._target_=torch.optim.Adam``):
#: classes that compute, never read or write files.
LIBRARY_TARGETS = frozenset({
    "torch.optim.Adam",
    "torch.optim.AdamW",
    "torch.optim.NAdam",
    "torch.optim.RAdam",
    "torch.optim.RMSprop",
    "torch.optim.SGD",
    "lightning.pytorch.Trainer",
    "lightning.pytorch.callbacks.EarlyStopping",
    "lightning.pytorch.callbacks.LearningRateMonitor",
    "lightning.pytorch.callbacks.ModelCheckpoint",
    "lightning.pytorch.loggers.CSVLogger",
    "lightning.pytorch.loggers.TensorBoardLogger",
})

#: The emomm *functions* configs may name, by the function's own ``module.qualname``.
EMOMM_FUNCTIONS = frozenset({
    "emomm.models.encoders.text_transformer.resolve_pretrained",
    "emomm.models.fusion.auto_fusion",
    "emomm.models.schedulers.warmup_cosine",
    "emomm.models.schedulers.warmup_linear",
    "emomm.callbacks.wandb_report.wandb_logger",
})

#: Base classes (``module.qualname``) that make an emomm class a model building block.
BUILDING_BLOCKS = frozenset({
    "torch.nn.modules.module.Module",
    "lightning.pytorch.core.datamodule.LightningDataModule",
    "lightning.pytorch.callbacks.callback.Callback",
    "hydra.experimental.callback.Callback",
    "emomm.data.core.group_sources.GroupSource",
})

TARGET_KEY = "_target_"
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*")


class UnsafeTargetError(UnsafeCheckpointError):
    """A config read from a file (a checkpoint's hyper-parameters, a model card, a groups
    file...) names a ``_target_`` outside the allow-list, or holds an interpolation.
    ``source`` is the file, ``key`` the key path (``hyper_parameters.encoders.face._target_``),
    ``target`` the refused value. Nothing was built."""

    def __init__(self, message: str, source: str = "", key: str = "", target: Any = None) -> None:
        super().__init__(message)
        self.source, self.key, self.target = source, key, target


def _name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def refusal(target: Any) -> str | None:
    """Why ``target`` (a ``_target_`` value) is refused, or None when it is allowed."""
    if not isinstance(target, str):
        return f"is a {type(target).__name__}, not a dotted name"
    return _refusal(target)


@functools.lru_cache(maxsize=512)
def _refusal(target: str) -> str | None:
    if target in LIBRARY_TARGETS:
        return None
    if not _PLAIN_NAME.fullmatch(target):
        return "is not a plain dotted name (each part must start with a letter)"
    if not target.startswith("emomm."):
        return "is neither one of emomm's model building blocks nor a library class emomm's configs name"
    try:
        obj = _locate(target)
    except Exception:  # noqa: BLE001  (ImportError, AttributeError, ValueError...)
        return "names nothing that exists in emomm"
    if inspect.isclass(obj):
        if not obj.__module__.startswith("emomm."):
            return f"resolves to {_name(obj)}, a class that is not emomm's own"
        if not BUILDING_BLOCKS & {_name(c) for c in obj.__mro__}:
            return f"resolves to {_name(obj)}, an emomm class that is not a model building block"
        return None
    if inspect.isfunction(obj) and _name(obj) in EMOMM_FUNCTIONS:
        return None
    kind = "module" if inspect.ismodule(obj) else "function" if callable(obj) else type(obj).__name__
    return (f"resolves to {getattr(obj, '__name__', None) if inspect.ismodule(obj) else _name(obj)} "
            f"(a {kind}), not one of emomm's model building blocks or config functions")


def _walk(cfg: Any, prefix: str) -> Iterator[tuple[str, Any, Any]]:
    """``(key path, key, value)`` of every entry of nested mappings and lists, depth first,
    parents before children (iterative: a deep file cannot exhaust the stack)."""
    stack = [(prefix, cfg)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, Mapping):
            items = [(f"{path}.{k}" if path else str(k), k, v) for k, v in node.items()]
        elif isinstance(node, (list, tuple)):
            items = [(f"{path}[{i}]", i, v) for i, v in enumerate(node)]
        else:
            continue
        for item in items:
            yield item
        stack.extend((p, v) for p, _, v in reversed(items))


def find_targets(cfg: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every ``(key path, _target_ value)`` in ``cfg`` (dicts, lists, DictConfig), at any depth."""
    return [(p, v) for p, k, v in _walk(_plain(cfg), prefix) if k == TARGET_KEY]


def _plain(cfg: Any) -> Any:
    """A DictConfig/ListConfig as plain containers, interpolations left as strings (so they
    are checked, not resolved)."""
    return OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, (DictConfig, ListConfig)) else cfg


def check_targets(cfg: Any, source: Any, prefix: str = "", interpolations: bool = False) -> None:
    """Refuse ``cfg`` (a config read from the file ``source``) unless every ``_target_`` in
    it, at any depth, is allowed (see the module doc) and, unless ``interpolations``, no
    string holds an OmegaConf interpolation. ``prefix`` starts the key paths the error names
    (e.g. ``hyper_parameters``). Call it before anything in ``cfg`` is instantiated; pass
    ``interpolations=True`` only for configs Hydra resolves first (the user's own conf/).

    Raises :class:`UnsafeTargetError` naming the file, the key path and the target."""
    fix = ("Nothing was built. Only use checkpoints and configs from sources you trust: emomm.train "
           "writes only emomm's building blocks and the library classes emomm's configs name "
           "(emomm.utils.targets)")
    for path, key, value in _walk(_plain(cfg), prefix):
        if key == TARGET_KEY:
            why = refusal(value)
            if why:
                raise UnsafeTargetError(f"{source}: refused to load: {path} = {value!r} {why}. {fix}.",
                                        str(source), path, value)
        elif not interpolations and isinstance(value, str) and "${" in value:
            raise UnsafeTargetError(
                f"{source}: refused to load: {path} = {value[:120]!r} holds an interpolation (${{...}}), which "
                "building the config would resolve (a resolver can create new _target_s); emomm.train stores "
                f"resolved values. {fix}.", str(source), path, value)


def load_checked_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """:func:`~emomm.utils.safe_load.load_checkpoint` of ``path`` once the whole checkpoint
    passed :func:`check_targets`: for code that reads another run's checkpoint
    (``init_from``), whose hyper-parameters are a config from a file too."""
    ckpt = upgrade_targets(load_checkpoint(path, map_location=map_location))  # names that moved
    check_targets(ckpt, Path(path).expanduser())
    return ckpt


#: A stored data root under the loader's data folder (zoo entries: ``<data_dir>/fer2013``; not
#: an interpolation, which a stored config may not hold).
DATA_DIR_REF = "<data_dir>"


def default_data_dir() -> str:
    """``paths.data_dir`` as the configs define it: ``$EMOMM_DATA_DIR``, else ``data/`` here."""
    return os.environ.get("EMOMM_DATA_DIR") or str(Path.cwd() / "data")


def checked_data_config(data_cfg: Any, source: Any, data_dir: str | Path | None = None) -> dict[str, Any] | None:
    """A checkpoint's stored data config, ready to build: names that moved upgraded
    (:mod:`emomm.utils.moved`) and every ``_target_`` checked (:func:`check_targets`, key paths
    under ``hyper_parameters.data`` of the file ``source``); a ``root`` stored as
    ``<data_dir>/NAME`` (a zoo entry's) resolved under ``data_dir`` (default
    :func:`default_data_dir`). None when it stores none."""
    data_cfg = upgrade_targets(_plain(data_cfg))
    if not data_cfg:
        return None
    check_targets(data_cfg, source, prefix="hyper_parameters.data")
    data_cfg = dict(data_cfg)
    root = data_cfg.get("root")
    if isinstance(root, str) and root.startswith(DATA_DIR_REF):
        data_cfg["root"] = str(data_dir or default_data_dir()) + root[len(DATA_DIR_REF):]
    return data_cfg
