"""R-Drop: two dropout passes per training batch, their KL added to the loss; evaluation unchanged."""
import pytest
import torch
import torch.nn.functional as F

from emomm.models.module import EmotionModule
from emomm.models.rdrop import rdrop_alpha, rdrop_loss, symmetric_kl

ENC = {"face": {"_target_": "emomm.models.encoders.face_timm.FaceEncoder", "backbone": "resnet10t", "in_chans": 1}}
FUSION = {"_target_": "emomm.models.fusion.IdentityFusion"}
OPT = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.01}


def test_symmetric_kl_is_zero_for_equal_predictions_and_symmetric_otherwise():
    a, b = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.0, 1.0, 0.5]])
    assert symmetric_kl(a, a + 3.0).item() == pytest.approx(0.0, abs=1e-6)  # a shift is the same softmax
    pa, pb = a.softmax(-1), b.softmax(-1)
    want = 0.5 * ((pa * (pa / pb).log()).sum() + (pb * (pb / pa).log()).sum())
    assert symmetric_kl(a, b).item() == pytest.approx(want.item(), rel=1e-5)
    assert symmetric_kl(b, a).item() == pytest.approx(want.item(), rel=1e-5)
    y = torch.tensor([1])
    loss, kl = rdrop_loss(F.cross_entropy, a, b, y, 2.0)
    assert loss.item() == pytest.approx((0.5 * (F.cross_entropy(a, y) + F.cross_entropy(b, y)) + 2 * want).item())
    assert rdrop_alpha(None) == 0.0 and rdrop_alpha(0.5) == 0.5
    with pytest.raises(ValueError, match=">= 0"):
        rdrop_alpha(-1)


def test_training_runs_two_passes_and_adds_their_kl_while_evaluation_runs_one(monkeypatch):
    torch.manual_seed(0)
    m = EmotionModule(label_names=["a", "b", "c"], encoders=ENC, fusion=FUSION, optimizer=OPT,
                      head_dropout=0.5, rdrop=1.0)
    logged: dict[str, float] = {}
    monkeypatch.setattr(m, "log", lambda name, value, **k: logged.__setitem__(name, float(torch.as_tensor(value).detach())))
    passes = []
    forward = m.net.forward
    monkeypatch.setattr(m.net, "forward", lambda *a, **k: passes.append(1) or forward(*a, **k))
    x, y = torch.randn(4, 1, 48, 48), torch.tensor([0, 1, 2, 1])
    loss = m._step({"inputs": {"face": x}, "label": y}, "train")
    assert len(passes) == 2
    # head dropout at 0.5 makes the passes differ: the KL is positive and part of the loss
    assert logged["train/rdrop_kl"] > 0
    loss.backward()
    assert all(p.grad is not None for p in m.net.parameters())
    passes.clear()
    m.eval()
    with torch.no_grad():  # evaluation: one pass, plain cross-entropy
        val = m._step({"inputs": {"face": x}, "label": y}, "val")
    assert len(passes) == 1
    assert val.item() == pytest.approx(F.cross_entropy(m.net({"face": x}, {}, None), y).item(), rel=1e-5)


def test_rdrop_with_mixup_is_refused():
    with pytest.raises(ValueError, match="rdrop with model.mixup"):
        EmotionModule(label_names=["a", "b"], encoders=ENC, fusion=FUSION, optimizer=OPT,
                      rdrop=1.0, mixup={"alpha": 0.4})
