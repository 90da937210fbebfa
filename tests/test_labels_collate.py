"""Label names and the batch contract (fusion modules: tests/test_fusion.py)."""
import pytest
import torch

from emomm.data.core.collate import collate_samples
from emomm.labels import FER2013, canonical, label_mapping


def test_canonical_accepts_dataset_spellings():
    assert canonical("Fearful") == "fear"
    assert canonical("disgusted") == "disgust"
    assert canonical("SUR") == "surprise"
    assert canonical("joy") == "happy"
    with pytest.raises(KeyError, match="unknown emotion label 'bored'"):
        canonical("bored")


def test_label_mapping_by_name_and_missing_labels_left_out():
    meld = ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]
    m = label_mapping(meld, FER2013)
    assert m == {0: 6, 1: 5, 2: 2, 3: 4, 4: 3, 5: 1, 6: 0}
    assert label_mapping(["calm", "happy"], FER2013) == {1: 3}


def test_collate_pads_time_and_marks_missing_modalities():
    samples = [
        {"inputs": {"voice": torch.ones(5), "face": torch.ones(1, 4, 4)}, "label": 1, "index": 0},
        {"inputs": {"voice": torch.ones(3)}, "label": 2, "index": 1},
    ]
    b = collate_samples(samples)
    assert b["inputs"]["voice"].shape == (2, 5)
    assert b["lengths"]["voice"].tolist() == [5, 3]
    assert b["inputs"]["voice"][1, 3:].abs().sum() == 0
    assert b["inputs"]["face"].shape == (2, 1, 4, 4)
    assert b["present"]["face"].tolist() == [True, False]
    assert "face" not in b["lengths"]
    assert b["label"].tolist() == [1, 2]


def test_collate_rejects_mismatched_non_time_dims():
    samples = [{"inputs": {"face": torch.ones(1, 4, 4)}, "label": 0},
               {"inputs": {"face": torch.ones(1, 5, 5)}, "label": 0}]
    with pytest.raises(ValueError, match="more than the first"):
        collate_samples(samples)
