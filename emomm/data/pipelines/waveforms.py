"""Voice datasets' waveform pipeline: augmentation, clip options and the audio dataset.

* :class:`AudioDataset` serves ``{"inputs": {"voice": wave[T]}, ...}`` samples from a file
  list, decoding each file once (:mod:`emomm.media.audio`) and caching the resampled
  waveform in memory.
* :class:`WaveAugment`: random gain, additive noise, time shift and speed perturbation
  (a uniform factor by interpolation, or Kaldi-style factors such as 0.9/1.0/1.1 by
  band-limited resampling), each switchable.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from emomm.data.core.collate import aux_lists, sample_aux
from emomm.media.audio import AudioReadError, crop_or_pad, load_audio, trim_silence

log = logging.getLogger(__name__)


# -- augmentation ----------------------------------------------------------------------------
@dataclass
class WaveAugment:
    """Training-time waveform augmentation; every part is off when its size is 0/null.

    Args:
        gain_db: random gain, uniform in ``[-gain_db, +gain_db]`` dB (prob. ``gain_p``).
        noise_snr_db: ``[low, high]``: add white noise at a uniform SNR in that range
            (prob. ``noise_p``).
        shift_s: time shift by up to +-``shift_s`` seconds, zero-filled, length kept
            (prob. ``shift_p``).
        speed: ``[low, high]``: speed factor drawn uniformly in that range (tempo and pitch
            change together; linear interpolation) (prob. ``speed_p``).
        speed_choices: e.g. ``[0.9, 1.0, 1.1]``: instead of ``speed``, one of these factors
            drawn uniformly for every clip (``speed_p`` is not used: put 1.0 in the list to
            keep clips unchanged), applied by band-limited resampling
            (``torchaudio.functional.resample``, Ko et al. 2015's speed perturbation).
    """

    gain_db: float | None = 0.0
    gain_p: float = 1.0
    noise_snr_db: Sequence[float] | None = None
    noise_p: float = 0.5
    shift_s: float | None = 0.0
    shift_p: float = 0.5
    speed: Sequence[float] | None = None
    speed_p: float = 0.5
    speed_choices: Sequence[float] | None = None

    def __post_init__(self) -> None:
        if self.speed and self.speed_choices:
            raise ValueError("voice.augment: give speed (a uniform range) or speed_choices "
                             "(discrete factors), not both")
        if self.speed_choices and any(float(v) <= 0 for v in self.speed_choices):
            raise ValueError(f"voice.augment.speed_choices={list(self.speed_choices)}: factors must be > 0")

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> "WaveAugment | None":
        if not cfg:
            return None
        cfg = dict(cfg)
        if not cfg.pop("enabled", True):
            return None
        unknown = set(cfg) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"voice.augment: unknown options {sorted(unknown)}; "
                             f"known: {sorted(cls.__dataclass_fields__)} (+ enabled)")
        return cls(**cfg)

    @property
    def active(self) -> bool:
        return bool(self.gain_db or self.noise_snr_db or self.shift_s or self.speed or self.speed_choices)

    def perturb_speed(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Apply speed perturbation (changes the length; do it before cropping).

        Speed ``s`` reads the waveform ``s`` times faster (``len / s`` samples; played at the
        original rate, tempo and pitch both rise by ``s``), by linear interpolation: cheap
        and thread-free in data-loader workers; its slight high-frequency roll-off is
        harmless as an augmentation.
        """
        if self.speed_choices:
            factor = float(self.speed_choices[int(rng.integers(len(self.speed_choices)))])
            return resample_speed(wave, factor)
        if not self.speed or rng.random() >= self.speed_p:
            return wave
        lo, hi = (float(v) for v in self.speed)
        speed = float(rng.uniform(lo, hi))
        if abs(speed - 1.0) < 1e-3 or speed <= 0:
            return wave
        n = max(1, int(round(len(wave) / speed)))
        positions = np.arange(n, dtype=np.float64) * speed
        return np.interp(positions, np.arange(len(wave)), wave.astype(np.float32)).astype(np.float32)

    def __call__(self, wave: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        """Gain, shift and noise (length-preserving; speed is :meth:`perturb_speed`)."""
        wave = np.array(wave, dtype=np.float32, copy=True)
        if self.shift_s and rng.random() < self.shift_p:
            k = int(rng.integers(-int(self.shift_s * sr), int(self.shift_s * sr) + 1))
            if k:
                shifted = np.zeros_like(wave)
                if k > 0:
                    shifted[k:] = wave[:-k]
                else:
                    shifted[:k] = wave[-k:]
                wave = shifted
        if self.gain_db and rng.random() < self.gain_p:
            wave *= np.float32(10 ** (rng.uniform(-self.gain_db, self.gain_db) / 20))
        if self.noise_snr_db and rng.random() < self.noise_p:
            lo, hi = (float(v) for v in self.noise_snr_db)
            power = float(np.mean(wave.astype(np.float64) ** 2))
            if power > 0:
                snr = rng.uniform(lo, hi)
                sigma = np.sqrt(power / 10 ** (snr / 10))
                wave += rng.normal(0.0, sigma, wave.shape).astype(np.float32)
        return wave


def resample_speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """Speed ``factor`` by band-limited resampling: ``len / factor`` samples, so at the
    original rate tempo and pitch both scale by ``factor`` (``factor`` 1.1 -> 10/11 as long).

    The factor is written as a small fraction p/q (0.9 = 9/10) and the wave resampled from
    rate p to rate q, which torchaudio does with a short polyphase sinc filter: cheap at
    these ratios and free of the interpolation's high-frequency roll-off.
    """
    if abs(factor - 1.0) < 1e-6:
        return np.asarray(wave, dtype=np.float32)
    import torchaudio.functional as AF
    frac = Fraction(float(factor)).limit_denominator(100)
    x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
    return AF.resample(x, frac.numerator, frac.denominator).numpy()


def sample_rng() -> np.random.Generator:
    """A NumPy generator seeded from torch's RNG, which Lightning seeds per worker."""
    return np.random.default_rng(int(torch.randint(0, 2**62, ())))


# -- dataset ---------------------------------------------------------------------------------
@dataclass
class ClipOptions:
    """How a clip becomes a model input (stored in checkpoints as ``preprocessing``)."""

    sample_rate: int = 16000
    duration: float | None = 3.0   # seconds; None = whole clips
    pad: bool = True               # pad to `duration` (fixed size) or leave short clips short
    trim_db: float | None = None   # trim leading/trailing silence quieter than this
    # {"hop_s": 1.0, "window_s": null}: evaluation serves whole clips and the model averages
    # the logits of windows of `window_s` (default: `duration`, the training crop) every
    # `hop_s` (emomm.models.eval_views); None = one centre crop.
    eval_windows: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.eval_windows:
            ew = dict(self.eval_windows)
            unknown = set(ew) - {"window_s", "hop_s"}
            if unknown:
                raise ValueError(f"voice.eval_windows: unknown keys {sorted(unknown)}; known: hop_s, window_s")
            if not (ew.get("window_s") or self.duration):
                raise ValueError("voice.eval_windows needs window_s when voice.duration is null")
            if float(ew.get("hop_s") or 0) <= 0:
                raise ValueError(f"voice.eval_windows.hop_s must be > 0, got {ew.get('hop_s')!r}")
            self.eval_windows = {"window_s": float(ew.get("window_s") or self.duration),
                                 "hop_s": float(ew["hop_s"])}
        else:
            self.eval_windows = None

    def describe(self) -> dict[str, Any]:
        out = {"sample_rate": self.sample_rate, "duration": self.duration, "pad": self.pad,
               "trim_db": self.trim_db}
        if self.eval_windows:  # only when on: older checkpoints and readers see no new key
            out["eval_windows"] = dict(self.eval_windows)
        return out

    def to_model_input(self, wave: np.ndarray, train: bool, augment: WaveAugment | None,
                       rng: np.random.Generator | None) -> torch.Tensor:
        """Speed perturbation -> crop/pad -> gain/shift/noise -> ``float32[T]`` tensor.

        With ``eval_windows``, evaluation (``train=False``) returns the whole clip: the
        model cuts it into windows itself (:mod:`emomm.models.eval_views`)."""
        wave = np.asarray(wave, dtype=np.float32)
        use_aug = train and augment is not None and augment.active
        if use_aug:
            rng = rng or sample_rng()
            wave = augment.perturb_speed(wave, rng)
        if self.duration and (train or not self.eval_windows):
            wave = crop_or_pad(wave, int(round(self.duration * self.sample_rate)),
                               random=train, rng=rng, pad=self.pad)
        if use_aug:
            wave = augment(wave, self.sample_rate, rng)
        return torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))


