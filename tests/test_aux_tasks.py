"""Multi-task training: auxiliary labels in the data, heads on the fused embedding
(`model.aux_tasks`), their loss in training and their metrics at validation."""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from emomm.data.core.collate import collate_samples
from emomm.data.datasets.meld import MeldDataModule
from emomm.models.module import EmotionModule
from emomm.models.objective import aux_task_weights
from emomm.runs.training import build_module, train
from tests.test_text import MELD_FIT, meld_root  # noqa: F401  (fixture: tiny MELD CSVs)

SCRATCH = ["modality=text", "data=meld", "model.encoders.text.vocab_size=200",
           "model.encoders.text.min_frequency=1", "data.batch_size=4", *MELD_FIT]


def hydra_datamodule(cfg):
    from hydra.utils import instantiate
    dm = instantiate(cfg.data)
    dm.setup("fit")
    return dm


def test_meld_samples_carry_the_other_column_as_auxiliary_label(meld_root):  # noqa: F811
    dm = MeldDataModule(root=str(meld_root), context_turns=0, speakers=False)
    dm.setup()
    assert dm.aux_label_names == {"sentiment": ["neutral", "positive", "negative"]}
    train_ds = dm.splits["train"]
    by_text = {train_ds[i]["inputs"]["text"]: train_ds[i]["aux"]["sentiment"] for i in range(len(train_ds))}
    assert by_text["Wow, this is great!"] == 1 and by_text["Hey Ross."] == 0
    assert by_text["I've got some bad news."] == 2

    # the other way round: sentiment is the target and emotion the auxiliary label; the row
    # whose emotion ("excited") is outside MELD's set keeps its sentiment and gets -1
    dm = MeldDataModule(root=str(meld_root), target="sentiment", context_turns=0, speakers=False)
    dm.setup()
    assert list(dm.aux_label_names) == ["emotion"]
    train_ds = dm.splits["train"]
    by_text = {train_ds[i]["inputs"]["text"]: train_ds[i]["aux"]["emotion"] for i in range(len(train_ds))}
    assert by_text["Whatever."] == -1
    assert by_text["Wow, this is great!"] == dm.aux_label_names["emotion"].index("happy")


def test_collate_gathers_auxiliary_labels_with_minus_one_for_missing():
    samples = [{"inputs": {"x": torch.zeros(2)}, "label": 0, "aux": {"sentiment": 2}},
               {"inputs": {"x": torch.zeros(2)}, "label": 1}]
    batch = collate_samples(samples)
    assert batch["aux"]["sentiment"].tolist() == [2, -1]
    assert "aux" not in collate_samples(samples[1:])


def test_aux_task_settings_are_checked_against_the_data():
    names = {"sentiment": ["neutral", "positive", "negative"]}
    assert aux_task_weights({"sentiment": 0.5}, names) == {"sentiment": 0.5}
    assert aux_task_weights(None, names) == {}
    with pytest.raises(ValueError, match="carry \\['sentiment'\\]: pick among those"):
        aux_task_weights({"intensity": 1.0}, names)
    with pytest.raises(ValueError, match="carry none .*aux_tasks=null"):
        aux_task_weights({"sentiment": 1.0}, {})
    with pytest.raises(ValueError, match="weight > 0"):
        aux_task_weights({"sentiment": 0.0}, names)
    assert aux_task_weights({"sentiment": None}, names) == {}   # null: the task is off
    with pytest.raises(ValueError, match="mixup"):
        aux_task_weights({"sentiment": 0.5}, names, mixup=True)


def test_aux_loss_joins_training_loss_and_trains_its_head(cfg_factory, meld_root):  # noqa: F811
    cfg = cfg_factory([*SCRATCH, f"data.root={meld_root}", "model.aux_tasks={sentiment: 0.5}"])
    dm = hydra_datamodule(cfg)
    module = build_module(cfg, dm)
    for enc in module.net.encoders.values():  # the scratch tokenizer learns the training split
        enc.fit_to_data(dm, "text")
    head = module.aux_heads["sentiment"][-1]
    assert head.out_features == 3 and head.in_features == module.net.fusion.out_dim
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)  # uniform logits: the auxiliary cross-entropy is ln 3
    batch = next(iter(dm.train_dataloader()))
    module.train()
    torch.manual_seed(0)
    with_aux = module._step(batch, "train")
    with_aux.backward()
    assert head.weight.grad.abs().sum() > 0  # the head learns
    tasks, module.objective.aux_tasks = module.objective.aux_tasks, {}
    torch.manual_seed(0)
    without = module._step(batch, "train")
    module.objective.aux_tasks = tasks
    assert float((with_aux - without).detach()) == pytest.approx(0.5 * math.log(3), rel=1e-4)


