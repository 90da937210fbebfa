"""Inference: turn raw media into predictions with a trained checkpoint.

* :mod:`.preprocess` - the one place raw media become model inputs, with the checkpoint's
  stored preprocessing and the very transform classes the datasets use;
* :mod:`.runner` - what runs the network (:class:`TorchRunner`; exported models have their
  own runner), behind one small protocol;
* :mod:`.predictor` - :class:`Predictor`: images, videos, audio, text, multimodal samples;
* :mod:`.tracking` - face tracks with stable ids across frames (motion-aware Kalman or IoU);
* :mod:`.results` - plain dataclasses with ``to_dict()``.
"""
# Lazy, so that `emomm.inference.onnx_runner` imports without torch (exported models).
_EXPORTS = {"Predictor": "predictor", "FaceResult": "results", "ImageResult": "results", "SampleResult": "results",
            "TextResult": "results", "TimelineResult": "results", "WindowResult": "results",
            "PersonResult": "results"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(f"emomm.inference.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'emomm.inference' has no attribute {name!r}")
