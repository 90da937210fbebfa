"""The warm-up + cosine schedule defined by epochs (no wall-clock deadline)."""
import pytest
import torch

from emomm.models.module import EmotionModule
from emomm.models.schedulers import warmup_cosine

ENC = {"face": {"_target_": "emomm.models.encoders.face_timm.FaceEncoder", "backbone": "resnet10t", "in_chans": 1}}
FUSION = {"_target_": "emomm.models.fusion.IdentityFusion"}


def lrs(total, **kw):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    s = warmup_cosine(opt, total_steps=total, min_lr_ratio=0.01, **kw)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    return out + [opt.param_groups[0]["lr"]]  # the rate after the last step


def test_warmup_in_epochs_then_cosine_to_the_floor():
    r = lrs(50, warmup_epochs=2, steps_per_epoch=10)
    assert r[0] == pytest.approx(0.1 / 20) and r[19] == pytest.approx(0.1)   # warm-up end: 20 steps
    assert r[20] == pytest.approx(0.1) and all(a >= b for a, b in zip(r[20:], r[21:]))
    assert r[-1] == pytest.approx(0.1 * 0.01)                                # annealed at total_steps
    assert r[49] < 0.1 * 0.02
    mid = 20 + 15                                                            # half-way through the cosine
    assert r[mid] == pytest.approx(0.1 * (0.01 + 0.99 * 0.5), rel=1e-6)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        lrs(10, warmup_epochs=1)


def test_module_fills_steps_per_epoch_from_the_trainer():
    """`steps_per_epoch: auto` = estimated_stepping_batches / max_epochs."""
    sched = {"scheduler": {"_target_": "emomm.models.schedulers.warmup_cosine", "_partial_": True,
                           "total_steps": "auto", "steps_per_epoch": "auto", "warmup_epochs": 1,
                           "time_budget_s": None}, "interval": "step"}
    m = EmotionModule(label_names=["a", "b"], encoders=ENC, fusion=FUSION, scheduler=sched,
                      optimizer={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 1.0})

    class T:  # the two trainer attributes configure_optimizers reads
        estimated_stepping_batches = 120
        max_epochs = 4

    m._trainer = T()  # noqa: SLF001 (a stand-in for a fitted trainer)
    out = m.configure_optimizers()
    s, opt = out["lr_scheduler"]["scheduler"], out["optimizer"]
    factors = [s.lr_lambdas[0](i) for i in (0, 29, 30, 120)]
    assert factors[0] == pytest.approx(1 / 30) and factors[1] == pytest.approx(1.0)
    assert factors[2] == pytest.approx(1.0) and factors[3] == pytest.approx(0.01)
    assert opt.param_groups[0]["lr"] == pytest.approx(1 / 30)


def test_head_lr_scale_gives_fusion_and_heads_their_own_rate_under_one_schedule():
    sched = {"scheduler": {"_target_": "emomm.models.schedulers.warmup_cosine", "_partial_": True,
                           "total_steps": "auto", "warmup_fraction": 0.1}, "interval": "step"}
    opt = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.01}

    class T:
        estimated_stepping_batches = 100
        max_epochs = 2

    def optimizer(**kw):
        m = EmotionModule(label_names=["a", "b"], encoders=ENC, fusion=FUSION, scheduler=sched, optimizer=opt, **kw)
        m._trainer = T()  # noqa: SLF001
        return m, m.configure_optimizers()

    m, out = optimizer()                                     # the default: one group, one rate
    assert len(out["optimizer"].param_groups) == 1
    m, out = optimizer(head_lr_scale=10.0)
    enc, rest = out["optimizer"].param_groups
    assert {id(p) for p in enc["params"]} == {id(p) for p in m.net.encoders.parameters()}
    assert {id(p) for p in rest["params"]} == {id(p) for n, p in m.net.named_parameters() if not n.startswith("encoders.")}
    assert rest["params"] and enc["initial_lr"] == pytest.approx(0.01) and rest["initial_lr"] == pytest.approx(0.1)
    s = out["lr_scheduler"]["scheduler"]
    for _ in range(50):
        out["optimizer"].step()
        s.step()
    assert rest["lr"] == pytest.approx(10 * enc["lr"]) and enc["lr"] < 0.01  # both follow the cosine


