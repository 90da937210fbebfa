"""Fusion modules and the multimodal classifier: shapes, masks, missing modalities."""
import itertools

import pytest
import torch
from torch import nn

from emomm.callbacks.ogm_ge import GradientModulation
from emomm.models.classifier import EmotionClassifier
from emomm.models.features import EncoderOutput
from emomm.models.fusion import (AttentionFusion, ConcatFusion, GatedFusion, IdentityFusion, LateFusion,
                                 auto_fusion)
from emomm.models.multimodal import drop_modalities, modality_subsets

DIMS = {"face": 12, "voice": 10, "text": 8}
TOKENS = {"face": 6, "voice": 5, "text": 7}
K, B = 5, 6
FEATURE_FUSIONS = [ConcatFusion, GatedFusion, AttentionFusion]
ALL_FUSIONS = FEATURE_FUSIONS + [LateFusion]


def features(seed=0, pad=True):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for m, d in DIMS.items():
        t = 3 + len(m)
        mask = torch.ones(B, t, dtype=torch.bool)
        if pad:
            mask[::2, -2:] = False  # every other sample has two padding tokens
        out[m] = EncoderOutput(torch.randn(B, d, generator=g), torch.randn(B, t, TOKENS[m], generator=g), mask)
    return out


def build(cls):
    return cls(in_dims=DIMS, token_dims=TOKENS, num_classes=K).eval()


def run(fusion, feats, present):
    if fusion.decision_level:
        heads = {m: f.pooled[:, :K] for m, f in feats.items()}  # any per-modality logits
        return fusion(heads, present)
    return fusion(feats, present)


def subset_present(subset):
    return {m: torch.full((B,), m in subset) for m in DIMS}


@pytest.mark.parametrize("cls", ALL_FUSIONS)
@pytest.mark.parametrize("subset", modality_subsets(list(DIMS)))
def test_every_fusion_every_subset_shape_and_finite(cls, subset):
    fusion = build(cls)
    out = run(fusion, features(), subset_present(subset))
    assert out.shape == (B, K if fusion.decision_level else fusion.out_dim)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("cls", ALL_FUSIONS)
def test_absent_modality_content_never_matters(cls):
    """Per-sample presence: changing an absent modality's values changes nothing."""
    fusion = build(cls)
    present = {"face": torch.tensor([1, 1, 0, 1, 0, 1], dtype=torch.bool),
               "voice": torch.tensor([1, 0, 1, 1, 0, 0], dtype=torch.bool),
               "text": torch.tensor([0, 1, 1, 1, 1, 0], dtype=torch.bool)}
    a, b = features(0), features(1)
    mixed = {}
    for m in DIMS:  # b's values where the modality is absent, a's where present
        keep = present[m]
        mixed[m] = EncoderOutput(torch.where(keep[:, None], a[m].pooled, b[m].pooled),
                                 torch.where(keep[:, None, None], a[m].tokens, b[m].tokens), a[m].mask)
    with torch.no_grad():
        assert torch.allclose(run(fusion, a, present), run(fusion, mixed, present), atol=1e-6)


def test_attention_ignores_padding_tokens():
    fusion = build(AttentionFusion)
    a = features(0)
    b = {m: EncoderOutput(f.pooled, torch.where(f.mask[..., None], f.tokens, torch.randn_like(f.tokens) * 50), f.mask)
         for m, f in a.items()}
    present = subset_present(tuple(DIMS))
    with torch.no_grad():
        assert torch.allclose(fusion(a, present), fusion(b, present), atol=1e-5)


def test_attention_uses_the_other_modalities():
    """Cross-modal: a present modality's tokens change the fused output."""
    fusion = build(AttentionFusion)
    a, b = features(0), features(1)
    changed = {**a, "voice": b["voice"]}
    present = subset_present(tuple(DIMS))
    with torch.no_grad():
        assert not torch.allclose(fusion(a, present), fusion(changed, present))


def test_late_fusion_is_weighted_mean_of_probabilities():
    fusion = LateFusion(in_dims={"face": 4, "voice": 4}, num_classes=3, weights={"face": 3.0, "voice": 1.0})
    logits = {"face": torch.tensor([[2.0, 0.0, 0.0]]), "voice": torch.tensor([[0.0, 0.0, 3.0]])}
    out = fusion(logits, {"face": torch.tensor([True]), "voice": torch.tensor([True])}).exp()
    want = 0.75 * logits["face"].softmax(-1) + 0.25 * logits["voice"].softmax(-1)
    assert torch.allclose(out, want, atol=1e-6)
    only_voice = fusion(logits, {"face": torch.tensor([False]), "voice": torch.tensor([True])}).exp()
    assert torch.allclose(only_voice, logits["voice"].softmax(-1), atol=1e-6)
    with pytest.raises(ValueError, match="not all 0|names"):
        LateFusion(in_dims={"face": 4}, weights={"lips": 1.0})


def test_learned_late_weights_are_parameters():
    fusion = LateFusion(in_dims={"face": 4, "voice": 4}, num_classes=3, learn_weights=True)
    assert any(p is fusion.log_weights for p in fusion.parameters())
    assert fusion.weights() == pytest.approx({"face": 0.5, "voice": 0.5})


