"""Fast by default: a checkpoint's classifier on ONNX Runtime, exported once and cached.

``backend=auto`` (live mode's and the web app's default) runs a checkpoint through
:class:`~emomm.inference.onnx_runner.OnnxRunner` whenever onnxruntime is installed:

* the checkpoint is exported once (:func:`emomm.inference.onnx_export.export`, fp32, test-time
  views in the graph) into the cache, keyed by the checkpoint's SHA-256 (a zoo entry: the
  SHA-256 of its weights and hyper-parameters as its card records them, checked on load), so
  a retrained checkpoint at the same path gets a new export and the same weights anywhere
  reuse one;
* the export is parity-checked against PyTorch on every shape it declares
  (:func:`~emomm.inference.onnx_export.check_export`); one that is refused (or cannot be
  exported: raw-text models) falls back to PyTorch with a one-line message, and the refusal
  is remembered in the cache so the next start does not export again;
* without onnxruntime (``pip install 'emomm[export]'``), PyTorch runs it, and the message says
  how to get the faster path.

The cache is ``$EMOMM_CACHE_DIR/onnx`` when that is set, else ``$XDG_CACHE_HOME/emomm/onnx``
(``~/.cache/emomm/onnx``). An export is written into a temporary folder beside its final one
and renamed into place, so a reader never sees half an export and two processes exporting
the same checkpoint at once both end with one complete copy.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import contextlib
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emomm.inference.export_graph import DEFAULT_OPSET, ExportError
from emomm.inference.onnx_export import export
from emomm.utils.atomic import TMP_SUFFIX, atomic_write_json
from emomm.utils.zoo_files import is_entry, read_card

log = logging.getLogger(__name__)

CACHE_ENV = "EMOMM_CACHE_DIR"
#: Bumped when the exported graph changes for the same weights (old cache entries are ignored).
EXPORT_VERSION = 1
REFUSED = "refused.json"
BACKENDS = ("auto", "torch", "onnxruntime")


def cache_root() -> Path:
    """Where exports are cached: ``$EMOMM_CACHE_DIR/onnx``, else ``$XDG_CACHE_HOME/emomm/onnx``
    (``~/.cache/emomm/onnx``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser() / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "emomm" / "onnx"


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_key(path: str | Path) -> str:
    """The cache key of a checkpoint (a ``.ckpt`` file or a zoo entry's folder): a SHA-256 of
    its weights' hash, the export format's version and the opset (24 hex digits)."""
    path = Path(path)
    if is_entry(path):
        files = read_card(path).get("files") or {}
        digest = ":".join(str((files.get(k) or {}).get("sha256")) for k in ("weights", "hparams"))
    else:
        digest = _file_sha256(path)
    return hashlib.sha256(f"{digest}:v{EXPORT_VERSION}:opset{DEFAULT_OPSET}".encode()).hexdigest()[:24]


@dataclass
class Cached:
    """The outcome of :func:`cached_export`: the export folder, or None and why."""
    folder: Path | None
    note: str


@contextlib.contextmanager
def _output_to(path: Path):
    """Send what the process writes to file descriptors 1 and 2 into ``path`` meanwhile: the
    TorchScript exporter prints a whole IR graph (to stdout) when it fails, which a refused
    export (one line says why) must not dump on the user's terminal."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    try:
        with open(path, "wb") as f:
            for fd in saved:
                os.dup2(f.fileno(), fd)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                for fd, keep in saved.items():
                    os.dup2(keep, fd)
    finally:
        for keep in saved.values():
            os.close(keep)


def cached_export(ckpt: str | Path, root: Path | None = None) -> Cached:
    """The parity-checked ONNX export of ``ckpt`` from the cache, exported there first when
    absent. ``folder`` is None when the export is refused (``note`` says why, in one line)."""
    root = cache_root() if root is None else Path(root)
    final = root / checkpoint_key(ckpt)
    if (final / "model.json").is_file():
        return Cached(final, f"cached ONNX export {final}")
    if (final / REFUSED).is_file():
        why = json.loads((final / REFUSED).read_text()).get("reason", "refused")
        return Cached(None, f"its ONNX export was refused before ({why})")
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=root))
    try:
        try:
            with _output_to(stage / "export_output.txt"):
                export(ckpt, stage / "export", format="onnx", check=True)
        except (ExportError, RuntimeError, ValueError, TypeError) as err:
            reason = " ".join(str(err).split())[:300] or type(err).__name__
            (stage / "export").mkdir(exist_ok=True)
            atomic_write_json(stage / "export" / REFUSED, {"reason": reason, "source": str(ckpt)})
            _publish(stage / "export", final)
            return Cached(None, f"its ONNX export was refused ({reason})")
        _publish(stage / "export", final)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return Cached(final, f"exported to ONNX once, cached in {final}")


def _publish(src: Path, final: Path) -> None:
    """Rename ``src`` into place as ``final``; another process that got there first wins."""
    try:
        os.rename(src, final)
    except OSError:
        if not final.is_dir():
            raise


def onnxruntime_missing() -> str | None:
    """None when onnxruntime imports, else the one-line reason."""
    try:
        from emomm.utils.ort import onnxruntime
        onnxruntime()
    except ImportError:
        return "onnxruntime is not installed (pip install 'emomm[export]' for the faster path)"
    return None


def choose_runner(ckpt: Any, backend: str = "auto", device: str = "cpu") -> tuple[str, Path | None, str]:
    """``(backend, onnx export folder or None, note)`` for ``backend=auto``: ``onnxruntime`` on
    the cached export of ``ckpt`` when onnxruntime is installed and the export passes its
    parity check, else ``torch`` with the reason. Lists (ensembles) and non-CPU devices stay
    on PyTorch."""
    if backend != "auto":
        return backend, None, f"backend={backend}"
    if isinstance(ckpt, (list, tuple)):
        return "torch", None, "PyTorch (an ensemble of checkpoints runs on PyTorch)"
    if device != "cpu":
        return "torch", None, f"PyTorch on {device}"
    missing = onnxruntime_missing()
    if missing:
        return "torch", None, f"PyTorch: {missing}"
    got = cached_export(ckpt)
    if got.folder is None:
        return "torch", None, f"PyTorch: {got.note}"
    return "onnxruntime", got.folder, f"ONNX Runtime ({got.note})"
