"""emomm: multimodal emotion recognition on PyTorch Lightning + Hydra."""

__version__ = "0.1.0"

__all__ = ["Predictor", "__version__"]


def __getattr__(name):
    # Lazy, so `import emomm` stays cheap (no torch / Lightning import until a Predictor is used).
    if name == "Predictor":
        from emomm.inference.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'emomm' has no attribute {name!r}")
