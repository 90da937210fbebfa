"""Writing files atomically: an interrupted write leaves the previous file, never half a file.

Every checkpoint and result file emomm writes goes through here. The content goes to a
temporary file in the destination's folder, is flushed and fsynced, and is then renamed over
the destination with :func:`os.replace` (atomic within one file system), after which the
folder is fsynced so the rename survives a power cut. Whatever stops the write midway (a full
disk's ``OSError(ENOSPC)``, a bug in the writer, Ctrl-C) removes the temporary file and leaves
the destination as it was: the previous good file, or none.

Temporary files are named ``.<stem>.<token>.<pid><suffix>.tmp`` (``last.ckpt`` ->
``.last.3f9a1c2e.4711.ckpt.tmp``, the face-crop cache's convention): hidden, and ending in
``.tmp``, so no lookup of ``*.ckpt``, ``last.ckpt``, ``best.ckpt`` or ``metrics.json``
ever picks one up, even while a write is in progress in another process.

* :func:`atomic_write_bytes` / :func:`atomic_write_text` / :func:`atomic_write_json`: content
  in hand;
* :func:`atomic_open`: a writer that wants a file object (``csv.writer``, ``torch.save``,
  ``np.savez``, ``fig.savefig(f, format=...)``);
* :func:`atomic_path`: a writer that wants a path to write to (``OmegaConf.save``, exporters);
* :func:`atomic_savefig`: a matplotlib figure.
"""
from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import IO, Any, Iterator

TMP_SUFFIX = ".tmp"


def temp_path(path: str | Path) -> Path:
    """The temporary sibling of ``path`` that a write goes to before the rename."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.{os.getpid()}{path.suffix}{TMP_SUFFIX}")


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every OS/file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _discard(tmp: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path to write ``path``'s new content to; on a clean exit it is
    fsynced and renamed over ``path``, on an exception removed (``path`` untouched).

    The writer must close what it wrote before the ``with`` block ends. A writer that
    writes nothing leaves ``path`` untouched."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        if not tmp.exists():
            return
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        _discard(tmp)
        if isinstance(err, OSError) and err.errno is not None and str(path) not in str(err):
            # name the file (a full disk's bare "[Errno 28] No space left on device" does not)
            raise OSError(err.errno, f"{path} not written ({err.strerror}); the previous file there, if any, "
                                     "is unchanged") from err
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """``open(path, mode, **kwargs)`` whose content replaces ``path`` only once the ``with``
    block ends without an exception. ``mode``: ``"w"`` (text; ``encoding`` defaults to
    UTF-8) or ``"wb"``."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode {mode!r} is not 'w' or 'wb' (an atomic write replaces the whole file)")
    if mode == "w":
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp:
        with open(tmp, mode.replace("w", "x"), **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """``Path(path).write_bytes(data)``, atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """``Path(path).write_text(text)``, atomically."""
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)


def atomic_write_json(path: str | Path, payload: Any, indent: int | None = 2, **dumps_kwargs: Any) -> None:
    """``payload`` as JSON (with a final newline), atomically. The JSON is built in memory
    first, so a payload that cannot be serialised leaves no file and no temporary file."""
    atomic_write_text(path, json.dumps(payload, indent=indent, **dumps_kwargs) + "\n")


def atomic_savefig(fig: Any, path: str | Path, **kwargs: Any) -> None:
    """``fig.savefig(path, **kwargs)`` (a matplotlib figure), atomically; the format comes
    from ``path``'s suffix, as matplotlib would take it."""
    fmt = kwargs.pop("format", None) or Path(path).suffix.lstrip(".").lower() or "png"
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format=fmt, **kwargs)
