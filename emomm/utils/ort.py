"""ONNX Runtime with its telemetry off: every session emomm makes comes from here.

onnxruntime (1.2x and later, Linux included) starts a telemetry client as soon as the module
is *imported*: it writes a device id and an event database under
``~/.cache/Microsoft/DeveloperTools/.onnxruntime`` (``$XDG_CACHE_HOME`` when set) and may
upload them. Only ``ORT_DISABLE_TELEMETRY=1`` in the environment before the first
``import onnxruntime`` prevents those files; ``onnxruntime.disable_telemetry_events()``
after the import stops the events (Windows' ETW ones included) but not the files. So every
entry point sets the variable first (:func:`emomm.utils.runtime.offline_defaults`), and the
library paths (a Predictor on an export, live mode's voice activity detector) import
onnxruntime through :func:`onnxruntime` here. A user who wants telemetry sets
``ORT_DISABLE_TELEMETRY=0`` themselves; it is never overridden.

Nothing else in a session writes files unless asked: profiling
(``SessionOptions.enable_profiling``) and the optimised-model dump
(``optimized_model_filepath``) are off by default and never set here.
"""
from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

TELEMETRY_ENV = "ORT_DISABLE_TELEMETRY"


def no_telemetry() -> None:
    """Ask onnxruntime for no telemetry (effective for an import that has not happened yet)."""
    os.environ.setdefault(TELEMETRY_ENV, "1")


def onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module, imported with telemetry off and its events disabled."""
    no_telemetry()
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - the export extra installs it
        raise ImportError("backend=onnxruntime needs onnxruntime: pip install 'emomm[export]'") from e
    if os.environ.get(TELEMETRY_ENV, "").lower() in ("1", "true"):
        ort.disable_telemetry_events()
    return ort


def inference_session(model_path: str | Path, threads: int = 0, providers: list[str] | None = None):
    """An ``onnxruntime.InferenceSession`` on ``model_path``: ``threads`` intra-op threads
    (0: onnxruntime's default, all cores), ``providers`` (default: CPU)."""
    ort = onnxruntime()
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path), opts, providers=providers or ["CPUExecutionProvider"])
