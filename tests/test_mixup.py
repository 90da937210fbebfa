"""Mixup: inputs and labels mixed in pairs, in training only."""
import pytest
import torch
import torch.nn.functional as F

from emomm.models import objective as objective_mod
from emomm.models.mixup import Mix, mix_batch, mixed_targets, mixup_settings
from emomm.callbacks.ogm_ge import GradientModulation
from emomm.models.module import EmotionModule

ENC = {"face": {"_target_": "emomm.models.encoders.face_timm.FaceEncoder", "backbone": "resnet10t", "in_chans": 1}}
FUSION = {"_target_": "emomm.models.fusion.IdentityFusion"}
OPT = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.01}


def test_padded_waves_mix_over_the_longer_length_and_text_is_refused():
    wave = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 0.0, 0.0]])  # clip 1 padded after 2 samples
    batch = {"inputs": {"voice": wave}, "lengths": {"voice": torch.tensor([4, 2])},
             "present": {"voice": torch.tensor([True, False])}, "label": torch.tensor([0, 1])}
    out = mix_batch(batch, Mix(0.75, torch.tensor([1, 0])))
    assert torch.allclose(out["inputs"]["voice"], torch.tensor([[1.25, 1.25, 0.75, 0.75], [1.75, 1.75, 0.25, 0.25]]))
    assert out["lengths"]["voice"].tolist() == [4, 4] and out["present"]["voice"].tolist() == [True, True]
    assert batch["inputs"]["voice"] is wave and out["label"] is batch["label"]  # the batch itself unchanged
    with pytest.raises(ValueError, match="text inputs are list"):
        mix_batch({"inputs": {"text": ["hi", "there"]}, "label": torch.tensor([0, 1])}, Mix(0.5, torch.tensor([1, 0])))
    assert mixup_settings(None) is None and mixup_settings({"alpha": 0.2}) == (0.2, 1.0)
    with pytest.raises(ValueError, match="alpha > 0"):
        mixup_settings({"alpha": 0})


def test_training_loss_is_the_mixed_cross_entropy_and_evaluation_is_unmixed(monkeypatch):
    torch.manual_seed(0)
    m = EmotionModule(label_names=["a", "b", "c"], encoders=ENC, fusion=FUSION, optimizer=OPT,
                      head_dropout=0.0, mixup={"alpha": 0.4})
    monkeypatch.setattr(m, "log", lambda *a, **k: None)
    x, y = torch.randn(4, 1, 48, 48), torch.tensor([0, 1, 2, 1])
    mix = Mix(0.3, torch.tensor([2, 3, 0, 1]))
    monkeypatch.setattr(objective_mod, "draw_mix", lambda *a, **k: mix)
    loss = m._step({"inputs": {"face": x}, "label": y}, "train")
    mixed = 0.3 * x + 0.7 * x[mix.perm]
    logits = m.net({"face": mixed}, {}, None)  # train mode: BatchNorm on the same batch statistics
    want = 0.3 * F.cross_entropy(logits, y) + 0.7 * F.cross_entropy(logits, y[mix.perm])
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert loss.item() != pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-3)
    m.eval()
    with torch.no_grad():  # validation never mixes, whatever draw_mix would say
        val = m._step({"inputs": {"face": x}, "label": y}, "val")
        assert val.item() == pytest.approx(F.cross_entropy(m.net({"face": x}, {}, None), y).item(), rel=1e-5)


def test_gradient_modulation_scores_mixed_samples_against_both_labels():
    """OGM-GE's confidence under mixup is the probability of the mixed target: a head sure
    of each sample's own label scores lam, not 1, when the partner's label is another."""
    labels, mix = torch.tensor([0, 1]), Mix(0.75, torch.tensor([1, 0]))
    targets = mixed_targets(labels, 3, mix)
    assert torch.allclose(targets, torch.tensor([[0.75, 0.25, 0.0], [0.25, 0.75, 0.0]]))
    assert torch.equal(mixed_targets(labels, 3, None), F.one_hot(labels, 3).float())
    sure = torch.tensor([[20.0, 0, 0], [0, 20.0, 0]])  # softmax ~ one-hot on each own label
    present = {m: torch.ones(2, dtype=torch.bool) for m in ("face", "voice")}
    gm = GradientModulation(alpha=1.0, noise=False)
    gm.measure({"face": sure, "voice": sure}, present, targets)
    assert gm.coeffs == {"face": 1.0, "voice": 1.0}  # equal scores: neither slowed
    hard = GradientModulation(alpha=1.0, noise=False)
    # against a uniform head (1/3), the mixed score 0.75 makes face dominant by rho = 2.25
    uniform = torch.zeros(2, 3)
    c_soft = gm.measure({"face": sure, "voice": uniform}, present, targets)["face"]
    c_hard = hard.measure({"face": sure, "voice": uniform}, present, labels)["face"]
    rho_soft = 0.75 / (1 / 3)
    assert c_soft == pytest.approx(1 - torch.tanh(torch.tensor(rho_soft - 1.0)).item(), abs=1e-4)
    # scored against the first label only it would look surer, and be slowed more
    assert c_hard == pytest.approx(1 - torch.tanh(torch.tensor(3.0 - 1.0)).item(), abs=1e-4) and c_hard < c_soft
