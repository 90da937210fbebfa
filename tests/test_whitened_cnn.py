"""The whitened CNN face encoder and the fer2013_fast recipe it serves."""
import pytest
import torch

from emomm.models.encoders.whitened_cnn import WhitenedCNN, patch_whitening
from emomm.models.module import EmotionModule
from emomm.train import train
from tests.conftest import FER_ORDER, write_fer_folders


def test_whitening_filters_decorrelate_the_patches():
    g = torch.Generator().manual_seed(0)
    images = torch.nn.functional.avg_pool2d(torch.randn(200, 1, 20, 20, generator=g), 3, 1)  # correlated pixels
    filters = patch_whitening(images, kernel=3, eps=0.0)
    assert filters.shape == (18, 1, 3, 3) and torch.equal(filters[9:], -filters[:9])
    out = torch.nn.functional.conv2d(images, filters[:9]).permute(0, 2, 3, 1).reshape(-1, 9)
    cov = out.T @ out / len(out)
    assert torch.allclose(cov, torch.eye(9), atol=1e-3)


def test_shapes_identity_init_and_frozen_parts():
    enc = WhitenedCNN(in_chans=1, widths=(8, 16, 16))
    assert enc(torch.randn(3, 1, 40, 40)).shape == (3, 16) and enc.out_dim == 16
    out = enc.encode(torch.randn(3, 1, 40, 40))
    assert out.tokens.shape == (3, 4 * 4, 16) and out.mask.all()
    conv = enc.blocks[1].layers[0]  # 8 -> 16 channels: the identity on the first 8
    x = torch.randn(2, 8, 5, 5)
    assert torch.allclose(conv(x)[:, :8], x)
    assert not enc.whiten.weight.requires_grad and enc.whiten.bias.requires_grad
    bns = [m for m in enc.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not b.weight.requires_grad and b.bias.lr_scale == 64.0 for b in bns)
    with pytest.raises(ValueError, match="3 block widths"):
        WhitenedCNN(widths=(8, 16))
    with pytest.raises(ValueError, match=r"images \[N, 1, H, W\]"):
        enc.fit_whitening(torch.randn(4, 3, 10, 10))


def test_channels_last_is_the_same_model_in_nhwc():
    """``channels_last`` changes only the memory layout: the same weights give the same
    outputs, every activation is NHWC, fitting the stem keeps its layout and the batch-norm
    biases keep their rate. RGB, because a one-channel stem is NHWC whatever its strides."""
    torch.manual_seed(0)
    nchw = WhitenedCNN(in_chans=3, widths=(8, 16, 16)).eval()
    nhwc = WhitenedCNN(in_chans=3, widths=(8, 16, 16), channels_last=True).eval()
    x = torch.randn(4, 3, 40, 40)
    nhwc.fit_whitening(x)
    assert nhwc.whiten.weight.is_contiguous(memory_format=torch.channels_last)
    assert all(b.bias.lr_scale == 64.0 for b in nhwc.modules() if isinstance(b, torch.nn.BatchNorm2d))
    nchw.load_state_dict(nhwc.state_dict())
    assert nchw.whiten.weight.is_contiguous() and not nchw.whiten.weight.is_contiguous(
        memory_format=torch.channels_last)
    fmap = nhwc.feature_map(x)
    assert fmap.is_contiguous(memory_format=torch.channels_last) and not fmap.is_contiguous()
    assert torch.allclose(nhwc(x), nchw(x), atol=1e-5)


def test_batch_norm_biases_get_their_own_rate_and_decay():
    enc = {"face": {"_target_": "emomm.models.encoders.whitened_cnn.WhitenedCNN", "widths": [8, 16, 16]}}
    m = EmotionModule(label_names=["a", "b"], encoders=enc, fusion={"_target_": "emomm.models.fusion.IdentityFusion"},
                      optimizer={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.5, "weight_decay": 0.01})
    groups = m.param_groups()
    fast = [g for g in groups if g.get("lr") == pytest.approx(32.0)]
    assert len(fast) == 1 and fast[0]["weight_decay"] == pytest.approx(0.01 / 64)
    biases = {id(b.bias) for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d)}
    assert {id(p) for p in fast[0]["params"]} == biases
    assert sum(len(g["params"]) for g in groups) == sum(1 for p in m.parameters() if p.requires_grad)


def test_fer2013_fast_recipe_fits_its_stem_and_ends_on_the_lookahead_weights(cfg_factory, tmp_path):
    root = write_fer_folders(tmp_path / "fer", FER_ORDER, splits=("train", "val", "test"), per_class=8)
    cfg = cfg_factory(["experiment=fer2013_fast", f"data.root={root}", "data.batch_size=16",
                       "trainer.max_epochs=2", "model.compile=false", "model.encoders.face.widths=[8,16,16]",
                       "logger=csv"])
    summary = train(cfg)
    ckpt = torch.load(f"{cfg.paths.output_dir}/checkpoints/last.ckpt", weights_only=False)
    assert bool(ckpt["state_dict"]["net.encoders.face.fitted"])
    w = ckpt["state_dict"]["net.encoders.face.whiten.weight"]
    assert torch.equal(w[9:], -w[:9]) and w.abs().sum() > 0
    slow = next(v for k, v in ckpt["callbacks"].items() if k.startswith("Lookahead"))["slow"]
    assert torch.equal(slow["encoders.face.blocks.0.layers.0.weight"],
                       ckpt["state_dict"]["net.encoders.face.blocks.0.layers.0.weight"])
    assert summary["data_sizes"]["train"] == 56 and "acc" in summary["test"]
    assert "net.head.1.weight" in ckpt["state_dict"] and "net.head.1.bias" not in ckpt["state_dict"]  # head_bias: false


@pytest.mark.slow  # compiles the network: ~1 min on 2 cores
def test_gradients_stay_finite_when_compiled_in_bf16():
    """The recipe compiles the network and trains in bf16 autocast; pooling with ``amax``
    gave NaN gradients there from the first step (torch 2.14.1, CPU)."""
    torch.manual_seed(0)
    enc = WhitenedCNN(widths=(8, 16, 16))
    x, y = torch.randn(32, 1, 40, 40), torch.randint(0, 7, (32,))
    enc.fit_whitening(x)
    net = torch.nn.Sequential(enc, torch.nn.Linear(16, 7))
    net.compile()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(net(x).float(), y)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_head_bias_switch_applies_to_every_head():
    from emomm.models.classifier import EmotionClassifier
    from emomm.models.fusion import ConcatFusion
    encs = {m: WhitenedCNN(widths=(8, 16, 16)) for m in ("face", "video")}
    net = EmotionClassifier(encs, ConcatFusion, num_classes=3, head_bias=False)
    linears = [mod for h in (net.head, *net.modality_heads.values()) for mod in h if isinstance(mod, torch.nn.Linear)]
    assert len(linears) == 3 and all(lin.bias is None for lin in linears)
    assert EmotionClassifier({"face": WhitenedCNN(widths=(8, 16, 16))}, ConcatFusion, num_classes=3).head[-1].bias is not None
