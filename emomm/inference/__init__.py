"""Inference: turn raw media into predictions with a trained checkpoint.

* :mod:`.preprocess` - the one place raw media become model inputs, with the checkpoint's
  stored preprocessing and the very transform classes the datasets use;
* :mod:`.runner` - what runs the network (:class:`TorchRunner`; exported models have their
  own runner), behind one small protocol;
* :mod:`.predictor` - :class:`Predictor`: images, videos, audio, text, multimodal samples;
* :mod:`.tracking` - face tracks with stable ids across frames;
* :mod:`.results` - plain dataclasses with ``to_dict()``.
"""
from emomm.inference.predictor import Predictor
from emomm.inference.results import (FaceResult, ImageResult, SampleResult, TextResult, TimelineResult,
                                     WindowResult)

__all__ = ["Predictor", "FaceResult", "ImageResult", "SampleResult", "TextResult", "TimelineResult",
           "WindowResult"]