def test_gated_gates_sum_to_one_over_present():
    fusion = build(GatedFusion)
    present = {"face": torch.ones(B, dtype=torch.bool), "voice": torch.zeros(B, dtype=torch.bool),
               "text": torch.tensor([1, 0, 1, 0, 1, 0], dtype=torch.bool)}
    fusion(features(), present)
    g = fusion.last_gates
    assert torch.allclose(g.sum(1), torch.ones(B)) and (g[:, fusion.names.index("voice")] == 0).all()


def test_auto_fusion_and_identity():
    assert isinstance(auto_fusion({"face": 4}), IdentityFusion)
    assert isinstance(auto_fusion(DIMS, TOKENS, K), AttentionFusion)
    with pytest.raises(ValueError, match="exactly one modality"):
        IdentityFusion(DIMS)


# -- the classifier --------------------------------------------------------------------------
class TinyEncoder(nn.Module):
    """``[B, T, 3]`` -> pooled ``[B, 8]`` and tokens ``[B, T, 8]``."""

    out_dim = 8

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 8)

    def encode(self, x, lengths=None):
        h = self.lin(x)
        mask = torch.ones(h.shape[:2], dtype=torch.bool) if lengths is None else \
            torch.arange(h.shape[1])[None] < lengths[:, None]
        return EncoderOutput(h.mean(1), h, mask)

    def forward(self, x, lengths=None):
        return self.encode(x, lengths).pooled


@pytest.mark.parametrize("fusion_cls", ALL_FUSIONS)
def test_classifier_missing_modality_changes_nothing_for_the_others(fusion_cls):
    torch.manual_seed(0)
    net = EmotionClassifier({"face": TinyEncoder(), "voice": TinyEncoder()}, fusion_cls, num_classes=K).eval()
    inputs = {"face": torch.randn(B, 4, 3), "voice": torch.randn(B, 7, 3)}
    with torch.no_grad():
        both, pres_both = net.encode(inputs)
        face_only, pres_face = net.encode({"face": inputs["face"]})
        assert torch.equal(both["face"].pooled, face_only["face"].pooled)
        assert not pres_face["voice"].any() and pres_both["voice"].all()
        out = net.forward_all({"face": inputs["face"]})
        assert out.logits.shape == (B, K) and set(out.modality_logits) == {"face", "voice"}
        # the fused prediction of a face-only batch = the fused head with voice masked out
        masked = net.fuse(both, {"face": pres_both["face"], "voice": torch.zeros(B, dtype=torch.bool)})
        assert torch.allclose(out.logits, masked, atol=1e-5)


def test_single_modality_classifier_has_no_extra_heads():
    net = EmotionClassifier({"face": TinyEncoder()}, IdentityFusion, num_classes=K)
    assert len(net.modality_heads) == 0
    out = net.forward_all({"face": torch.randn(2, 3, 3)})
    assert torch.equal(out.logits, out.modality_logits["face"])


def test_modality_dropout_keeps_one_per_sample():
    g = torch.Generator().manual_seed(0)
    present = {m: torch.ones(1000, dtype=torch.bool) for m in ("face", "voice")}
    out = drop_modalities(present, {"face": 0.6, "voice": 0.6}, generator=g)
    stacked = torch.stack(list(out.values()), 1)
    assert stacked.any(1).all()
    rate = 1 - out["face"].float().mean()
    # dropped alone (0.6 x 0.4) plus half of the both-dropped samples (0.36 / 2): 0.42
    assert 0.37 < rate < 0.47
    # absent stays absent
    present["voice"][:10] = False
    assert not drop_modalities(present, {"face": 0.5}, generator=g)["voice"][:10].any()


def test_gradient_modulation_slows_the_dominant_modality():
    gm = GradientModulation(alpha=1.0, noise=False)
    labels = torch.zeros(4, dtype=torch.long)
    strong = torch.tensor([[5.0, 0, 0]]).repeat(4, 1)
    weak = torch.zeros(4, 3)
    coeffs = gm.measure({"face": strong, "voice": weak}, {m: torch.ones(4, dtype=torch.bool) for m in ("face", "voice")},
                        labels)
    assert coeffs["voice"] == 1.0 and 0.0 < coeffs["face"] < 0.5
    enc = nn.ModuleDict({"face": nn.Linear(2, 2), "voice": nn.Linear(2, 2)})
    for p in enc.parameters():
        p.grad = torch.ones_like(p)
    gm.apply(enc)
    assert torch.allclose(enc["face"].weight.grad, torch.full((2, 2), coeffs["face"]))
    assert torch.equal(enc["voice"].weight.grad, torch.ones(2, 2))


def test_subsets_enumerated():
    subs = modality_subsets(["voice", "face", "text"])
    assert len(subs) == 7 and subs[0] == ("face",) and subs[-1] == ("face", "text", "voice")
    assert len(set(subs)) == 7 and all(len(set(s)) == len(s) for s in subs)
    assert set(itertools.chain(*subs)) == {"face", "text", "voice"}
