"""Inference: checkpoints -> predictions on raw media (images, video, audio, text).

* :mod:`.preprocess` - the one function (:func:`prepare`) that turns raw media into model
  inputs from the preprocessing a checkpoint stores, with the datasets' own transforms;
* :mod:`.runner` - :class:`ModelRunner` backends (:class:`TorchRunner`; ONNX in ``onnx_runner``);
* :mod:`.predictor` - :class:`Predictor`, the user-facing API;
* :mod:`.results` - result dataclasses with ``to_dict()``;
* :mod:`.tracking` - :class:`IoUTracker`, stable face IDs across frames.
"""
from __future__ import annotations

__all__ = ["Predictor", "IoUTracker", "prepare"]


def __getattr__(name):  # lazy: importing the package must not load torch models
    if name == "Predictor":
        from emomm.inference.predictor import Predictor
        return Predictor
    if name == "IoUTracker":
        from emomm.inference.tracking import IoUTracker
        return IoUTracker
    if name == "prepare":
        from emomm.inference.preprocess import prepare
        return prepare
    raise AttributeError(name)