class AudioDataset(Dataset):
    """Labelled audio files as voice samples.

    Args:
        paths / labels: the files and their integer labels.
        options: sample rate, crop/pad and silence trimming (:class:`ClipOptions`).
        train: random crops and ``augment`` (else centre crops, no augmentation).
        waves: already decoded waveforms (from :func:`read_many`), one per path, kept in
            memory; when None, files are decoded on first access and cached if ``cache``.
        modality: the key of the sample's ``inputs``.
        aux: ``{task: [int]}``, each clip's auxiliary labels (e.g. RAVDESS intensity, sex).
    """

    def __init__(self, paths: Sequence[str | Path], labels: Sequence[int], options: ClipOptions,
                 train: bool = False, augment: WaveAugment | None = None,
                 waves: Sequence[np.ndarray] | None = None, cache: bool = True,
                 modality: str = "voice", speakers: Sequence[int] | None = None,
                 aux: dict[str, Sequence[int]] | None = None) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
        self.aux = aux_lists(aux, len(paths))
        self.paths = [str(p) for p in paths]
        self.labels = [int(x) for x in labels]
        self.speakers = list(speakers) if speakers is not None else None
        self.options, self.train, self.augment = options, train, augment
        self.modality, self.cache = modality, cache
        self._waves: list[np.ndarray | None] = list(waves) if waves is not None else [None] * len(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def wave(self, i: int) -> np.ndarray:
        w = self._waves[i]
        if w is None:
            w = decode_for_cache(self.paths[i], self.options)
            if self.cache:
                self._waves[i] = w
        return w

    def __getitem__(self, i: int) -> dict[str, Any]:
        rng = sample_rng() if self.train else None
        x = self.options.to_model_input(self.wave(i), self.train, self.augment, rng)
        return {"inputs": {self.modality: x}, "label": self.labels[i], "index": i, **sample_aux(self.aux, i)}


def decode_for_cache(path: str | Path, options: ClipOptions) -> np.ndarray:
    """Decode, resample and (optionally) trim one file; float16 halves the cache's memory
    (well below the 16-bit resolution of the source files)."""
    wave, _ = load_audio(path, options.sample_rate)
    if options.trim_db:
        wave = trim_silence(wave, options.sample_rate, options.trim_db)
    return wave.astype(np.float16)


def read_many(paths: Sequence[str | Path], options: ClipOptions, workers: int = 4,
              decode: Callable[[str | Path, ClipOptions], np.ndarray] = decode_for_cache,
              ) -> tuple[list[np.ndarray | None], list[str]]:
    """Decode many files with a thread pool (libsndfile and the resampler release the GIL).

    Returns the waves (None where unreadable) and the reasons for the unreadable files.
    """
    def _one(p):
        try:
            return decode(p, options), None
        except AudioReadError as err:
            return None, str(err)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = list(pool.map(_one, paths))
    return [w for w, _ in results], [e for _, e in results if e]


def report_unreadable(errors: Sequence[str], total: int, what: str = "audio files") -> None:
    """One warning listing (the first few of) the files that could not be read."""
    if errors:
        shown = "\n  ".join(errors[:10]) + ("\n  ..." if len(errors) > 10 else "")
        log.warning("skipped %d of %d %s that could not be read:\n  %s", len(errors), total, what, shown)
