"""Synthetic voice: `synthesize_voice` followed by the clip pipeline of real voice data
(crop/pad to ``voice.duration``, training augmentation from ``voice.augment``)."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from emomm.data.audio import ClipOptions, WaveAugment, sample_rng
from emomm.media.audio import trim_silence
from emomm.data.synthetic.registry import register
from emomm.data.synthetic.spec import SampleSpec
from emomm.data.synthetic.voice import synthesize_voice

log = logging.getLogger(__name__)


@register("voice")
class SyntheticVoice:
    """Options: the top-level ``voice:`` node (sample_rate, duration, pad, trim_db, augment)."""

    def __init__(self, options: dict[str, Any], train: bool) -> None:
        opts = dict(options or {})
        self.clip = ClipOptions(sample_rate=int(opts.pop("sample_rate", 16000)),
                                duration=opts.pop("duration", 3.0), pad=bool(opts.pop("pad", True)),
                                trim_db=opts.pop("trim_db", None))
        augment = opts.pop("augment", None)
        if opts:
            log.warning("synthetic voice ignores options %s", sorted(opts))
        self.train = train
        self.augment = WaveAugment.from_config(augment) if train else None

    def __call__(self, spec: SampleSpec) -> torch.Tensor:
        wave = synthesize_voice(spec, self.clip.sample_rate)
        if self.clip.trim_db:
            wave = trim_silence(wave, self.clip.sample_rate, self.clip.trim_db)
        rng = sample_rng() if self.train else np.random.default_rng([spec.seed, spec.index])
        return self.clip.to_model_input(wave, self.train, self.augment, rng)

    def describe(self) -> dict[str, Any]:
        return self.clip.describe()
