"""What each zoo model is built from: its recipe command, how it is scored, and the card's
words (data licence, input, intended use, limitations). Figures are never written here:
:mod:`emomm.zoo.build` measures them."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipe:
    """One zoo model. ``train``: the ``python -m emomm.train`` overrides (without ``seed``);
    ``evaluate``: extra ``python -m emomm.eval`` overrides (occlusion, groups, views);
    ``data_dir``: the dataset's folder under the data root (``DATA_ROOT/<data_dir>``);
    ``checkpoint``: which checkpoint of a run ships and is scored (``best`` or ``last``: a
    fixed epoch count). ``cv``: the ``python -m emomm.cv`` overrides that chose the recipe;
    when given, the card's figures are that cross-validation's out-of-fold scores (each
    fold's checkpoint on its test speakers) and the temperature is fitted on its out-of-fold
    logits, since ``train`` then trains on every speaker and has no held-out split; ``groups``
    (a ``conf/groups`` name) then gives the per-group gaps of the pooled out-of-fold predictions."""
    name: str
    modality: str
    train: tuple[str, ...]
    data_dir: str
    input: str
    training_data: dict[str, str]
    intended_use: str
    limitations: tuple[str, ...]
    evaluate: tuple[str, ...] = ()
    selection: str = ""
    variants_tried: str = ""
    seeds: tuple[int, ...] = (1, 2, 3)
    checkpoint: str = "best"
    cv: tuple[str, ...] = ()
    groups: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe(
        name="face-fer2013",
        modality="face",
        train=("experiment=fer2013_fast",),
        data_dir="fer2013",
        input="48x48 grayscale face crops (FER2013's format): a photo's faces are found and cropped first "
              "(Predictor: MTCNN), an image of about 48x48 is taken as a crop whole",
        training_data={
            "dataset": "FER2013 (Goodfellow et al. 2013; Kaggle ICML 2013 challenge): 28,709 training faces, "
                       "PublicTest (3,589) as the validation split",
            "licence": "research use (Kaggle competition data; no licence for commercial use)",
            "weights": "trained on research-use data: use the weights for research, not in a product",
        },
        evaluate=("occlusion=[lower,upper,patch:0.2]", "occlusion_examples=0"),
        selection="the fer2013_fast recipe as published, last epoch (fixed: 36 epochs), no selection on the split; "
                  "the first seed listed ships, the others give the spread",
        variants_tried="see docs/results/fer2013.md and the studies it links: the recipes compared on PublicTest",
        intended_use="research and demos: facial expression of one of 7 basic emotions in frontal face photos "
                     "and video frames",
        limitations=(
            "posed and in-the-wild web faces of FER2013, 48x48 grayscale: detail and colour are lost",
            "7 basic-emotion labels: expressions are not felt emotions",
            "FER2013's label noise (about 65% human agreement) bounds what can be learnt",
            "no demographic groups in the data: fairness across groups is not measured",
        ),
    ),
    Recipe(
        name="voice-ravdess",
        modality="voice",
        # every actor of the data (01-20 in the shared copy; 01-24 in the full release), the
        # epoch count of the cross-validated recipe, its last epoch: nothing chosen on a split
        train=("experiment=ravdess_ge2e_frozen", "data.train_speakers=null", "data.val_speakers=[]"),
        cv=("experiment=ravdess_ge2e_frozen", "folds=5"),
        checkpoint="last",
        groups="ravdess_sex",
        seeds=(1,),
        data_dir="ravdess",
        input="16 kHz mono speech, one utterance per clip (any sample rate and common audio format is "
              "resampled; leading and trailing silence is trimmed at 40 dB and the centre 3 s are scored)",
        training_data={
            "dataset": "RAVDESS speech (Livingstone & Russo 2018): 24 professional actors (12 female, 12 male) "
                       "saying two neutral sentences in 8 emotions; actors 01-20 (1,200 clips) as distributed here",
            "licence": "CC BY-NC-SA 4.0",
            "weights": "trained on CC BY-NC-SA 4.0 data: non-commercial use only, and a model derived from them "
                       "is shared under the same licence",
            "pretrained_layers": "layers 1-2 of Resemblyzer's GE2E speaker encoder (Apache-2.0; LibriSpeech, "
                                 "VoxCeleb), held fixed and shipped inside the weights",
        },
        selection="experiment=ravdess_ge2e_frozen (GE2E layers 1-2 frozen, the RAVDESS recipe's heads, 12 epochs, "
                  "last epoch: nothing chosen on a split) scored by 5-fold CV by actor over actors 01-20, then "
                  "trained on every actor with the same 12 epochs; the one candidate whose cross-validation fitted "
                  "the session's budget of shared CPU (2 cores, 8 users, about 90 minutes): the CNN and fully "
                  "fine-tuned GE2E recipes cost a 5-fold CV of hours there, and a second candidate (layer 2 "
                  "fine-tuned, experiment=ravdess_ge2e_top) was started and stopped unfinished "
                  "(experiments/log/2026-12-07-voice-ravdess-zoo-model-by-cross-validation.md)",
        variants_tried="one by cross-validation (above); its epoch count was cut from 25 to 12 to fit the budget; "
                       "the RAVDESS recipes before it had been chosen among forty-odd variants on actors 17-20 "
                       "(docs/results/ravdess.md)",
        intended_use="research and demos: which of 8 acted emotions (RAVDESS's) a short English utterance sounds "
                     "like; non-commercial only",
        limitations=(
            "acted speech by 24 North-American professional actors, two fixed sentences: spontaneous "
            "speech, other languages and accents, noise and far-field microphones are outside what it saw",
            "8 labels including calm, which is close to neutral: they are often confused",
            "about 20 speakers: the spread over cross-validation folds is large, so a new speaker may "
            "score well below the mean",
            "expressions are acted, not felt emotions",
        ),
    ),
]}
