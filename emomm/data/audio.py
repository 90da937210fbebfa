"""Audio reading, resampling, cropping and waveform augmentation (shared by voice datasets).

* :func:`load_audio` reads any sample rate from WAV / FLAC / OGG / MP3 (soundfile) and the
  audio track of video containers (MP4 / AVI / MKV / FLV / WebM / MOV, via PyAV), mixes
  stereo down to mono and resamples with ``torchaudio.functional.resample``. It never uses
  ``torchaudio.load``. Every failure is an :class:`AudioReadError` naming the file.
* :class:`AudioDataset` serves ``{"inputs": {"voice": wave[T]}, ...}`` samples from a file
  list, decoding each file once and caching the resampled waveform in memory.
* :class:`WaveAugment`: random gain, additive noise, time shift and speed perturbation,
  each switchable.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF
from torch.utils.data import Dataset

log = logging.getLogger(__name__)

#: Read with soundfile (libsndfile); other audio suffixes fall back to PyAV.
SOUNDFILE_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff")
#: Containers whose audio track is read with PyAV.
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".avi", ".mkv", ".flv", ".webm", ".mov", ".mpg", ".mpeg")
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS + (".m4a", ".aac", ".opus", ".wma")
MEDIA_EXTENSIONS = AUDIO_EXTENSIONS + VIDEO_EXTENSIONS


class AudioReadError(ValueError):
    """A media file whose audio cannot be read; the message names the file and the fix."""


def _fail(path: Path, why: str) -> AudioReadError:
    return AudioReadError(f"{path}: cannot read audio ({why}). Re-download or re-encode the file "
                          "(e.g. `ffmpeg -i IN -ac 1 OUT.wav`), or delete it.")


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # [T, C]
    return data.T, int(sr)


def _read_av(path: Path) -> tuple[np.ndarray, int]:
    """The first audio stream of any container PyAV (FFmpeg) can decode, as ``[C, T]``."""
    import av

    try:
        container = av.open(str(path))
    except Exception as err:  # PyAV raises a family of FFmpeg errors
        raise _fail(path, f"{type(err).__name__}: {err}") from None
    with container:
        if not container.streams.audio:
            raise AudioReadError(f"{path}: the file has no audio track (streams: "
                                 f"{[s.type for s in container.streams]}); a video-only file "
                                 "cannot feed the voice modality.")
        stream = container.streams.audio[0]
        # Convert every frame to planar float at the native rate and layout, so frames of
        # any codec (s16, fltp, s32p...) concatenate alike.
        resampler = av.AudioResampler(format="fltp")
        chunks, sr = [], None
        try:
            for frame in container.decode(stream):
                sr = sr or frame.sample_rate
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except Exception as err:
            if not chunks:
                raise _fail(path, f"{type(err).__name__}: {err}") from None
            log.warning("%s: audio decoding stopped early (%s); using the %d frames read",
                        path, err, len(chunks))
    if not chunks:
        raise AudioReadError(f"{path}: the audio track holds no samples; re-encode or delete it.")
    channels = max(c.shape[0] for c in chunks)
    data = np.concatenate([c if c.shape[0] == channels else np.repeat(c[:1], channels, 0)
                           for c in chunks], axis=1)
    return data.astype(np.float32, copy=False), int(sr or stream.rate)


def resample(wave: np.ndarray | torch.Tensor, orig_sr: int, new_sr: int) -> np.ndarray:
    """Band-limited (sinc) resampling along the last axis with torchaudio."""
    x = torch.as_tensor(np.ascontiguousarray(wave), dtype=torch.float32)
    if orig_sr == new_sr:
        return x.numpy()
    return AF.resample(x, int(orig_sr), int(new_sr)).numpy()


def load_audio(path: str | Path, sample_rate: int | None = None,
               mono: bool = True) -> tuple[np.ndarray, int]:
    """Read the audio of ``path``.

    Returns ``(wave, sr)``: float32 in [-1, 1] (nominally), ``[T]`` when ``mono`` (channels
    averaged) else ``[C, T]``; ``sr`` is ``sample_rate`` when given (resampled), else the
    file's own rate. Raises :class:`AudioReadError` (a ``ValueError``) naming the file for
    missing, corrupt, empty or track-less files.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        data, sr = _read_av(path)
    else:
        try:
            data, sr = _read_soundfile(path)
        except (sf.LibsndfileError, RuntimeError, TypeError) as err:
            if suffix in (".wav", ".flac", ".aif", ".aiff"):  # libsndfile is authoritative
                raise _fail(path, str(err).strip()) from None
            data, sr = _read_av(path)  # MP3/OGG variants libsndfile rejects, M4A, AAC...
    if data.size == 0 or data.shape[-1] == 0:
        raise AudioReadError(f"{path}: the file holds no audio samples (0 frames); "
                             "re-encode or delete it.")
    if not np.isfinite(data).all():
        raise _fail(path, "it contains NaN or infinite samples")
    if mono:
        data = data.mean(axis=0)
    if sample_rate and sr != sample_rate:
        data = resample(data, sr, int(sample_rate))
        sr = int(sample_rate)
    return np.ascontiguousarray(data, dtype=np.float32), int(sr)


