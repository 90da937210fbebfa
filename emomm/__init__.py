"""emomm: multimodal emotion recognition on PyTorch Lightning + Hydra."""

__version__ = "0.1.0"
