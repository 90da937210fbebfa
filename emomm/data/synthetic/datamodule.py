"""`SyntheticDataModule`: the default dataset (``data=synthetic``).

Every modality of a sample is drawn from one latent :class:`~emomm.data.synthetic.spec.SampleSpec`
(one emotion, one person). Two options make the modalities disagree or go missing, so that
fusion has something to do:

* ``reliability``: per modality, the probability that it expresses the sample's true emotion;
  otherwise it expresses another emotion drawn uniformly from the remaining classes (the same
  person, pose and scene, only the emotion changes). Drawn per modality independently and
  seeded by ``(seed, index, modality)``, so a sample always looks the same. What fusion can
  gain comes from the expressions themselves being ambiguous (intensity from 0.35, noisy
  action parameters: each modality's posterior is soft, and a weak face is read through a
  clear voice). The flips alone give a perfect reader of two modalities nothing: when they
  disagree the more reliable one is the better bet, so a Bayes-optimal fusion of two equals the
  more reliable modality; with three, the two others outvote a flipped one.
* ``missing``: per modality (a dict) or for all (a number), the probability that a sample
  lacks the modality (the key is absent from ``inputs``; the collate marks it in ``present``).
  Applied to every split, seeded by ``(seed, index, modality)``; a sample always keeps at least
  one modality (when all were dropped, one of them, chosen by the seed, is kept), so the
  measured rates are slightly below the configured ones when they are high.

With ``modalities`` holding both ``video`` and ``voice``, each clip file is written *with an
audio track* synthesised from the sample's voice spec, and the voice input is decoded from that
file (:func:`emomm.media.video.read_audio`), exactly like a real audio-visual dataset.
"""
from __future__ import annotations

import zlib
from typing import Any, Mapping, Sequence

import numpy as np
from torch.utils.data import Dataset

from emomm.data.core.emotion_datamodule import EmotionDataModule
from emomm.data.synthetic.registry import SYNTHETIC_MODALITIES
from emomm.data.synthetic.spec import SampleSpec, draw_spec
from emomm.labels import EKMAN7

# Splits use disjoint seeds, so no sample is shared between them.
_SPLIT_SEED_OFFSET = {"train": 0, "val": 1_000_003, "test": 2_000_003}


def _modality_key(m: str) -> int:
    """A stable integer per modality name (Python's ``hash`` of a str changes per process)."""
    return zlib.crc32(m.encode())


def per_modality(value: float | Mapping[str, float] | None, modalities: Sequence[str], default: float,
                 what: str) -> dict[str, float]:
    """``{modality: float}`` from a single number, a dict (missing keys = ``default``) or None."""
    if value is None:
        out = {m: default for m in modalities}
    elif isinstance(value, Mapping):
        unknown = set(value) - set(SYNTHETIC_MODALITIES)
        if unknown:
            raise ValueError(f"data.{what} names unknown modalities {sorted(unknown)}; "
                             f"known: {sorted(SYNTHETIC_MODALITIES)}")
        out = {m: default if value.get(m) is None else float(value[m]) for m in modalities}
    else:
        out = {m: float(value) for m in modalities}
    bad = {m: v for m, v in out.items() if not 0.0 <= v <= 1.0}
    if bad:
        raise ValueError(f"data.{what} must be probabilities in [0, 1], got {bad}")
    return out


