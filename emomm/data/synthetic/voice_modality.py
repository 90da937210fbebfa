"""Synthetic voice: `synthesize_voice` followed by the clip pipeline of real voice data
(crop/pad to ``voice.duration``, training augmentation from ``voice.augment``)."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from emomm.data.pipelines.waveforms import ClipOptions, WaveAugment, sample_rng
from emomm.media.audio import trim_silence
from emomm.data.synthetic.registry import register
from emomm.data.synthetic.spec import SampleSpec
from emomm.data.synthetic.voice_synth import synthesize_voice
from emomm.media.video import read_audio

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
        self._decoded: dict[str, np.ndarray] = {}   # audio tracks read from clip files

    def _finish(self, wave: np.ndarray, seed: int, index: int) -> torch.Tensor:
        if self.clip.trim_db:
            wave = trim_silence(wave, self.clip.sample_rate, self.clip.trim_db)
        rng = sample_rng() if self.train else np.random.default_rng([seed, index])
        return self.clip.to_model_input(wave, self.train, self.augment, rng)

    def __call__(self, spec: SampleSpec) -> torch.Tensor:
        return self._finish(synthesize_voice(spec, self.clip.sample_rate), spec.seed, spec.index)

    def from_file(self, path, index: int) -> torch.Tensor:
        """The voice input decoded from the audio track of a synthetic clip file (decoded once,
        then kept in memory like the real voice datasets do)."""
        key = str(path)
        if key not in self._decoded:
            self._decoded[key] = read_audio(path, self.clip.sample_rate)[0].astype(np.float16)
        return self._finish(self._decoded[key].astype(np.float32), 0, index)

    def describe(self) -> dict[str, Any]:
        return self.clip.describe()
