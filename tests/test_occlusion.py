"""Occlusion robustness: mask geometry, seeding, the training augmentation and eval's report."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emomm.data.datasets.fer2013 import Fer2013DataModule
from emomm.analysis.occlusion import OccludedDataset, parse_occlusions
from emomm.data.pipelines.occluders import (FILL_RGB, RandomOcclusion, apply_mask, fill_colour, occlude,
                                            occlusion_mask, parse_occlusion)
from emomm.data.pipelines.transforms import FaceTransform, FrameTransform

NO_AUG = {"crop_scale": None, "hflip": 0, "rotation": 0, "brightness": 0, "contrast": 0, "erasing": 0}


def rows(frac_lo, frac_hi, size=48):
    return slice(int(frac_lo * size), int(frac_hi * size))


# -- geometry -----------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [48, 96])
def test_lower_mask_covers_mouth_and_chin_not_eyes(size):
    m = occlusion_mask("lower", size, size)
    assert m[rows(0.62, 0.95, size), rows(0.3, 0.7, size)].all()        # mouth (~0.75) and chin
    assert m[rows(0.56, 0.62, size), rows(0.35, 0.65, size)].all()      # nose tip
    assert not m[: int(0.53 * size)].any()                              # eyes and forehead free
    assert 0.27 < m.mean() < 0.33                                       # same fraction at any size


@pytest.mark.parametrize("size", [48, 112])
def test_upper_band_covers_both_eyes_only(size):
    m = occlusion_mask("upper", size, size)
    assert m[rows(0.27, 0.5, size), rows(0.1, 0.9, size)].all()        # eyes: FER 0.35-0.40, synthetic 0.40-0.46
    assert not m[: int(0.25 * size)].any() and not m[int(0.53 * size):].any()  # brows above, nose tip below free
    assert 0.21 < m.mean() < 0.26


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.5])
@pytest.mark.parametrize("hw", [(48, 48), (40, 64)])
def test_patch_covers_the_requested_fraction_inside_the_crop(fraction, hw):
    h, w = hw
    for seed in range(20):
        m = occlusion_mask(f"patch:{fraction}", h, w, np.random.default_rng(seed))
        assert m.shape == (h, w)
        assert abs(m.mean() - fraction) < 0.025, (seed, m.mean())
        ys, xs = np.nonzero(m)  # one solid rectangle
        assert m[ys.min():ys.max() + 1, xs.min():xs.max() + 1].all()


def test_patch_position_is_random_but_seeded():
    a = [occlusion_mask("patch:0.2", 48, 48, np.random.default_rng(s)) for s in range(10)]
    b = [occlusion_mask("patch:0.2", 48, 48, np.random.default_rng(s)) for s in range(10)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert len({x.tobytes() for x in a}) > 5


def test_parse_specs_and_clear_errors():
    assert [s.name for s in parse_occlusions(["lower", "UPPER", "patch:0.2", "patch:0.2"])] == \
        ["lower", "upper", "patch:0.2"]
    assert parse_occlusions(None) == [] and parse_occlusion("patch").fraction == 0.2
    assert parse_occlusions("patch:0.35")[0].fraction == 0.35
    with pytest.raises(ValueError, match="lower, upper or patch:F"):
        parse_occlusion("middle")
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        parse_occlusion("patch:1.5")
    with pytest.raises(ValueError, match="must be a number"):
        parse_occlusion("patch:big")
    with pytest.raises(ValueError, match="only patch takes a fraction"):
        parse_occlusion("upper:0.2")


def test_occlude_paints_fill_on_every_layout():
    gray = np.full((48, 48), 255, np.uint8)
    out = occlude(gray, "upper")
    m = occlusion_mask("upper", 48, 48)
    assert (out[m] == round(fill_colour("upper", 1)[0])).all() and (out[~m] == 255).all()
    assert (gray == 255).all()  # a copy, the input untouched
    rgb = occlude(np.zeros((48, 48, 3), np.uint8), "lower")
    assert tuple(rgb[40, 24]) == FILL_RGB["lower"] and tuple(rgb[5, 5]) == (0, 0, 0)
    clip = torch.zeros(3, 1, 48, 48, dtype=torch.uint8)               # [T, C, H, W]
    out = occlude(clip, "patch:0.2", np.random.default_rng(0))
    assert out.shape == clip.shape and all(torch.equal(out[0], f) for f in out)  # same mask per frame
    assert (out > 0).float().mean().item() == pytest.approx(0.2, abs=0.02)
    chw = apply_mask(torch.zeros(3, 8, 8), np.eye(8, dtype=bool), [0.1, 0.2, 0.3])
    assert chw[:, 3, 3].tolist() == pytest.approx([0.1, 0.2, 0.3]) and chw[:, 3, 4].abs().sum() == 0


# -- evaluation dataset --------------------------------------------------------------------------

class _Faces(torch.utils.data.Dataset):
    """Raw uint8 faces through an eval FaceTransform, like every image dataset."""

    def __init__(self, images, tf):
        self.images, self.tf, self.labels = images, tf, [0] * len(images)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"inputs": {"face": self.tf(self.images[i])}, "label": 0, "index": i}


@pytest.mark.parametrize("in_chans,mean,std", [(1, 0.5, 0.5), (3, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
@pytest.mark.parametrize("kind", ["lower", "upper", "patch:0.3"])
def test_occluded_dataset_equals_occluding_before_normalisation(kind, in_chans, mean, std):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(4)]
    tf = FaceTransform(image_size=48, in_chans=in_chans, mean=mean, std=std)
    ds = OccludedDataset(_Faces(images, tf), kind, {"face": tf.describe()}, seed=7)
    for i, img in enumerate(images):
        raw = tf._channels(torch.from_numpy(img)[None])                  # uint8 [C, 48, 48]
        expected = tf(occlude(raw, kind, np.random.default_rng([7, i])))
        assert torch.allclose(ds[i]["inputs"]["face"], expected, atol=1e-5)
    assert ds.labels == [0, 0, 0, 0] and len(ds) == 4


def test_occluded_dataset_is_seeded_per_sample():
    tf = FaceTransform(image_size=48)
    faces = _Faces([np.full((48, 48), 200, np.uint8)] * 6, tf)
    prep = {"face": tf.describe()}
    a, b = OccludedDataset(faces, "patch:0.2", prep, seed=1), OccludedDataset(faces, "patch:0.2", prep, seed=1)
    first = [a[i]["inputs"]["face"] for i in range(6)]
    backwards = {i: b[i]["inputs"]["face"] for i in reversed(range(6))}  # access order does not matter
    assert all(torch.equal(x, backwards[i]) for i, x in enumerate(first))
    assert len({x.numpy().tobytes() for x in first}) > 3                 # samples get their own patch
    other = OccludedDataset(faces, "patch:0.2", prep, seed=2)
    assert any(not torch.equal(x, other[i]["inputs"]["face"]) for i, x in enumerate(first))


def test_occluded_dataset_masks_every_video_frame_and_leaves_voice():
    class Clips(torch.utils.data.Dataset):
        labels = [1]

        def __len__(self):
            return 1

        def __getitem__(self, i):
            return {"inputs": {"video": torch.ones(5, 3, 32, 32), "voice": torch.ones(800)}, "label": 1, "index": i}

    prep = {"video": {"mean": [0.5] * 3, "std": [0.5] * 3}, "voice": {"sample_rate": 16000}}
    out = OccludedDataset(Clips(), "patch:0.25", prep, seed=0)[0]["inputs"]
    assert all(torch.equal(out["video"][0], f) for f in out["video"])
    assert (out["video"] != 1).float().mean().item() == pytest.approx(0.25, abs=0.02)
    assert torch.equal(out["voice"], torch.ones(800))


def test_occluded_dataset_needs_face_inputs():
    with pytest.raises(ValueError, match="needs face inputs"):
        OccludedDataset(_Faces([], None), "lower", {"voice": {"sample_rate": 16000}})


# -- training augmentation ----------------------------------------------------------------------

def test_augmentation_is_on_in_train_only():
    white = np.full((48, 48), 255, np.uint8)
    aug = {**NO_AUG, "occlusion": {"p": 1.0, "kinds": ["upper"]}}
    band = torch.from_numpy(occlusion_mask("upper", 48, 48))
    x = FaceTransform(image_size=48, train=True, augment=aug)(white)[0]
    assert (x[band] < -0.8).all() and (x[~band] == 1.0).all()           # dark band, rest untouched
    assert (FaceTransform(image_size=48, train=False, augment=aug)(white) == 1.0).all()
    assert (FaceTransform(image_size=48, train=True, augment=NO_AUG)(white) == 1.0).all()  # off by default


def test_augmentation_probability_kinds_and_clips():
    torch.manual_seed(0)
    white = torch.full((1, 48, 48), 255, dtype=torch.uint8)
    never = RandomOcclusion(p=0.0)
    assert all(torch.equal(never(white), white) for _ in range(20))
    half = RandomOcclusion(p=0.5, kinds=["lower", "upper", "patch"], patch_fraction=[0.1, 0.3])
    outs = [half(white) for _ in range(200)]
    hit = [o for o in outs if not torch.equal(o, white)]
    assert 70 < len(hit) < 130
    fractions = {round(float((o != 255).float().mean()), 3) for o in hit}
    assert len(fractions) > 5                                   # lower, upper and patches of random size
    with pytest.raises(ValueError, match="kinds"):
        RandomOcclusion(kinds=["lower", "nose"])
    with pytest.raises(ValueError, match="patch_fraction"):
        RandomOcclusion(patch_fraction=[0.5, 0.2])
    frames = FrameTransform(image_size=48, in_chans=3, train=True,
                            augment={**NO_AUG, "occlusion": {"p": 1.0, "kinds": ["patch:0.25"]}})
    clip = frames(np.full((4, 48, 48, 3), 255, np.uint8))
    assert all(torch.equal(clip[0], f) for f in clip) and (clip < 1).any()  # one draw per clip


def test_fer_datamodule_occludes_train_split_only(fer_csv):
    dm = Fer2013DataModule(root=str(fer_csv.parent), image_size=48,
                           augment={**NO_AUG, "occlusion": {"p": 1.0, "kinds": ["lower"]}})
    dm.setup("fit")
    ops = {s: [type(o).__name__ for o in dm.splits[s].transform.ops.transforms] for s in ("train", "val", "test")}
    assert "RandomOcclusion" in ops["train"]
    assert "RandomOcclusion" not in ops["val"] and "RandomOcclusion" not in ops["test"]
    mask = torch.from_numpy(occlusion_mask("lower", 48, 48))
    x = dm.splits["train"][0]["inputs"]["face"][0]
    fill = (round(fill_colour("lower", 1)[0]) / 255 - 0.5) / 0.5      # the uint8 fill, normalised
    assert torch.allclose(x[mask], torch.full_like(x[mask], fill))


# -- eval end to end -----------------------------------------------------------------------------

TINY = ["model/face_encoder=timm", "model.encoders.face.backbone=resnet10t", "face.image_size=32"]


@pytest.fixture(scope="module")
def fer_ckpt(tmp_path_factory):
    """A one-epoch tiny model trained on a FER2013-format CSV (with occlusion augmentation on)."""
    from tests.conftest import fer_image, make_cfg
    from emomm.train import train
    root = tmp_path_factory.mktemp("fer")
    rng = np.random.default_rng(0)
    lines = ["emotion,pixels,Usage"]
    for usage, n in (("Training", 42), ("PublicTest", 14), ("PrivateTest", 14)):
        lines += [f"{i % 7},{' '.join(map(str, fer_image(i % 7, rng).ravel()))},{usage}" for i in range(n)]
    (root / "fer2013.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path_factory.mktemp("run")
    cfg = make_cfg("train", out, TINY + ["data=fer2013", f"data.root={root}", "trainer.max_epochs=1",
                                         "data.batch_size=14", "data.augment.occlusion={p: 0.5}"])
    train(cfg)
    return out / "checkpoints" / "best.ckpt", root


def _eval_occluded(fer_ckpt, cfg_factory, occlusion: str, examples: int, subdir: str):
    """``emomm.eval`` of the tiny FER checkpoint under ``occlusion``: (result, output folder)."""
    from emomm.eval import evaluate
    ckpt, _ = fer_ckpt
    ecfg = cfg_factory([f"ckpt_path={ckpt}", f"occlusion={occlusion}", f"occlusion_examples={examples}"],
                       config_name="eval", subdir=subdir)
    return evaluate(ecfg), Path(ecfg.paths.output_dir)


def test_eval_with_occlusion_writes_metrics_csv_and_png(fer_ckpt, cfg_factory):
    result, out = _eval_occluded(fer_ckpt, cfg_factory, "[lower,upper,patch:0.2]", 4, "eval-occl")
    saved = json.loads((out / "metrics.json").read_text())
    table = saved["test_occlusion"]
    assert list(table) == ["clean", "lower", "upper", "patch:0.2"]
    assert table["clean"] == pytest.approx(saved["metrics"]) and result["test_occlusion"] == table
    for name, m in table.items():
        assert {"acc", "uar", "f1_macro", "recall/happy", "recall/neutral"} <= set(m), name
        assert all(0.0 <= m[k] <= 1.0 for k in ("acc", "uar", "f1_macro"))
    with open(out / "occlusion.csv") as f:
        rows_ = list(csv.DictReader(f))
    assert [r["condition"] for r in rows_] == list(table)
    assert float(rows_[0]["acc_drop"]) == 0.0
    assert float(rows_[1]["uar_drop"]) == pytest.approx(table["clean"]["uar"] - table["lower"]["uar"], abs=1e-5)
    from PIL import Image
    png = Image.open(out / "occlusion_examples.png")
    assert png.size[0] > 200 and png.size[1] > 200
    # the confusion matrix is the clean one: all 14 test faces, not an occluded rerun's
    confmat = [list(map(int, r.split(",")[1:])) for r in (out / "confusion_matrix.csv").read_text().splitlines()[1:]]
    assert sum(map(sum, confmat)) == 14


def test_eval_rejects_a_bad_occlusion_before_scoring(fer_ckpt, cfg_factory):
    from emomm.eval import evaluate
    ckpt, _ = fer_ckpt
    ecfg = cfg_factory([f"ckpt_path={ckpt}", "occlusion=[lower,mouth]"], config_name="eval", subdir="eval-bad")
    with pytest.raises(ValueError, match="unknown occlusion 'mouth'"):
        evaluate(ecfg)
    assert not (Path(ecfg.paths.output_dir) / "metrics.json").exists()


def test_eval_with_occlusion_examples_0_writes_no_picture(fer_ckpt, cfg_factory):
    """occlusion_examples=0: the table without a PNG of dataset faces (privacy)."""
    result, out = _eval_occluded(fer_ckpt, cfg_factory, "[lower]", 0, "eval-occl-nopng")
    assert list(result["test_occlusion"]) == ["clean", "lower"] and (out / "occlusion.csv").is_file()
    assert not (out / "occlusion_examples.png").exists()
