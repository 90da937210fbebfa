"""Built-in synthetic data: deterministic, learnable, no download.

Each modality's generator lives in ``<modality>_modality.py`` in this package and
registers itself with :func:`register`; every such file is imported here automatically,
so adding a modality is one new file.
"""
import importlib
import pkgutil

from emomm.data.synthetic.registry import SYNTHETIC_MODALITIES, register  # noqa: F401

for _mod in pkgutil.iter_modules(__path__):
    if _mod.name.endswith("_modality"):
        importlib.import_module(f"{__name__}.{_mod.name}")

from emomm.data.synthetic.datamodule import SyntheticDataModule  # noqa: E402,F401
