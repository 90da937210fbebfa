"""The latent description of one synthetic sample, shared by every modality.

`draw_spec(seed, index)` is deterministic: the face renderer, and later the voice,
text and video generators, all read the same `SampleSpec`, so a multimodal sample is
one emotion expressed consistently (with modality-specific noise) across its media.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emomm.labels import EKMAN7

#: Expression at full intensity, as offsets of facial action parameters. Values are
#: chosen so classes overlap at low intensity (fear vs surprise, angry vs disgust,
#: sad vs neutral), which keeps the task learnable but not trivial.
EXPRESSIONS: dict[str, dict[str, float]] = {
    #           mouth_curve mouth_open brow_raise brow_tilt eye_open mouth_width wrinkle
    "neutral":  dict(curve=0.0, open=0.05, raise_=0.0, tilt=0.0, eye=0.6, width=1.0, wrinkle=0.0),
    "happy":    dict(curve=0.9, open=0.30, raise_=0.1, tilt=0.0, eye=0.45, width=1.3, wrinkle=0.0),
    "sad":      dict(curve=-0.7, open=0.0, raise_=0.1, tilt=-0.7, eye=0.4, width=0.9, wrinkle=0.0),
    "angry":    dict(curve=-0.3, open=0.15, raise_=-0.5, tilt=0.9, eye=0.55, width=0.9, wrinkle=0.2),
    "surprise": dict(curve=0.0, open=1.0, raise_=0.9, tilt=0.0, eye=1.1, width=0.7, wrinkle=0.0),
    "fear":     dict(curve=-0.3, open=0.6, raise_=0.6, tilt=-0.6, eye=1.0, width=1.2, wrinkle=0.0),
    "disgust":  dict(curve=-0.5, open=0.2, raise_=-0.3, tilt=0.4, eye=0.3, width=1.0, wrinkle=1.0),
}

#: Arousal/valence per emotion (Russell's circumplex, roughly): prosody generators use them.
AROUSAL_VALENCE = {
    "neutral": (0.0, 0.0), "happy": (0.6, 0.8), "sad": (-0.6, -0.7), "angry": (0.8, -0.7),
    "surprise": (0.8, 0.2), "fear": (0.7, -0.6), "disgust": (0.2, -0.6),
}


@dataclass
class SampleSpec:
    index: int
    label: int
    emotion: str
    intensity: float                  # 0 = neutral face, 1 = full expression
    expression: dict[str, float]      # actual facial action parameters after noise
    identity: dict[str, float]        # face shape, tone, speaker pitch, ... (per person)
    pose: dict[str, float]            # rotation, shift, scale
    scene: dict[str, float]           # lighting, occlusion, noise
    seed: int = 0
    extra: dict = field(default_factory=dict)


def draw_spec(seed: int, index: int, label_names=EKMAN7, label: int | None = None) -> SampleSpec:
    """Draw the sample ``index`` of the synthetic dataset with base ``seed``.

    Classes are balanced (label = index mod K); everything else is random but fixed by
    ``(seed, index)``. ``label`` overrides the expressed emotion while keeping the same
    random draws (identity, pose, scene, intensity): an unreliable modality of a sample
    (see :class:`emomm.data.synthetic.datamodule.SyntheticDataset`) shows the same person
    expressing another emotion.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    label = int(index) % len(label_names) if label is None else int(label)
    emotion = label_names[label]
    if emotion not in EXPRESSIONS:
        raise ValueError(f"synthetic data has no expression for {emotion!r}; "
                         f"supported: {sorted(EXPRESSIONS)}")
    intensity = float(rng.uniform(0.35, 1.0))
    neutral, target = EXPRESSIONS["neutral"], EXPRESSIONS[emotion]
    expression = {
        k: neutral[k] + intensity * (target[k] - neutral[k]) + float(rng.normal(0, 0.12))
        for k in neutral
    }
    identity = {
        "face_w": rng.uniform(0.30, 0.38), "face_h": rng.uniform(0.40, 0.48),
        "eye_dx": rng.uniform(0.11, 0.15), "eye_y": rng.uniform(-0.10, -0.04),
        "mouth_y": rng.uniform(0.16, 0.22), "skin": rng.uniform(110, 220),
        "background": rng.uniform(20, 235), "hair": rng.uniform(0.0, 1.0),
        "pitch_hz": rng.choice([rng.uniform(95, 140), rng.uniform(170, 240)]),
    }
    pose = {"angle": rng.normal(0, 10), "dx": rng.normal(0, 0.05), "dy": rng.normal(0, 0.05),
            "scale": rng.uniform(0.85, 1.1)}
    scene = {
        "light_angle": rng.uniform(0, 2 * np.pi), "light_strength": rng.uniform(0, 0.45),
        "contrast": rng.uniform(0.6, 1.2), "noise": rng.uniform(0, 14),
        "occlude": float(rng.random() < 0.25), "occ_x": rng.uniform(0.2, 0.8),
        "occ_y": rng.uniform(0.2, 0.8), "occ_w": rng.uniform(0.15, 0.35),
        "occ_h": rng.uniform(0.1, 0.25), "occ_tone": rng.uniform(0, 255),
    }
    return SampleSpec(index=int(index), label=label, emotion=emotion, intensity=intensity,
                      expression=expression, identity=identity, pose=pose, scene=scene,
                      seed=int(seed))
