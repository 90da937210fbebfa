"""`SyntheticDataModule`: the default dataset (``data=synthetic``)."""
from __future__ import annotations

from typing import Any, Sequence

from torch.utils.data import Dataset

from emomm.data.base import EmotionDataModule
from emomm.data.synthetic.registry import SYNTHETIC_MODALITIES
from emomm.data.synthetic.spec import draw_spec
from emomm.labels import EKMAN7

# Splits use disjoint seeds, so no sample is shared between them.
_SPLIT_SEED_OFFSET = {"train": 0, "val": 1_000_003, "test": 2_000_003}


class SyntheticDataset(Dataset):
    def __init__(self, size: int, seed: int, modalities: dict[str, Any], label_names: Sequence[str]):
        self.size, self.seed, self.modalities, self.label_names = size, seed, modalities, list(label_names)
        self.labels = [i % len(self.label_names) for i in range(size)]

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, Any]:
        spec = draw_spec(self.seed, index, self.label_names)
        return {"inputs": {m: gen(spec) for m, gen in self.modalities.items()},
                "label": spec.label, "index": index}


class SyntheticDataModule(EmotionDataModule):
    """Procedurally generated samples whose every modality follows one emotion.

    Args:
        modalities: which modalities to generate (each must be registered).
        options: per-modality generator options, e.g. ``{"face": {"image_size": 64}}``;
            options of modalities not in ``modalities`` are ignored. A generator applies
            its ``augment`` option to the training split only.
        n_train / n_val / n_test: split sizes.
    """

    def __init__(
        self,
        modalities: Sequence[str] = ("face",),
        options: dict[str, dict | None] | None = None,
        n_train: int = 3000,
        n_val: int = 700,
        n_test: int = 700,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        unknown = [m for m in modalities if m not in SYNTHETIC_MODALITIES]
        if unknown:
            raise ValueError(f"synthetic data cannot generate {unknown}; "
                             f"available: {sorted(SYNTHETIC_MODALITIES)}")
        self.modalities = list(modalities)
        self.options = {m: dict((options or {}).get(m) or {}) for m in self.modalities}
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}

    @property
    def label_names(self) -> list[str]:
        return list(EKMAN7)

    def _generators(self, train: bool) -> dict[str, Any]:
        return {m: SYNTHETIC_MODALITIES[m](dict(self.options[m]), train) for m in self.modalities}

    def build_splits(self) -> dict[str, Dataset]:
        return {
            split: SyntheticDataset(n, self.seed + _SPLIT_SEED_OFFSET[split],
                                    self._generators(split == "train"), self.label_names)
            for split, n in self.sizes.items()
        }

    @property
    def preprocessing(self) -> dict[str, Any]:
        return {m: g.describe() for m, g in self._generators(False).items()}