def test_layer_lr_decay_lowers_the_rate_block_by_block_down_to_the_embeddings(tmp_path):
    from tests.test_text import TINY_BERT, WORDS
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    text = {"text": {"_target_": "emomm.models.encoders.text_transformer.TextEncoder", "model_name_or_path": None,
                     "config": TINY_BERT, "tokenizer": str(vocab), "freeze_embeddings": True}}
    opt = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.01}
    m = EmotionModule(label_names=["a", "b"], encoders=text, fusion=FUSION, optimizer=opt,
                      layer_lr_decay=0.5, head_lr_scale=10.0)
    groups = m.param_groups()
    placed = [id(p) for g in groups for p in g["params"]]
    assert sorted(placed) == sorted(id(p) for p in m.parameters() if p.requires_grad)  # each once
    rate = {id(p): g.get("lr", 0.01) for g in groups for p in g["params"]}
    bert = m.net.encoders["text"].model
    assert not bert.embeddings.word_embeddings.weight.requires_grad  # frozen: in no group
    for name, p in bert.named_parameters():
        if p.requires_grad:  # 2 blocks: layer 1 at lr, layer 0 at lr/2, embeddings at lr/4
            want = {"embeddings": 0.0025, "encoder.layer.0": 0.005, "encoder.layer.1": 0.01}
            assert rate[id(p)] == pytest.approx(next(v for k, v in want.items() if name.startswith(k))), name
    for name, p in m.net.named_parameters():
        if not name.startswith("encoders."):
            assert rate[id(p)] == pytest.approx(0.1), name  # the head: head_lr_scale, no decay
    with pytest.raises(ValueError, match=r"layer_lr_decay=1.5.*\(0, 1\]"):
        EmotionModule(label_names=["a", "b"], encoders=text, fusion=FUSION, optimizer=opt,
                      layer_lr_decay=1.5).param_groups()
    with pytest.raises(ValueError, match="no encoder of this model has transformer layers"):
        EmotionModule(label_names=["a", "b"], encoders=ENC, fusion=FUSION, optimizer=opt,
                      layer_lr_decay=0.8).param_groups()


def test_layer_lr_decay_on_a_speech_ssl_encoder_puts_its_front_lowest_and_its_pooling_on_top():
    from tests.test_voice import TINY_SSL_DICT
    ssl = {"voice": {"_target_": "emomm.models.encoders.speech_ssl.SpeechSSLEncoder", "model": None,
                     "config": TINY_SSL_DICT, "freeze": "feature_extractor", "pooling": "attention"}}
    opt = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 1.0}
    m = EmotionModule(label_names=["a", "b"], encoders=ssl, fusion=FUSION, optimizer=opt, layer_lr_decay=0.5)
    rate = {id(p): g.get("lr", 1.0) for g in m.param_groups() for p in g["params"]}
    enc = m.net.encoders["voice"]
    assert not any(id(p) in rate for p in enc.backbone.feature_extractor.parameters())  # frozen
    assert {rate[id(p)] for p in enc.backbone.feature_projection.parameters()} == {0.25}
    assert {rate[id(p)] for p in enc.backbone.encoder.layers[0].parameters()} == {0.5}
    assert {rate[id(p)] for p in enc.backbone.encoder.layers[1].parameters()} == {1.0}
    assert {rate[id(p)] for p in enc.pool.parameters()} == {1.0}


def test_warmup_linear_is_a_triangle_from_start_ratio_to_end_ratio():
    from emomm.models.schedulers import warmup_linear
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = warmup_linear(opt, total_steps=100, warmup_fraction=0.2, start_ratio=0.2, end_ratio=0.05)
    f = s.lr_lambdas[0]
    assert f(0) == pytest.approx(0.2) and f(10) == pytest.approx(0.6) and f(20) == pytest.approx(1.0)
    assert f(60) == pytest.approx(1 - 0.95 * 0.5) and f(100) == pytest.approx(0.05) and f(500) == pytest.approx(0.05)
    assert warmup_linear(opt, 100, warmup_epochs=1, steps_per_epoch=10).lr_lambdas[0](10) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="deadline"):
        warmup_linear(opt, 100, time_budget_s=60)
