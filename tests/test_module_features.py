import time

import pytest
import torch

from emomm.models.module import EmotionModule
from emomm.models.schedulers import warmup_cosine

ENC = {"face": {"_target_": "emomm.models.encoders.face_timm.FaceEncoder", "backbone": "resnet10t", "in_chans": 1}}
FUSION = {"_target_": "emomm.models.fusion.IdentityFusion"}
OPT = {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3}


def test_cosine_schedule_by_steps_and_by_wall_clock_budget(monkeypatch):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = warmup_cosine(opt, total_steps=100, warmup_fraction=0.1, min_lr_ratio=0.0)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[55] == pytest.approx(0.5, abs=0.03) and lrs[-1] < 0.01
    # A budget far shorter than the step count: annealed once the budget is spent. The clock is
    # the test's (a loaded machine must not decide it).
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s2 = warmup_cosine(opt2, total_steps=10**6, warmup_fraction=1e-6, min_lr_ratio=0.05, time_budget_s=0.2)
    now[0] += 0.01
    opt2.step(); s2.step()
    assert opt2.param_groups[0]["lr"] > 0.9
    now[0] += 0.25
    opt2.step(); s2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.05)


def test_hflip_tta_averages_mirrored_logits():
    torch.manual_seed(0)
    m = EmotionModule(label_names=["a", "b", "c"], encoders=ENC, fusion=FUSION, optimizer=OPT,
                      tta_hflip=["face"]).eval()
    x = torch.randn(2, 1, 32, 32)
    batch = {"inputs": {"face": x}, "present": {}, "lengths": {}}
    with torch.no_grad():
        plain = m.net({"face": x})
        mirrored = m.net({"face": x.flip(-1)})
        assert torch.allclose(m(batch), 0.5 * (plain + mirrored), atol=1e-5)
        assert not torch.allclose(m(batch), plain)
        m.train()
        m.net.eval()  # same weights and no dropout noise, but module in training mode: no TTA
        assert torch.allclose(m(batch), plain, atol=1e-5)


def test_shift_views_move_the_image_and_repeat_its_edges():
    from emomm.models.eval_views import shift_image, tta_views

    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0
    x[0, 0, :, 0] = 2.0                      # left edge column
    moved = shift_image(x, dx=1, dy=-1)      # right 1, up 1
    assert moved.shape == x.shape and moved[0, 0, 1, 3] == 1.0 and moved[0, 0, 2, 2] == 0.0
    assert torch.all(moved[0, 0, :, :2] == 2.0)  # the uncovered column repeats the edge
    clip = torch.randn(2, 3, 1, 8, 8)        # face clips [B, T, C, H, W] shift frame by frame
    assert torch.equal(shift_image(clip, 2, 0)[:, 1], shift_image(clip[:, 1], 2, 0))
    voice = torch.ones(1, 4)
    views = tta_views({"face": x, "voice": voice}, hflip=["face"], shift={"face": 1})
    assert len(views) == 10 and all(v["voice"] is voice for v in views)  # other modalities untouched
    assert sum(torch.equal(v["face"], x.flip(-1)) for v in views) == 1


def test_shift_and_flip_tta_average_ten_views():
    from emomm.models.eval_views import tta_views

    torch.manual_seed(0)
    m = EmotionModule(label_names=["a", "b", "c"], encoders=ENC, fusion=FUSION, optimizer=OPT,
                      tta_hflip=["face"], tta_shift={"face": 2}).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        views = tta_views({"face": x}, ["face"], {"face": 2})
        expected = torch.stack([m.net(v) for v in views]).mean(0)
        assert torch.allclose(m({"inputs": {"face": x}}), expected, atol=1e-5)


class EvalModeEncoder(torch.nn.Module):
    """Like a `from_pretrained` model: it comes back in eval mode."""
    out_dim = 4

    def __init__(self):
        super().__init__()
        self.drop = torch.nn.Dropout(0.5)
        self.eval()

    def forward(self, x, lengths=None):
        return self.drop(x)


def test_module_starts_in_training_mode_even_with_eval_mode_submodules():
    enc = {"x": {"_target_": "tests.test_module_features.EvalModeEncoder"}}
    m = EmotionModule(label_names=["a", "b"], encoders=enc, fusion=FUSION, optimizer=OPT)
    assert all(mod.training for mod in m.modules())


def test_compile_keeps_checkpoint_keys_loadable_without_compile():
    m = EmotionModule(label_names=["a", "b"], encoders=ENC, fusion=FUSION, optimizer=OPT, compile=True)
    keys = set(m.state_dict())
    m.setup("fit")  # compiles the network (lazily: nothing is traced until the first call)
    assert set(m.state_dict()) == keys and not any("_orig_mod" in k for k in keys)
    plain = EmotionModule(label_names=["a", "b"], encoders=ENC, fusion=FUSION, optimizer=OPT)
    plain.load_state_dict(m.state_dict())  # strict: every key matches


def test_face_encoder_without_stem_pool_keeps_twice_the_resolution():
    from emomm.models.encoders.face_timm import FaceEncoder

    x = torch.randn(2, 1, 48, 48)
    pooled = FaceEncoder("resnet10t", in_chans=1).net.forward_features(x)
    unpooled_enc = FaceEncoder("resnet10t", in_chans=1, stem_pool=False)
    assert pooled.shape[-1] == 2 and unpooled_enc.net.forward_features(x).shape[-1] == 3
    assert unpooled_enc(x).shape == (2, unpooled_enc.out_dim)
    with pytest.raises(ValueError, match="no stem max-pool"):
        FaceEncoder("efficientnet_b0", in_chans=1, stem_pool=False)