class SyntheticDataset(Dataset):
    """Samples ``index`` of one split; see the module docstring for reliability and missing.

    Args:
        generators: ``{modality: generator}`` (see :mod:`emomm.data.synthetic.registry`).
        reliability / missing: ``{modality: probability}``.
    """

    def __init__(self, size: int, seed: int, generators: dict[str, Any], label_names: Sequence[str],
                 reliability: dict[str, float] | None = None, missing: dict[str, float] | None = None):
        self.size, self.seed, self.modalities, self.label_names = size, seed, generators, list(label_names)
        self.labels = [i % len(self.label_names) for i in range(size)]
        self.reliability = {m: 1.0 for m in generators} | dict(reliability or {})
        self.missing = {m: 0.0 for m in generators} | dict(missing or {})
        video, voice = generators.get("video"), generators.get("voice")
        # Audio-visual: the voice is decoded from the video file's own audio track.
        self.av = video is not None and voice is not None and getattr(video, "audio_rate", None)

    def __len__(self) -> int:
        return self.size

    def plan(self, index: int) -> tuple[list[str], dict[str, int]]:
        """The modalities sample ``index`` keeps and the label each modality expresses
        (deterministic; cheap, renders nothing)."""
        K = len(self.label_names)
        label = index % K
        expressed, kept = {}, []
        for m in self.modalities:
            rng = np.random.default_rng([self.seed, index, _modality_key(m)])
            reliable = rng.random() < self.reliability[m]
            expressed[m] = label if reliable or K < 2 else int((label + rng.integers(1, K)) % K)
            if rng.random() >= self.missing[m]:
                kept.append(m)
        if not kept:
            names = list(self.modalities)
            kept = [names[int(np.random.default_rng([self.seed, index, 3]).integers(len(names)))]]
        return kept, expressed

    def spec(self, index: int, label: int) -> SampleSpec:
        return draw_spec(self.seed, index, self.label_names, label=label)

    def __getitem__(self, index: int) -> dict[str, Any]:
        kept, expressed = self.plan(index)
        inputs = {}
        for m in kept:
            gen = self.modalities[m]
            if m == "voice" and self.av:
                video = self.modalities["video"]
                path = video.ensure_file(self.spec(index, expressed["video"]),
                                         audio_spec=self.spec(index, expressed["voice"]))
                inputs[m] = gen.from_file(path, index)
            elif m == "video" and self.av:
                inputs[m] = gen(self.spec(index, expressed["video"]),
                                audio_spec=self.spec(index, expressed["voice"]))
            else:
                inputs[m] = gen(self.spec(index, expressed[m]))
        return {"inputs": inputs, "label": self.labels[index], "index": index}


class SyntheticDataModule(EmotionDataModule):
    """Procedurally generated samples whose modalities follow one emotion (module docstring).

    Args:
        modalities: which modalities to generate (each must be registered).
        options: per-modality generator options, e.g. ``{"face": {"image_size": 64}}``;
            options of modalities not in ``modalities`` are ignored. A generator applies
            its ``augment`` option to the training split only.
        n_train / n_val / n_test: split sizes.
        reliability: probability that a modality expresses the true emotion (a number for
            all, or ``{modality: p}``; default 1 = always).
        missing: probability that a sample lacks a modality (a number or ``{modality: p}``;
            default 0); every sample keeps at least one modality.
        av_audio: with both video and voice, write each clip with its audio track and decode
            the voice from it (default); false: voice generated directly, clips silent.
    """

    def __init__(
        self,
        modalities: Sequence[str] = ("face",),
        options: dict[str, dict | None] | None = None,
        n_train: int = 3000,
        n_val: int = 700,
        n_test: int = 700,
        reliability: float | Mapping[str, float] | None = None,
        missing: float | Mapping[str, float] | None = None,
        av_audio: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        unknown = [m for m in modalities if m not in SYNTHETIC_MODALITIES]
        if unknown:
            raise ValueError(f"synthetic data cannot generate {unknown}; "
                             f"available: {sorted(SYNTHETIC_MODALITIES)}")
        if not modalities:
            raise ValueError("synthetic data needs at least one modality (modalities=[...])")
        self.modalities = list(modalities)
        self.options = {m: dict((options or {}).get(m) or {}) for m in self.modalities}
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.reliability = per_modality(reliability, self.modalities, 1.0, "reliability")
        self.missing = per_modality(missing, self.modalities, 0.0, "missing")
        self.av_audio = bool(av_audio) and {"video", "voice"} <= set(self.modalities)

    @property
    def label_names(self) -> list[str]:
        return list(EKMAN7)

    @property
    def available_modalities(self) -> list[str]:
        return sorted(SYNTHETIC_MODALITIES)

    def _generators(self, train: bool) -> dict[str, Any]:
        gens = {m: SYNTHETIC_MODALITIES[m](self._options(m), train) for m in self.modalities}
        if self.av_audio:
            gens["video"].with_audio(gens["voice"].clip.sample_rate)
        return gens

    def _options(self, m: str) -> dict[str, Any]:
        """Generator options of ``m``; landmarks beside video are per frame of the video's clips."""
        opts = dict(self.options[m])
        if m == "landmarks" and "video" in self.modalities:
            video, syn = self.options["video"], self.options["video"].get("synthetic") or {}
            opts["clip"] = {"num_frames": video.get("num_frames", 8), "clip_frames": syn.get("clip_frames", 12),
                            "motion": syn.get("motion", 1.0)}
        return opts

    def build_splits(self) -> dict[str, Dataset]:
        return {
            split: SyntheticDataset(n, self.seed + _SPLIT_SEED_OFFSET[split],
                                    self._generators(split == "train"), self.label_names,
                                    self.reliability, self.missing)
            for split, n in self.sizes.items()
        }

    @property
    def preprocessing(self) -> dict[str, Any]:
        return {m: g.describe() for m, g in self._generators(False).items()}
