"""Resuming interrupted training: ``ckpt_path=last``, atomic checkpoints, SIGTERM checkpoints.

* :class:`AtomicCheckpointIO` (every trainer that ``emomm.train`` builds has it) writes each
  checkpoint (``best.ckpt``, ``last.ckpt``, the SIGTERM one) to a temporary file in its folder,
  fsyncs it and renames it into place (:mod:`emomm.utils.atomic`): a full disk or a kill
  during the write leaves the previous checkpoint as it was.
* :func:`resolve_resume` turns ``ckpt_path=last`` into the newest ``checkpoints/last.ckpt``
  under ``<log_dir>/<task_name>/`` (runs and multiruns), i.e. the latest run of the same
  task, after checking that it loads. A damaged one (truncated by a full disk before writes
  were atomic, cut short by a copy, corrupted) is named, and the run resumes from the newest
  checkpoint of the same folder that loads (``best.ckpt``: a full training state too, from
  an earlier epoch; the epochs after it are trained again, to the same weights, since a run's
  randomness depends only on its position, see :mod:`emomm.data.core.sampling`); with none, the
  error says how to go on. Any other value is a path, checked the same way.
* The callback that keeps the rest of a run's state across a resume and writes ``last.ckpt``
  on SIGTERM is :class:`emomm.callbacks.resume_state.ResumeState`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from emomm.utils.atomic import atomic_open
from emomm.utils.safe_load import CheckpointError, UnsafeCheckpointError, load_checkpoint

log = logging.getLogger(__name__)

#: Exit status of ``emomm.train`` stopped by SIGTERM after saving its checkpoint (128 + 15).
SIGTERM_EXIT = 143

#: What a checkpoint needs to continue training (not only to predict).
TRAINING_STATE = ("state_dict", "optimizer_states", "loops", "epoch", "global_step")


class DamagedCheckpointError(CheckpointError):
    """A checkpoint that cannot be resumed from; the message names it and says how to go on."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, writing each local checkpoint atomically in its own folder
    (Lightning 2.6 writes through a temporary file in the system's temp folder, then copies
    it over the checkpoint when that is another file system: a full disk during the copy
    leaves a truncated ``last.ckpt``). Loading names the file when it is damaged."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if "://" in str(path):  # remote storage (fsspec): Lightning's own transaction
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_open(path, "wb") as f:
                torch.save(checkpoint, f)
        except Exception as err:  # torch's writer turns a failed write into "unexpected pos"
            cause = _os_error(err)
            if cause is None:
                raise
            raise OSError(cause.errno, f"{path}: checkpoint not written ({cause.strerror}); the previous "
                                       "one there, if any, is kept unchanged") from err

    def load_checkpoint(self, path, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        try:
            return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
        except (RuntimeError, EOFError, ValueError) as err:
            if "://" in str(path) or not Path(path).is_file():
                raise
            raise DamagedCheckpointError(f"{path}: cannot be read as a checkpoint ({_one_line(err)}); "
                                         f"{_alternatives(Path(path))}") from None


def _os_error(err: BaseException | None) -> OSError | None:
    """The ``OSError`` with an errno (a full disk's ENOSPC) at the root of ``err``'s chain, if any."""
    while err is not None:
        if isinstance(err, OSError) and err.errno is not None:
            return err
        err = err.__cause__ or err.__context__
    return None


def _one_line(err: BaseException) -> str:
    """``Type: first sentence`` of an exception (torch's reader errors run on for lines)."""
    text = (str(err).strip().splitlines() or [""])[0].split(". ")[0].rstrip(".")[:200]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def checkpoint_problem(path: str | Path) -> str | None:
    """None when ``path`` loads (``weights_only``) as a checkpoint to continue training
    from; otherwise why not, in one line (empty, truncated, not a checkpoint, no training state)."""
    path, size = Path(path), 0
    try:
        size = path.stat().st_size
        if size == 0:
            return "the file is empty"
        ckpt = load_checkpoint(path)
    except UnsafeCheckpointError as err:  # holds objects other than weights: never loaded
        return f"refused: {(str(err).splitlines() or [''])[0]}"
    except Exception as err:  # noqa: BLE001 - any reader error means the file cannot be resumed from
        return f"unreadable, {_one_line(err)} ({size} bytes: truncated or not a checkpoint?)"
    missing = [k for k in TRAINING_STATE if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        return f"not a training checkpoint of emomm.train: it lacks {missing}"
    return None


def _candidates(folder: Path, exclude: Path) -> list[Path]:
    """The other checkpoints of a run's folder, newest first (temporary files end in .tmp)."""
    found = [p for p in folder.glob("*.ckpt") if p.is_file() and p.resolve() != exclude.resolve()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def newest_good_checkpoint(folder: Path, exclude: Path) -> Path | None:
    """The newest checkpoint in ``folder`` (other than ``exclude``) that training can continue from."""
    for p in _candidates(folder, exclude):
        problem = checkpoint_problem(p)
        if problem is None:
            return p
        log.warning("%s cannot be resumed from either: %s", p, problem)
    return None


def _alternatives(path: Path) -> str:
    """How to go on without ``path``: the other checkpoints of its folder that load, else a fresh start."""
    good = [p for p in _candidates(path.parent, path) if checkpoint_problem(p) is None]
    if good:
        return (f"resume from another checkpoint of that run instead: ckpt_path={good[0]} "
                f"(it loads; the epochs after it are trained again, to the same result)")
    return ("no other checkpoint in that folder loads: start the run afresh (the same command without "
            "ckpt_path)")


def resolve_resume(ckpt_path: str | None, log_dir: str | Path, task_name: str = "train") -> str | None:
    """``last`` -> the newest ``checkpoints/last.ckpt`` of ``task_name``'s runs, or, when that
    one is damaged, the newest checkpoint of its folder that loads; else the path as given,
    once it loads. Raises ``FileNotFoundError`` / :class:`DamagedCheckpointError` saying what to do."""
    if ckpt_path in (None, "", "null"):
        return None
    if str(ckpt_path) != "last":
        p = Path(str(ckpt_path)).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"ckpt_path={p} does not exist; give a .ckpt file, or ckpt_path=last "
                                    "for the newest run's checkpoints/last.ckpt")
        problem = checkpoint_problem(p)
        if problem:
            raise DamagedCheckpointError(f"ckpt_path={p}: cannot resume from it: {problem}. {_alternatives(p)}")
        return str(p)
    base = Path(log_dir) / task_name
    found = sorted(base.glob("**/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(f"ckpt_path=last: no checkpoints/last.ckpt under {base}; start the run "
                                "without ckpt_path (checkpoints are written at each epoch end)")
    last = found[-1]
    problem = checkpoint_problem(last)
    if problem is None:
        log.info("ckpt_path=last: resuming from %s", last)
        return str(last)
    fallback = newest_good_checkpoint(last.parent, exclude=last)
    if fallback is not None:
        log.warning("ckpt_path=last: %s is damaged (%s); resuming from %s instead, the newest checkpoint of "
                    "that run that loads (the epochs after it are trained again, to the same result)",
                    last, problem, fallback)
        return str(fallback)
    run = last.parent.parent
    previous = (f"; or move {run} away, and ckpt_path=last resumes the run before it ({found[-2]})"
                if len(found) > 1 else "")
    raise DamagedCheckpointError(
        f"ckpt_path=last: {last} is damaged ({problem}) and no other checkpoint in {last.parent} loads. "
        f"Start the run afresh (the same command without ckpt_path){previous}")
