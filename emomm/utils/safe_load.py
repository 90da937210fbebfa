"""Loading checkpoints without running code from them.

A ``.ckpt`` is a pickle: an unrestricted ``torch.load`` would run whatever a
``__reduce__`` inside it asks for. Every checkpoint load in emomm goes through
``torch.load(..., weights_only=True)`` (tensors, dicts, lists, numbers, strings only) and
Lightning's loaders get ``weights_only=True`` passed explicitly, so an environment default
(``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``) cannot turn it off. Face-crop cache entries are
``.npz`` read with ``allow_pickle=False`` (see :mod:`emomm.faces.cache`).

Plain data can still name code: a config's ``_target_`` is a callable that Hydra calls.
:mod:`emomm.utils.targets` checks every ``_target_`` of a config read from a file against
an allow-list before anything is built.

Every failure is a :class:`CheckpointError` (a ``ValueError``) that names the file and
what to do; entry points print it as one line without a traceback
(:func:`exit_on_checkpoint_error`).
"""
from __future__ import annotations

import io
import pickle
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from emomm.utils.zoo_files import ZooEntryError, checkpoint_bytes, is_entry

#: What to do with a checkpoint that is not one emomm.train wrote.
GIVE_A_RUN_CHECKPOINT = ("give a checkpoint written by emomm.train (a run's checkpoints/best.ckpt or "
                         "checkpoints/last.ckpt)")


class CheckpointError(ValueError):
    """A file that is not a usable emomm checkpoint; the message names the file and the fix."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No file at the checkpoint path (also a ``FileNotFoundError``)."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint holding objects other than weights and plain data (possibly code)."""


def read_checkpoint(path: str | Path) -> bytes:
    """The bytes of the checkpoint file ``path``; a missing, unreadable, folder or empty
    path is a :class:`CheckpointError` naming it. A model-zoo entry's folder
    (:mod:`emomm.utils.zoo_files`) gives the bytes of the checkpoint it stands for, once its
    files passed their SHA-256 checks."""
    path = Path(path).expanduser()
    if is_entry(path):
        try:
            return checkpoint_bytes(path)
        except ZooEntryError as err:
            raise CheckpointError(str(err)) from None
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file; {GIVE_A_RUN_CHECKPOINT}")
    if not path.is_file():
        raise CheckpointNotFoundError(f"{path}: no such checkpoint; {GIVE_A_RUN_CHECKPOINT}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"{path}: cannot be read ({err.strerror or err}); check its permissions, "
                              "or copy it somewhere readable") from None
    if not data:
        raise CheckpointError(f"{path}: is empty (0 bytes): its write or copy was interrupted (a full disk?); "
                              f"copy it again, or {GIVE_A_RUN_CHECKPOINT} that is complete")
    return data


def _pickle_reason(err: Exception) -> tuple[bool, str]:
    """``(unsafe, reason)`` from torch's weights-only refusal: ``unsafe`` when the file asks
    for a Python object (a GLOBAL), else the file is no pickle torch can read. Only torch's
    specific reason is kept (``Unsupported global: GLOBAL io.open was not an allowed global by
    default``): the rest advises an unsafe load or allow-listing the object, which we never do."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [s.strip() for s in text.splitlines() if s.strip()]
    specific = [s for s in lines if not s.startswith(("Weights only load failed", "Please file an issue",
                                                      "Check the documentation", "(1)", "(2)"))]
    reason = (specific[0] if specific else type(err).__name__).split(" Please use", 1)[0][:200]
    return "GLOBAL" in reason or "global" in reason, reason


def load_checkpoint(path: str | Path, map_location: Any = "cpu", data: bytes | None = None) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` (or of ``data``, the file's bytes already read
    by :func:`read_checkpoint`). A file that needs arbitrary objects is an
    :class:`UnsafeCheckpointError` (nothing in it is executed); an empty, truncated or damaged
    file, or one that is no checkpoint at all (an image...), a :class:`CheckpointError`; each
    names the file."""
    path = Path(path).expanduser()
    data = read_checkpoint(path) if data is None else data
    try:
        ckpt = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        unsafe, reason = _pickle_reason(err)
        if unsafe:
            raise UnsafeCheckpointError(
                f"{path}: refused to load: the checkpoint holds objects other than weights and plain data "
                f"({reason}); loading them could run code. Only load checkpoints from sources you trust; "
                "a checkpoint written by emomm.train holds none.") from None
        raise CheckpointError(f"{path}: is not a PyTorch checkpoint ({reason}); {GIVE_A_RUN_CHECKPOINT}") from None
    except (EOFError, RuntimeError) as err:  # a cut pickle; torch's zip reader ("PytorchStreamReader failed ...")
        first = (str(err).splitlines() or [""])[0].split(". This is an internal")[0][:200] or type(err).__name__
        raise CheckpointError(
            f"{path}: is truncated or damaged ({len(data)} bytes; {first}): its write or copy was interrupted "
            f"(a full disk?); copy it again, or {GIVE_A_RUN_CHECKPOINT} that is complete") from None
    except Exception as err:  # noqa: BLE001  (torch raises KeyError, ValueError... on other files)
        raise CheckpointError(f"{path}: is not a PyTorch checkpoint ({type(err).__name__}: {str(err)[:120]}); "
                              f"{GIVE_A_RUN_CHECKPOINT}") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: holds a {type(ckpt).__name__}, not a checkpoint (a dict with state_dict "
                              f"and hyper_parameters); {GIVE_A_RUN_CHECKPOINT}")
    return ckpt


@contextmanager
def exit_on_checkpoint_error(*also: type[BaseException]) -> Iterator[None]:
    """For entry points: a :class:`CheckpointError` (a refused, missing, damaged or incomplete
    checkpoint, or a refused config), or an error of the types in ``also`` (errors whose
    message names the input and the fix, e.g. ``DataError``, ``AudioReadError``), is printed as
    one ``error:`` line on stderr, without a traceback, and the process exits with status 1."""
    try:
        yield
    except (CheckpointError, *also) as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
