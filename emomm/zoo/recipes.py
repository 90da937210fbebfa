"""What each zoo model is built from: its recipe command, how it is scored, and the card's
words (data licence, input, intended use, limitations). Figures are never written here:
:mod:`emomm.zoo.build` measures them."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipe:
    """One zoo model. ``train``: the ``python -m emomm.train`` overrides (without ``seed``);
    ``evaluate``: extra ``python -m emomm.eval`` overrides (occlusion, groups, views);
    ``data_dir``: the dataset's folder under the data root (``DATA_ROOT/<data_dir>``)."""
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
]}
