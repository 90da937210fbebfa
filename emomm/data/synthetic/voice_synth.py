"""Synthetic emotional speech: a source-filter "voice" whose prosody follows the emotion.

`synthesize_voice(spec, sample_rate)` renders one utterance of the `SampleSpec`: a
sequence of syllables (consonant noise burst + voiced vowel with formants) on a pitch
contour. The emotion, scaled by the sample's intensity and blurred by per-sample noise,
sets the prosody (pitch level relative to the speaker's own pitch, pitch range and contour,
declination and final rise/fall, loudness, syllable rate and pauses, jitter, shimmer,
tremor, spectral tilt and breathiness). Speaker pitch (male/female range), vocal-tract
length, vowels, syllable count, recording level and background noise vary independently of
the emotion, so the classes overlap (fear vs surprise, angry vs happy, sad vs neutral vs
disgust) and the task is learnable but not trivial. Deterministic per ``(spec.seed,
spec.index)``.
"""
from __future__ import annotations

import numpy as np
import torch

from emomm.data.synthetic.spec import SampleSpec

#: Prosody at full intensity. pitch/range/slope/final in semitones; rate is a multiplier
#: of the syllable rate; energy in dB; jitter/shimmer as fractions; tremor in semitones
#: (5-6 Hz); tilt in dB/octave added to the source's own -6 dB/oct; breath = aspiration.
PROSODY: dict[str, dict[str, float]] = {
    "neutral":  dict(pitch=0.0, range=2.0, slope=-2.0, final=-1.0, rate=1.00, energy=0.0,
                     jitter=0.004, shimmer=0.04, tremor=0.0, tilt=-6.0, breath=0.05, pause=1.0),
    "happy":    dict(pitch=3.0, range=6.0, slope=0.0, final=2.0, rate=1.10, energy=4.0,
                     jitter=0.006, shimmer=0.05, tremor=0.0, tilt=-3.5, breath=0.05, pause=0.8),
    "sad":      dict(pitch=-2.0, range=1.0, slope=-3.0, final=-2.0, rate=0.75, energy=-6.0,
                     jitter=0.010, shimmer=0.08, tremor=0.1, tilt=-9.0, breath=0.20, pause=1.8),
    "angry":    dict(pitch=2.0, range=5.0, slope=-4.0, final=-4.0, rate=1.15, energy=7.0,
                     jitter=0.012, shimmer=0.06, tremor=0.0, tilt=-1.5, breath=0.04, pause=0.7),
    "surprise": dict(pitch=5.0, range=7.0, slope=2.0, final=6.0, rate=1.00, energy=5.0,
                     jitter=0.006, shimmer=0.05, tremor=0.0, tilt=-4.0, breath=0.08, pause=1.0),
    "fear":     dict(pitch=5.0, range=3.0, slope=0.0, final=1.5, rate=1.25, energy=1.0,
                     jitter=0.025, shimmer=0.10, tremor=0.7, tilt=-5.0, breath=0.15, pause=1.2),
    "disgust":  dict(pitch=-2.0, range=3.0, slope=-3.0, final=-3.0, rate=0.80, energy=1.0,
                     jitter=0.014, shimmer=0.08, tremor=0.0, tilt=-7.0, breath=0.10, pause=1.3),
}
#: Per-sample noise (std) added to each prosody parameter after the intensity scaling.
PROSODY_NOISE = dict(pitch=1.3, range=1.2, slope=1.2, final=1.5, rate=0.08, energy=2.0,
                     jitter=0.003, shimmer=0.015, tremor=0.08, tilt=1.2, breath=0.03, pause=0.2)
#: Vowel formants (Hz) of an adult male vocal tract: /a/ /e/ /i/ /o/ /u/.
VOWELS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010],
                   [570, 840, 2410], [300, 870, 2240]], dtype=np.float64)
BANDWIDTHS = np.array([90.0, 110.0, 170.0])

N_FFT, HOP = 512, 128


def prosody_for(spec: SampleSpec, rng: np.random.Generator) -> dict[str, float]:
    neutral, target = PROSODY["neutral"], PROSODY[spec.emotion]
    p = {k: neutral[k] + spec.intensity * (target[k] - neutral[k]) + rng.normal(0, PROSODY_NOISE[k])
         for k in neutral}
    p["rate"] = float(np.clip(p["rate"], 0.55, 1.6))
    p["pause"] = float(max(p["pause"], 0.2))
    for k in ("jitter", "shimmer", "tremor", "breath", "range"):
        p[k] = float(max(p[k], 0.0))
    return p


def _plan(p: dict[str, float], rng: np.random.Generator) -> tuple[list[tuple], float]:
    """Syllables as (start_s, onset_s, nucleus_s, vowel, accent) and the total length."""
    syll = 0.19 / p["rate"]
    t = float(rng.uniform(0.08, 0.3))
    out = []
    n = int(rng.integers(6, 13))
    for i in range(n):
        dur = syll * rng.uniform(0.75, 1.3)
        onset = dur * rng.uniform(0.2, 0.35) if rng.random() < 0.7 else 0.0
        out.append((t, onset, dur - onset, int(rng.integers(len(VOWELS))), rng.random() < 0.4))
        t += dur
        if i < n - 1 and rng.random() < 0.3:
            t += rng.uniform(0.04, 0.16) * p["pause"]
    return out, t + float(rng.uniform(0.08, 0.3))


def _smooth(x: np.ndarray, k: int) -> np.ndarray:
    if k <= 1:
        return x
    kernel = np.hanning(k + 2)[1:-1]
    return np.convolve(x, kernel / kernel.sum(), mode="same")


