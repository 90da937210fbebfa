"""Loading checkpoints without running code from them.

A ``.ckpt`` is a pickle: an unrestricted ``torch.load`` would run whatever a
``__reduce__`` inside it asks for. Every checkpoint load in emomm goes through
``torch.load(..., weights_only=True)`` (tensors, dicts, lists, numbers, strings only) and
Lightning's loaders get ``weights_only=True`` passed explicitly, so an environment default
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``) cannot turn it off. Face-crop cache entries are
``.npz`` read with ``allow_pickle=False`` (see :mod:`emomm.faces.cache`).
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch


class UnsafeCheckpointError(ValueError):
    """A checkpoint holding objects other than weights and plain data (possibly code)."""


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``; a file that needs arbitrary objects is an
    :class:`UnsafeCheckpointError` naming the file (nothing in it is executed)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint; give a .ckpt written by emomm.train")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(
            f"{path}: refused to load: the checkpoint holds objects other than weights and plain data "
            f"({str(err).splitlines()[0][:200]}). Only load checkpoints from sources you trust; a "
            "checkpoint written by emomm.train loads with weights_only=True.") from None