def audio_duration(path: str | Path) -> float:
    """Duration in seconds from the header (cheap); raises :class:`AudioReadError`."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        try:
            info = sf.info(str(path))
            if info.frames <= 0:
                raise AudioReadError(f"{path}: the file holds no audio samples (0 frames)")
            return info.frames / info.samplerate
        except (sf.LibsndfileError, RuntimeError) as err:
            if path.suffix.lower() in (".wav", ".flac", ".aif", ".aiff"):
                raise _fail(path, str(err).strip()) from None
    import av
    try:
        with av.open(str(path)) as c:
            if not c.streams.audio:
                raise AudioReadError(f"{path}: the file has no audio track")
            s = c.streams.audio[0]
            if s.duration is not None and s.time_base is not None:
                return float(s.duration * s.time_base)
            return float(c.duration or 0) / 1e6
    except AudioReadError:
        raise
    except Exception as err:
        raise _fail(path, f"{type(err).__name__}: {err}") from None


# -- length handling -----------------------------------------------------------------------
def trim_silence(wave: np.ndarray, sr: int, top_db: float = 40.0, frame_ms: float = 25.0,
                 margin_s: float = 0.1) -> np.ndarray:
    """Cut leading and trailing stretches quieter than ``top_db`` below the loudest frame.

    Keeps ``margin_s`` of context on each side; a clip with no sound is returned as is.
    """
    hop = max(1, int(sr * frame_ms / 1000))
    n = len(wave) // hop
    if n < 2:
        return wave
    rms = np.sqrt(np.mean(wave[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12)
    db = 20 * np.log10(rms / rms.max())
    loud = np.flatnonzero(db > -float(top_db))
    if len(loud) == 0:
        return wave
    margin = int(margin_s * sr)
    start = max(0, loud[0] * hop - margin)
    stop = min(len(wave), (loud[-1] + 1) * hop + margin)
    return wave[start:stop]


def crop_or_pad(wave: np.ndarray, length: int, random: bool, rng: np.random.Generator | None = None,
                pad: bool = True) -> np.ndarray:
    """Crop to ``length`` samples (random offset when ``random``, else centred); pad with
    zeros at the end when shorter and ``pad`` (else return the shorter clip)."""
    n = len(wave)
    if n > length:
        extra = n - length
        start = int((rng or np.random.default_rng()).integers(0, extra + 1)) if random else extra // 2
        return wave[start:start + length]
    if n < length and pad:
        return np.pad(wave, (0, length - n))
    return wave


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
        speed: ``[low, high]``: speed factor drawn uniformly in that range (Kaldi-style speed
            perturbation: tempo and pitch change together) (prob. ``speed_p``).
    """

    gain_db: float | None = 0.0
    gain_p: float = 1.0
    noise_snr_db: Sequence[float] | None = None
    noise_p: float = 0.5
    shift_s: float | None = 0.0
    shift_p: float = 0.5
    speed: Sequence[float] | None = None
    speed_p: float = 0.5

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
        return bool(self.gain_db or self.noise_snr_db or self.shift_s or self.speed)

    def perturb_speed(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Apply speed perturbation (changes the length; do it before cropping).

        Speed ``s`` reads the waveform ``s`` times faster (``len / s`` samples; played at the
        original rate, tempo and pitch both rise by ``s``), by linear interpolation: cheap
        and thread-free in data-loader workers; its slight high-frequency roll-off is
        harmless as an augmentation.
        """
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

    def describe(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "duration": self.duration, "pad": self.pad,
                "trim_db": self.trim_db}

    def to_model_input(self, wave: np.ndarray, train: bool, augment: WaveAugment | None,
                       rng: np.random.Generator | None) -> torch.Tensor:
        """Speed perturbation -> crop/pad -> gain/shift/noise -> ``float32[T]`` tensor."""
        wave = np.asarray(wave, dtype=np.float32)
        use_aug = train and augment is not None and augment.active
        if use_aug:
            rng = rng or sample_rng()
            wave = augment.perturb_speed(wave, rng)
        if self.duration:
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
    """

    def __init__(self, paths: Sequence[str | Path], labels: Sequence[int], options: ClipOptions,
                 train: bool = False, augment: WaveAugment | None = None,
                 waves: Sequence[np.ndarray] | None = None, cache: bool = True,
                 modality: str = "voice", speakers: Sequence[int] | None = None) -> None:
        if len(paths) != len(labels):
            raise ValueError(f"{len(paths)} paths but {len(labels)} labels")
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
        return {"inputs": {self.modality: x}, "label": self.labels[i], "index": i}


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