def test_run_with_aux_task_logs_it_and_its_checkpoint_predicts_without_labels(cfg_factory, meld_root):  # noqa: F811
    cfg = cfg_factory([*SCRATCH, f"data.root={meld_root}", "model.aux_tasks={sentiment: 0.5}",
                       "debug=limit", "logger=csv"])
    summary = train(cfg)
    rows = list(csv.DictReader(open(next(Path(cfg.paths.output_dir).rglob("metrics.csv")))))
    assert any(r.get("train/aux_sentiment_loss") for r in rows)
    acc = [float(r["val/aux_sentiment_acc"]) for r in rows if r.get("val/aux_sentiment_acc")]
    assert acc and 0.0 <= acc[-1] <= 1.0
    model = EmotionModule.load_from_checkpoint(summary["best_ckpt"], map_location="cpu")
    assert set(model.aux_heads) == {"sentiment"}
    model.eval()
    dm = hydra_datamodule(cfg)
    batch = next(iter(dm.val_dataloader()))
    batch.pop("aux")
    with torch.no_grad():
        probs = model.predict_step(batch, 0)["probs"]
    assert probs.shape == (len(batch["label"]), 7)


def test_ravdess_clips_carry_intensity_and_sex_from_their_names(tmp_path):
    import numpy as np
    import soundfile as sf

    from emomm.data.datasets.ravdess import RavdessDataModule
    from tests.voice_fixtures import ravdess_name, tone
    rng = np.random.default_rng(0)
    for actor in (1, 2, 3, 4):   # odd actors are male; actors 1 and 2 also speak angry "strong"
        d = tmp_path / f"Actor_{actor:02d}"
        d.mkdir()
        for emotion in (1, 5):
            for intensity in ((1, 2) if emotion == 5 and actor <= 2 else (1,)):
                sf.write(d / f"{ravdess_name(emotion, actor, intensity=intensity)}.wav",
                         tone(220.0, 16000, 0.3, rng), 16000)
    dm = RavdessDataModule(root=str(tmp_path), train_speakers=[1, 2], val_speakers=[3, 4], test_speakers=[],
                           duration=0.3, batch_size=8, load_workers=1)
    dm.setup()
    assert dm.aux_label_names == {"intensity": ["normal", "strong"], "sex": ["female", "male"]}
    ds = dm.splits["train"]
    seen = {(Path(ds.paths[i]).stem, ds[i]["aux"]["intensity"], ds[i]["aux"]["sex"]) for i in range(len(ds))}
    assert ("03-01-05-02-01-01-01", 1, 1) in seen    # strong, actor 1: male
    assert ("03-01-05-01-01-01-02", 0, 0) in seen    # normal, actor 2: female
    batch = next(iter(dm.train_dataloader()))
    assert set(batch["aux"]) == {"intensity", "sex"} and batch["aux"]["sex"].shape == (len(ds),)


def test_cremad_clips_carry_level_and_with_the_demographics_table_sex(tmp_path):
    from emomm.data.datasets.cremad import CremadDataModule
    from tests.test_groups import CREMAD_DEMO
    from tests.voice_fixtures import write_cremad_tree
    write_cremad_tree(tmp_path / "cremad", actors=range(1001, 1008))

    def datamodule():
        dm = CremadDataModule(root=str(tmp_path / "cremad"), fold=None, train_speakers=[1001, 1002, 1003, 1004],
                              val_speakers=[1005, 1006, 1007], test_speakers=[], duration=0.4, load_workers=1)
        dm.setup()
        return dm

    dm = datamodule()   # no VideoDemographics.csv: the level alone, from the names
    assert dm.aux_label_names == {"level": ["low", "medium", "high"]}
    ds = dm.splits["train"]
    level = {Path(ds.paths[i]).stem: ds[i]["aux"]["level"] for i in range(len(ds))}
    assert level["1001_DFA_ANG_LO"] == 0 and level["1002_DFA_DIS_MD"] == 1 and level["1003_DFA_FEA_HI"] == 2
    assert level["1004_DFA_HAP_XX"] == -1     # unspecified: left out of the level loss

    (tmp_path / "cremad" / "metadata").mkdir()
    (tmp_path / "cremad" / "metadata" / "VideoDemographics.csv").write_text(CREMAD_DEMO)
    dm = datamodule()
    assert dm.aux_label_names == {"level": ["low", "medium", "high"], "sex": ["female", "male"]}
    ds = dm.splits["val"]
    sex = {ds.speakers[i]: ds[i]["aux"]["sex"] for i in range(len(ds))}
    assert sex == {1005: 1, 1006: 0, 1007: 0}     # Male, Female, Female in the table


def test_a_task_without_any_labelled_training_sample_is_refused(cfg_factory, tmp_path):
    from tests.voice_fixtures import write_cremad_tree
    root = tmp_path / "cremad"
    write_cremad_tree(root, actors=range(1001, 1006))
    for f in root.rglob("*"):   # keep the clips of unspecified level only
        if f.is_file() and not f.stem.endswith("_XX"):
            f.unlink()
    cfg = cfg_factory(["modality=voice", "data=cremad", f"data.root={root}", "data.fold=null",
                       "data.train_speakers=[1001,1002,1003]", "data.val_speakers=[1004,1005]",
                       "data.test_speakers=[]", "model.aux_tasks={level: 0.3}", "debug=limit",
                       "++data.allow_missing_classes=true"])   # only the happy clips are of level XX
    dm = hydra_datamodule(cfg)
    assert dm.aux_counts("train") == {"level": 0} and "level" in dm.aux_label_names
    with pytest.raises(ValueError, match="none of the 3 training samples carries a label for it"):
        train(cfg)
