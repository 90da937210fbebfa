import pytest
import torch

from emomm.data.collate import collate_samples
from emomm.labels import FER2013, canonical, label_mapping
from emomm.models.fusion import AttentionFusion, ConcatFusion, IdentityFusion, LateFusion


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


@pytest.mark.parametrize("cls", [ConcatFusion, LateFusion, AttentionFusion])
def test_fusions_ignore_absent_modalities(cls):
    torch.manual_seed(0)
    fusion = cls(in_dims={"face": 8, "voice": 6}).eval()
    feats = {"face": torch.randn(3, 8), "voice": torch.randn(3, 6)}
    present = {"face": torch.tensor([True, True, True]), "voice": torch.tensor([False, True, False])}
    out = fusion(feats, present)
    assert out.shape == (3, fusion.out_dim)
    # Changing an absent modality's features must not change the output.
    feats2 = {"face": feats["face"], "voice": feats["voice"] + 100 * torch.randn(3, 6)}
    out2 = fusion(feats2, present)
    assert torch.allclose(out[[0, 2]], out2[[0, 2]], atol=1e-5)
    assert not torch.allclose(out[1], out2[1])


def test_identity_fusion_needs_exactly_one_modality():
    assert IdentityFusion({"face": 4})({"face": torch.ones(2, 4)}).shape == (2, 4)
    with pytest.raises(ValueError, match="exactly one modality"):
        IdentityFusion({"face": 4, "voice": 4})
