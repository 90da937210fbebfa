"""emomm: multimodal emotion recognition on PyTorch Lightning + Hydra."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # `from emomm import Predictor` without importing torch & co on `import emomm`.
    if name == "Predictor":
        from emomm.inference.predictor import Predictor
        return Predictor
    raise AttributeError(f"module 'emomm' has no attribute {name!r}")
