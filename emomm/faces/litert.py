"""A ``.tflite`` model on ai-edge-litert's interpreter, shared by the face models that run on it
(:mod:`emomm.faces.mesh`; the interpreter is built on first use, one call runs at a time, and
the object pickles without it, so worker processes rebuild their own)."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np


class LiteRTModel:
    """Args:
        model_path: the ``.tflite`` file (checked by the caller).
        threads: interpreter threads.
        extra: the pip extra that installs ai-edge-litert, named in the import error.
    """

    def __init__(self, model_path: Path, threads: int = 1, extra: str = "live") -> None:
        self.model_path, self.threads, self.extra = Path(model_path), int(threads), extra
        self._interp, self._batch = None, 0
        self._lock = threading.Lock()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_interp"], state["_lock"], state["_batch"] = None, None, 0
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _interpreter(self, batch: int):
        if self._interp is None:
            try:
                from ai_edge_litert.interpreter import Interpreter
            except ImportError as e:  # pragma: no cover - the live extra installs it
                raise ImportError(f"{self.model_path.name} runs on ai-edge-litert: "
                                  f"pip install 'emomm[{self.extra}]'") from e
            self._interp = Interpreter(model_path=str(self.model_path), num_threads=self.threads)
            self._batch = 0
        if batch != self._batch:   # the input's batch dimension follows the call
            idx = self._interp.get_input_details()[0]["index"]
            self._interp.resize_tensor_input(idx, [batch, *self._interp.get_input_details()[0]["shape"][1:]])
            self._interp.allocate_tensors()
            self._batch = batch
        return self._interp

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """One float32 input ``[N, ...]`` -> every output by name (copies, ``[N, ...]``)."""
        with self._lock:
            interp = self._interpreter(len(x))
            interp.set_tensor(interp.get_input_details()[0]["index"], np.ascontiguousarray(x, np.float32))
            interp.invoke()
            return {o["name"]: interp.get_tensor(o["index"]).copy() for o in interp.get_output_details()}
