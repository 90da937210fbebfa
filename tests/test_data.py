"""Synthetic data and FER2013 in both published layouts; stored data configs that name the
DataModules where they were before issue 43 moved them."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hydra._internal.utils import _locate
from omegaconf import OmegaConf

from emomm.data.core.splits import stratified_split, stratified_three_way
from emomm.data.datasets.fer2013 import Fer2013DataModule
from emomm.data.synthetic import SyntheticDataModule
from emomm.data.synthetic.face_render import render_face
from emomm.data.synthetic.spec import draw_spec
from emomm.utils.moved import upgrade_targets
from emomm.utils.runtime import CONFIG_DIR
from emomm.utils.targets import check_targets
from tests.conftest import FER_ORDER, write_fer_folders


def test_synthetic_is_deterministic_balanced_and_split_disjoint():
    a, b = render_face(draw_spec(3, 11), 64), render_face(draw_spec(3, 11), 64)
    assert np.array_equal(a, b) and a.shape == (64, 64) and a.dtype == np.uint8
    assert not np.array_equal(a, render_face(draw_spec(4, 11), 64))
    dm = SyntheticDataModule(n_train=70, n_val=14, n_test=14, options={"face": {"image_size": 32}})
    dm.setup()
    assert dm.class_counts().tolist() == [10] * 7
    s = dm.splits["train"][0]
    assert s["inputs"]["face"].shape == (1, 32, 32) and s["label"] == 0
    # Val/test use other seeds: the same index is a different face.
    assert not torch.equal(dm.splits["val"][0]["inputs"]["face"], dm.splits["test"][0]["inputs"]["face"])


def test_synthetic_expression_carries_the_label():
    """Mean expression parameters differ by class (the data is learnable)."""
    specs = [draw_spec(0, i) for i in range(700)]
    curve = {e: np.mean([s.expression["curve"] for s in specs if s.emotion == e]) for e in FER_ORDER}
    opening = {e: np.mean([s.expression["open"] for s in specs if s.emotion == e]) for e in FER_ORDER}
    assert curve["happy"] > 0.4 > curve["neutral"] > curve["sad"]
    assert opening["surprise"] > opening["fear"] > opening["neutral"]


def test_stratified_split_is_seeded_and_keeps_every_class():
    labels = [0] * 20 + [1] * 10 + [2] * 3
    keep, held = stratified_split(labels, 0.2, seed=1)
    keep2, held2 = stratified_split(labels, 0.2, seed=1)
    assert np.array_equal(held, held2) and np.array_equal(keep, keep2)
    assert len(set(keep) & set(held)) == 0 and len(keep) + len(held) == 33
    held_labels = np.asarray(labels)[held]
    assert np.bincount(held_labels).tolist() == [4, 2, 1]


def test_stratified_split_of_singleton_classes_still_holds_one_out():
    # Four rows, one per class: rounding gives every class 0 held out, which used to leave
    # validation empty (scoring nothing, silently).
    keep, held = stratified_split([0, 1, 2, 3], 0.1, seed=0)
    assert len(held) == 1 and len(keep) == 3 and set(keep) | set(held) == {0, 1, 2, 3}
    assert stratified_split([5], 0.5, seed=0)[1].size == 0  # one row: nothing to hold out


@pytest.mark.parametrize("labels,n", [(list(range(7)), 3), ([0] * 5 + [1] * 5 + [2], 4), ([0, 0, 1, 1, 2, 2, 3], 6)])
def test_limit_per_split_keeps_exactly_n(labels, n):
    # Per-class rounding used to miss n: seven singleton classes limited to 3 kept none.
    from emomm.data.core.splits import limit_split

    class Labelled(torch.utils.data.Dataset):
        def __init__(self):
            self.labels = labels

        def __len__(self):
            return len(labels)

    sub = limit_split(Labelled(), n, seed=0)
    assert len(sub) == n and len(set(sub.indices)) == n and sub.indices == sorted(sub.indices)
    assert limit_split(Labelled(), n, seed=0).indices == sub.indices  # seeded


def test_fer_csv_splits_and_skips_malformed_rows(fer_csv, caplog):
    dm = Fer2013DataModule(root=str(fer_csv.parent), batch_size=8)
    dm.setup()
    assert dm.data_sizes == {"train": 70, "val": 21, "test": 21}
    assert dm.skipped == 2
    assert "skipped 2 malformed rows" in caplog.text
    x = dm.splits["val"][0]["inputs"]["face"]
    assert x.shape == (1, 48, 48) and x.dtype == torch.float32
    # The file itself works as root too.
    assert Fer2013DataModule(root=str(fer_csv)).label_names == FER_ORDER


def test_drop_last_skips_the_partial_training_batch_only(fer_csv, caplog):
    sizes = lambda loader: [len(b["label"]) for b in loader]
    dm = Fer2013DataModule(root=str(fer_csv.parent), batch_size=8, drop_last=True)
    dm.setup()
    assert sizes(dm.train_dataloader()) == [8] * 8          # 70 samples: the last 6 skipped
    assert sizes(dm.val_dataloader()) == [8, 8, 5]          # evaluation keeps every sample
    kept = Fer2013DataModule(root=str(fer_csv.parent), batch_size=8)
    kept.setup()
    assert sizes(kept.train_dataloader()) == [8] * 8 + [6]  # the default keeps it
    small = Fer2013DataModule(root=str(fer_csv.parent), batch_size=100, drop_last=True)
    small.setup()
    assert sizes(small.train_dataloader()) == [70]          # not zero batches
    assert "fewer than data.batch_size=100" in caplog.text


@pytest.mark.parametrize("names", [
    ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"],
    ["angry", "disgusted", "fearful", "happy", "neutral", "sad", "surprised"],
])
def test_fer_folders_both_naming_variants(tmp_path, names):
    root = write_fer_folders(tmp_path / "fer", names, splits=("train", "test"), per_class=10, corrupt=True)
    dm = Fer2013DataModule(root=str(root), val_fraction=0.2, seed=0)
    dm.setup()
    # 70 train images (+1 corrupt, skipped) -> stratified 20% to val; test folder kept.
    assert dm.skipped == 1
    assert dm.data_sizes == {"train": 56, "val": 14, "test": 70}
    assert dm.class_counts("val").tolist() == [2] * 7
    # Labels follow FER2013's order whatever the folder spelling: folder "fearful" -> 2.
    fear_idx = names.index("fearful" if "fearful" in names else "fear")
    paths = dm.splits["test"].paths
    labels = dm.splits["test"].labels
    fear_labels = [lab for p, lab in zip(paths, labels) if f"/{names[fear_idx]}/" in p]
    assert fear_labels == [2] * 10


def test_fer_val_folder_is_used_when_present(tmp_path):
    root = write_fer_folders(tmp_path / "fer", FER_ORDER, splits=("train", "val"), per_class=3)
    dm = Fer2013DataModule(root=str(root))
    dm.setup()
    assert dm.data_sizes == {"train": 21, "val": 21, "test": 21}  # no test: test = val


def test_fer_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Fer2013DataModule(root=str(tmp_path / "nope")).setup()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither fer2013.csv nor"):
        Fer2013DataModule(root=str(tmp_path / "empty")).setup()
    (tmp_path / "bad" / "train" / "bored").mkdir(parents=True)
    with pytest.raises(ValueError, match="bored.*not an emotion label"):
        Fer2013DataModule(root=str(tmp_path / "bad")).setup()


def test_three_way_split_fractions_are_of_the_whole():
    labels = [c for c in range(4) for _ in range(20)]
    tr, va, te = stratified_three_way(labels, 0.25, 0.25, seed=0)
    assert (len(tr), len(va), len(te)) == (40, 20, 20)
    assert len(set(tr) | set(va) | set(te)) == 80
    assert np.bincount(np.asarray(labels)[va]).tolist() == [5] * 4
    tr, va, te = stratified_three_way(labels, 0.2, 0.0, seed=0)
    assert (len(tr), len(va), len(te)) == (64, 16, 0)


# -- checkpoints written before the DataModules moved into emomm/data/datasets/ (issue 43) ----
@pytest.mark.parametrize("path", sorted((Path(CONFIG_DIR) / "data").glob("*.yaml")), ids=lambda p: p.stem)
def test_a_stored_data_config_naming_the_old_module_builds_the_same_class(path):
    """Before issue 43 every DataModule lived in ``emomm/data/<file>.py``; a checkpoint stores
    that ``_target_`` in its data config, which must still pass the check and build."""
    target = OmegaConf.load(path)["_target_"]
    module, name = target.rsplit(".", 1)
    old = f"emomm.data.{module.rsplit('.', 1)[-1]}.{name}"
    stored = upgrade_targets({"data": {"_target_": old, "root": "/x"}})
    check_targets(stored, "old.ckpt")  # raises when the old name resolves to nothing
    assert _locate(stored["data"]["_target_"]) is _locate(target)


def test_eval_reads_the_data_of_a_checkpoint_written_before_the_move(cfg_factory, tmp_path):
    """``emomm.eval`` without ``data=`` builds the checkpoint's stored data config: one naming
    ``emomm.data.fer2013.Fer2013DataModule`` gives the same test split as the current name."""
    from emomm.runs.evaluation import eval_datamodule
    root = write_fer_folders(tmp_path / "fer", FER_ORDER, per_class=2)
    stored = OmegaConf.to_container(cfg_factory(["data=fer2013", f"data.root={root}"]).data, resolve=True)
    built = {}
    for label, target in (("old", "emomm.data.fer2013.Fer2013DataModule"),
                          ("new", "emomm.data.datasets.fer2013.Fer2013DataModule")):
        model = SimpleNamespace(hparams=SimpleNamespace(data={**stored, "_target_": target},
                                                        encoders={"face": {}}, preprocessing={}))
        dm = eval_datamodule(OmegaConf.create({}), [model], f"{label}.ckpt")
        dm.setup("test")
        built[label] = dm
    assert type(built["old"]) is Fer2013DataModule
    old, new = built["old"].splits["test"], built["new"].splits["test"]
    assert list(old.labels) == list(new.labels) and len(old) == 2 * len(FER_ORDER)
    assert torch.equal(old[3]["inputs"]["face"], new[3]["inputs"]["face"])