def synthesize_voice(spec: SampleSpec, sample_rate: int = 16000) -> np.ndarray:
    """One utterance for ``spec``: float32 mono ``[T]`` at ``sample_rate``, peak <= 1."""
    rng = np.random.default_rng([int(spec.seed), int(spec.index), 0x70C3])
    p = prosody_for(spec, rng)
    sr = int(sample_rate)
    syllables, total = _plan(p, rng)
    n = int(total * sr)
    frames = n // HOP + 1
    ft = np.arange(frames) * HOP / sr                                  # frame times

    # -- control signals at frame rate ---------------------------------------------------
    contour = p["slope"] * (ft / total - 0.5)                        # declination
    voiced = np.zeros(frames)
    cons = np.zeros(frames)
    vowel_idx = np.zeros(frames, dtype=int)
    for k, (start, onset, nucleus, vowel, accent) in enumerate(syllables):
        if onset:
            sel = (ft >= start) & (ft < start + onset)
            cons[sel] = np.maximum(cons[sel], np.sin(np.pi * (ft[sel] - start) / onset) ** 0.5)
        a = start + onset
        sel = (ft >= a) & (ft < a + nucleus)
        x = (ft[sel] - a) / nucleus
        voiced[sel] = np.sin(np.pi * np.clip(x * 1.15, 0, 1)) ** 0.6
        vowel_idx[sel] = vowel
        bump = (p["range"] * rng.uniform(0.6, 1.0) if accent else rng.normal(0, 0.3))
        peak = rng.uniform(0.3, 0.7)
        contour[sel] += bump * np.exp(-0.5 * ((x - peak) / 0.28) ** 2)
        if k == len(syllables) - 1:
            contour[sel] += p["final"] * x
    contour += _smooth(rng.normal(0, 0.25, frames), 9)                # micro-prosody
    contour += p["tremor"] * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * ft + rng.uniform(0, 6.3))
    # Speaker: pitch baseline from the identity, vocal-tract length scaled with it.
    base_hz = float(spec.identity["pitch_hz"]) * 2 ** (p["pitch"] / 12)
    tract = (1.0 + 0.17 * (spec.identity["pitch_hz"] > 160)) * rng.uniform(0.94, 1.06)

    # -- glottal source at sample rate -----------------------------------------------------
    st = np.interp(np.arange(n) / sr, ft, contour)
    f0 = base_hz * 2 ** (st / 12)
    jit = _smooth(rng.normal(0, 1, n), max(3, sr // 400))
    f0 = f0 * (1 + p["jitter"] * jit / (jit.std() + 1e-9))
    f0 = np.clip(f0, 50, 0.45 * sr / 2)
    phase = np.cumsum(f0) / sr
    cycles = phase.astype(np.int64)
    shimmer = 1 + p["shimmer"] * rng.normal(0, 1, cycles[-1] + 2)
    source = (1 - 2 * (phase - cycles)) * shimmer[cycles]               # sawtooth, -6 dB/oct
    noise = rng.normal(0, 1, n)

    # -- time-varying filter in the STFT domain ----------------------------------------------
    win = torch.hann_window(N_FFT)
    both = torch.from_numpy(np.stack([source, noise]).astype(np.float32))
    spec_src, spec_noise = torch.stft(both, N_FFT, HOP, window=win, pad_mode="constant",
                                      return_complex=True)
    freqs = np.fft.rfftfreq(N_FFT, 1 / sr)[:, None]                    # [bins, 1]
    fmts = VOWELS[vowel_idx] * tract                                   # [frames, 3]
    fmts = np.stack([_smooth(np.pad(fmts[:, i], 4, mode="edge"), 7)[4:-4] for i in range(3)], 1)
    env = sum(g / (1 + ((freqs - fmts[None, :, i]) / (BANDWIDTHS[i] * tract / 2)) ** 2)
              for i, g in enumerate((1.0, 0.7, 0.35))) + 0.01            # [bins, frames]
    tilt = (np.maximum(freqs, 100) / 100) ** (p["tilt"] / 6.02)
    voiced_gain = env * tilt * voiced[None, :]
    hiss = np.clip((freqs - 1500) / 3000, 0, 1) ** 1.5                   # fricative colour
    noise_gain = 0.1 * hiss * cons[None, :] + p["breath"] * env * voiced[None, :] * (freqs / 4000) ** 0.5
    spec_out = (spec_src * torch.from_numpy((voiced_gain * 0.2).astype(np.float32))
                + spec_noise * torch.from_numpy((noise_gain * 0.05).astype(np.float32)))
    wave = torch.istft(spec_out, N_FFT, HOP, window=win, length=n).numpy().astype(np.float64)

    # -- level, recording gain and background noise ---------------------------------------------
    active = np.repeat(voiced > 0.3, HOP)[:n]
    rms = np.sqrt(np.mean(wave[active] ** 2)) if active.any() else np.sqrt(np.mean(wave ** 2))
    level_db = -26 + p["energy"] + rng.uniform(-5, 5)                 # recording level varies
    wave = wave / (rms + 1e-9) * 10 ** (level_db / 20)
    snr_db = rng.uniform(18, 40)
    bg = _smooth(rng.normal(0, 1, n), 2)
    wave = wave + bg / (bg.std() + 1e-9) * 10 ** ((level_db - snr_db) / 20)
    peak = np.abs(wave).max()
    if peak > 0.99:
        wave = wave * (0.99 / peak)
    return wave.astype(np.float32)
