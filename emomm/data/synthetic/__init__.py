"""Built-in synthetic data: deterministic, learnable, no download.

Each modality registers a generator with :func:`register`; later modalities (voice,
text, video) add a file here and nothing else changes.
"""
from emomm.data.synthetic.registry import register, SYNTHETIC_MODALITIES  # noqa: F401
from emomm.data.synthetic import face_modality  # noqa: F401  (registers "face")
from emomm.data.synthetic.datamodule import SyntheticDataModule  # noqa: F401
