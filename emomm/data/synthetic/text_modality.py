"""Synthetic utterances (``data=synthetic modality=text``): wording follows the emotion.

An utterance is built from the sample's shared `SampleSpec` (the same emotion and
intensity as its face and voice): an opener, an everyday topic, and emotion cue phrases
whose number and strength grow with the intensity. It is ambiguous on purpose, so text
alone is not perfect: weak samples may carry no cue at all (they read as neutral), cues of
a confusable emotion are mixed in (fear/surprise, anger/disgust, sadness/neutral,
joy/surprise) with probability ``ambiguity``, and some cues are negated the other way
("not happy at all" for sadness). Deterministic per ``(seed, index)``; ``augment.word_dropout``
drops words of training samples (torch's RNG, so ``seed_everything`` fixes it).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from emomm.data.synthetic.registry import register
from emomm.data.synthetic.spec import SampleSpec

OPENERS = ["", "", "well,", "so", "okay,", "you know,", "honestly,", "hey,", "look,", "um,"]
SUBJECTS = ["the meeting", "dinner", "my sister", "the new job", "this apartment", "the test results",
            "your brother", "the trip", "that phone call", "the party", "the car", "our neighbours",
            "the letter", "this weekend", "the interview", "the wedding", "the coffee", "the movie"]
LINKS = ["about", "with", "after", "because of", "during"]
FILLERS = ["", "", "", "I guess.", "right?", "anyway.", "for real.", "I think.", "again."]
INTENSIFIERS = ["really", "so", "totally", "seriously", "completely"]

#: cue phrases per emotion: strong ones appear with high intensity, weak ones any time.
CUES: dict[str, dict[str, list[str]]] = {
    "happy": {"strong": ["this is wonderful", "I love it", "best day ever", "I'm thrilled",
                         "that's fantastic"],
              "weak": ["nice", "great", "glad", "fun", "good news"]},
    "sad": {"strong": ["I miss her so much", "I feel terrible", "it breaks my heart",
                       "I can't stop crying", "I'm heartbroken"],
            "weak": ["sorry", "lonely", "down", "tired of it", "it's over"]},
    "angry": {"strong": ["I'm furious", "how dare you", "this is ridiculous", "get out",
                         "I'm sick of this"],
              "weak": ["annoyed", "unfair", "stop it", "whatever", "you never listen"]},
    "fear": {"strong": ["I'm terrified", "please don't leave me", "something is wrong",
                        "I'm scared", "what if they find us"],
             "weak": ["nervous", "worried", "oh no", "careful", "what was that"]},
    "surprise": {"strong": ["no way", "I can't believe it", "are you serious", "what just happened",
                            "you did what"],
                 "weak": ["oh", "really?", "wow", "huh", "wait what"]},
    "disgust": {"strong": ["that's disgusting", "ew gross", "it makes me sick", "that smells awful",
                           "yuck"],
                "weak": ["gross", "nasty", "ugh", "weird", "eww"]},
    "neutral": {"strong": ["it's at noon", "I'll be there", "it is what it is", "let me check",
                           "sounds fine"],
                "weak": ["okay", "sure", "fine", "I see", "alright"]},
}
#: emotions that share wording (the source of intended ambiguity)
CONFUSABLE = {"happy": "surprise", "sad": "neutral", "angry": "disgust", "fear": "surprise",
              "surprise": "fear", "disgust": "angry", "neutral": "sad"}
#: negated cues of another emotion that express this one
NEGATED = {"sad": ("happy", "not {cue} at all"), "happy": ("sad", "no longer {cue}")}

# Keys of the shared `text:` node that other parts of the pipeline use (not the generator's).
_SHARED_KEYS = {"max_length", "context_turns", "speakers", "repair", "normalize", "generator"}


def compose_utterance(spec: SampleSpec, ambiguity: float = 0.3) -> str:
    """The deterministic utterance of ``spec`` (no augmentation)."""
    rng = np.random.default_rng([int(spec.seed), int(spec.index), 0x7E47])
    emotion = spec.emotion if spec.emotion in CUES else "neutral"
    k = spec.intensity  # 0.35 .. 1
    words: list[str] = []
    opener = OPENERS[rng.integers(len(OPENERS))]
    subject = SUBJECTS[rng.integers(len(SUBJECTS))]
    n_cues = int(rng.binomial(3, k)) if emotion != "neutral" else int(rng.integers(0, 2))
    cues = []
    for _ in range(n_cues):
        strength = "strong" if rng.random() < k else "weak"
        cues.append(CUES[emotion][strength][rng.integers(5)])
    if emotion in NEGATED and rng.random() < 0.25:
        other, pattern = NEGATED[emotion]
        cues.append(pattern.format(cue=CUES[other]["weak"][rng.integers(5)]))
    if rng.random() < ambiguity:
        other = CONFUSABLE[emotion]
        cues.insert(int(rng.integers(len(cues) + 1)), CUES[other]["weak" if rng.random() < 0.6 else "strong"][rng.integers(5)])
    if cues and k > 0.75 and rng.random() < 0.5:
        cues[0] = f"{INTENSIFIERS[rng.integers(len(INTENSIFIERS))]} {cues[0]}"
    if opener:
        words.append(opener)
    topic = f"{LINKS[rng.integers(len(LINKS))]} {subject}" if rng.random() < 0.7 else subject
    body = cues[:]
    body.insert(int(rng.integers(len(body) + 1)), topic)
    words.append(", ".join(body))
    filler = FILLERS[rng.integers(len(FILLERS))]
    if filler:
        words.append(filler)
    text = " ".join(words).strip()
    return text[:1].upper() + text[1:]


@register("text")
class SyntheticText:
    """Options (the top-level ``text:`` node): ``ambiguity`` (probability of a confusable
    emotion's cue), ``augment.word_dropout`` (training only). The node's other keys
    (``max_length``, ``context_turns``...) belong to the encoder and real datasets."""

    def __init__(self, options: dict[str, Any], train: bool) -> None:
        opts = dict(options or {})
        self.ambiguity = float(opts.pop("ambiguity", 0.3))
        augment = dict(opts.pop("augment", None) or {})
        word_dropout = float(augment.pop("word_dropout", 0.1))
        self.word_dropout = word_dropout if train else 0.0
        unknown = (set(opts) - _SHARED_KEYS) | set(augment)
        if unknown:
            raise ValueError(f"synthetic text: unknown options {sorted(unknown)}; known: ambiguity, "
                             f"augment.word_dropout (and the shared {sorted(_SHARED_KEYS)})")
        if not 0.0 <= self.ambiguity <= 1.0:
            raise ValueError(f"text.ambiguity must be in [0, 1], got {self.ambiguity}")

    def __call__(self, spec: SampleSpec) -> str:
        text = compose_utterance(spec, self.ambiguity)
        if self.word_dropout > 0:
            words = text.split()
            keep = (torch.rand(len(words)) >= self.word_dropout).tolist()
            kept = [w for w, k in zip(words, keep) if k]
            text = " ".join(kept) if kept else text
        return text

    def describe(self) -> dict[str, Any]:
        return {"generator": "templates", "ambiguity": self.ambiguity}
