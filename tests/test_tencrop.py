"""Training on random crops (``face.crop_size``) and ten-crop test-time averaging."""
import numpy as np
import pytest
import torch

from emomm.data.pipelines.transforms import FaceTransform
from emomm.models.module import EmotionModule
from emomm.models.eval_views import crop_image, tta_views

ENC = {"face": {"_target_": "emomm.models.encoders.face_timm.FaceEncoder", "backbone": "resnet10t", "in_chans": 1}}
FUSION = {"_target_": "emomm.models.fusion.IdentityFusion"}
OPT = {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3}
PREP = {"face": {"image_size": 48, "in_chans": 1, "mean": [0.5], "std": [0.5], "crop_size": 40}}


def test_crop_transform_trains_on_random_crops_and_evaluates_whole_faces():
    img = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    train = FaceTransform(image_size=48, crop_size=40, train=True, augment={"crop_scale": None, "erasing": 0, "rotation": 0, "brightness": 0, "contrast": 0})
    torch.manual_seed(0)
    crops = [train(img) for _ in range(6)]
    assert all(c.shape == (1, 40, 40) and c.dtype == torch.float32 for c in crops)
    assert len({c.numpy().tobytes() for c in crops}) > 1          # the crop position is random
    whole = FaceTransform(image_size=48, crop_size=40)
    assert whole(img).shape == (1, 48, 48)                        # the model crops at eval
    assert whole.describe()["crop_size"] == 40 and "crop_size" not in FaceTransform(48).describe()
    # Every training crop is a 40x40 window of the whole normalised face.
    full = whole(img)[0]
    windows = {full[i:i + 40, j:j + 40].numpy().tobytes() for i in range(9) for j in range(9)}
    mirrored = {full.flip(-1)[i:i + 40, j:j + 40].numpy().tobytes() for i in range(9) for j in range(9)}
    assert all(c[0].numpy().tobytes() in windows | mirrored for c in crops)
    with pytest.raises(ValueError, match="crop_size=50"):
        FaceTransform(image_size=48, crop_size=50)


def test_ten_crop_views_are_corners_centre_and_mirrors():
    x = torch.arange(2 * 48 * 48, dtype=torch.float32).reshape(2, 1, 48, 48)
    views = tta_views({"face": x}, crop={"face": 40}, tencrop=["face"])
    assert len(views) == 10 and all(v["face"].shape == (2, 1, 40, 40) for v in views)
    assert torch.equal(views[0]["face"], x[..., 4:44, 4:44])             # centre first
    assert torch.equal(views[1]["face"], x[..., :40, :40])               # top-left
    assert torch.equal(views[4]["face"], x[..., 8:, 8:])                 # bottom-right
    for a, b in zip(views[:5], views[5:]):
        assert torch.equal(b["face"], a["face"].flip(-1))                 # each crop mirrored
    assert len({v["face"].numpy().tobytes() for v in views}) == 10
    # Without tencrop: the centre crop only (2 views with the mirror); hflip is not doubled.
    assert len(tta_views({"face": x}, crop={"face": 40})) == 1
    assert len(tta_views({"face": x}, ["face"], crop={"face": 40})) == 2
    assert len(tta_views({"face": x}, ["face"], crop={"face": 40}, tencrop=["face"])) == 10
    with pytest.raises(ValueError, match="no crop size"):
        tta_views({"face": x}, tencrop=["face"])


def test_symmetric_face_gives_equal_mirrored_views():
    half = torch.rand(1, 1, 48, 24)
    x = torch.cat([half, half.flip(-1)], -1)                               # mirror-symmetric
    views = tta_views({"face": x}, crop={"face": 40}, tencrop=["face"])
    assert torch.equal(views[0]["face"], views[5]["face"])                 # centre == its mirror
    assert torch.equal(views[1]["face"], views[7]["face"])                 # mirrored top-left == top-right
    assert not torch.equal(views[1]["face"], views[2]["face"])


def test_module_ten_crop_logits_are_the_mean_of_the_views():
    torch.manual_seed(0)
    m = EmotionModule(label_names=["a", "b", "c"], encoders=ENC, fusion=FUSION, optimizer=OPT,
                      tta_tencrop=["face"], preprocessing=PREP).eval()
    assert m.eval_crop == {"face": 40}
    x = torch.randn(3, 1, 48, 48)
    batch = {"inputs": {"face": x}, "present": {}, "lengths": {}}
    with torch.no_grad():
        per_view = [m.net({"face": crop_image(v, 40, w)}) for v in (x, x.flip(-1))
                    for w in ("center", "tl", "tr", "bl", "br")]
        expected = torch.stack(per_view).mean(0)
        assert torch.allclose(m(batch), expected, atol=1e-5)
        m.hparams.tta_tencrop = []                                          # centre crop alone
        assert torch.allclose(m(batch), m.net({"face": x[..., 4:44, 4:44]}), atol=1e-5)


def test_exported_network_crops_like_the_module():
    """`emomm.export` wraps the network with the module's eval views: a crop model takes
    whole faces and crops them in the graph (the centre crop even without TTA)."""
    from emomm.inference.onnx_export import ExportNet

    torch.manual_seed(0)
    m = EmotionModule(label_names=["a", "b", "c"], encoders=ENC, fusion=FUSION, optimizer=OPT,
                      tta_tencrop=["face"], preprocessing=PREP).eval()
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        want = m({"inputs": {"face": x}, "present": {}, "lengths": {}})
        def logits(net):  # (logits, per-modality logits...) or logits
            out = net.eval()(x)
            return out[0] if isinstance(out, tuple) else out

        assert torch.allclose(logits(ExportNet(m)), want, atol=1e-5)
        assert torch.allclose(logits(ExportNet(m, tta=False)), m.net({"face": x[..., 4:44, 4:44]}), atol=1e-5)
