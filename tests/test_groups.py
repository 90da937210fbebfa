"""Fairness: per-group metrics, group sources, the eval/train hooks and group-balanced sampling."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emomm.analysis.groups import confusion, group_metrics, metrics_from_confusion
from emomm.data.core.group_sources import CsvGroups, SampleMeta, age_band, build_source, sample_meta
from emomm.data.core.sampling import balanced_sample_weights
from emomm.data.datasets.cremad import CremadDemographics
from emomm.data.datasets.ravdess import RavdessSex
from tests.conftest import SHARED_DATA
from tests.voice_fixtures import ravdess_name, write_ravdess_tree

SMALL_CNN = ["model.encoders.voice.channels=[8,16]", "model.encoders.voice.lstm_hidden=16",
             "model.encoders.voice.proj_dim=16", "model.encoders.voice.attention_hidden=16"]

# The real header of CREMA-D's VideoDemographics.csv, with rows in its quoting style.
CREMAD_DEMO = '''"ActorID","Age","Sex","Race","Ethnicity"
1001,51,"Male","Caucasian","Not Hispanic"
1002,21,"Female","Caucasian","Not Hispanic"
1003,21,"Female","Caucasian","Not Hispanic"
1004,42,"Female","Caucasian","Not Hispanic"
1005,29,"Male","African American","Not Hispanic"
1006,58,"Female","Asian","Not Hispanic"
1007,38,"Female","Caucasian","Hispanic"
'''


# -- metrics -----------------------------------------------------------------------------------
def toy():
    """Group x: 4 samples, group y: 2 samples, one unassigned sample (hand-computed below)."""
    targets = [0, 0, 1, 1, 0, 1, 1]
    preds = [0, 1, 1, 1, 0, 0, 0]
    groups = ["x", "x", "x", "x", "y", "y", None]
    return preds, targets, groups


def test_group_metrics_match_hand_computed_values():
    preds, targets, groups = toy()
    r = group_metrics(preds, targets, groups, ["a", "b"], draws=500, seed=1)
    x, y = r["groups"]["x"], r["groups"]["y"]
    # x: recall a 1/2, b 2/2; precision a 1/1, b 2/3; F1 a 2/3, b 0.8
    assert x["n"] == 4 and x["acc"] == pytest.approx(0.75) and x["uar"] == pytest.approx(0.75)
    assert x["f1_macro"] == pytest.approx((2 / 3 + 0.8) / 2) and x["f1_weighted"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert x["recall/a"] == pytest.approx(0.5) and x["recall/b"] == pytest.approx(1.0)
    # y: predicts a for both: recall a 1, b 0; F1 a 2/3, b 0 (b has support, so it counts)
    assert y["n"] == 2 and y["acc"] == pytest.approx(0.5) and y["uar"] == pytest.approx(0.5)
    assert y["f1_macro"] == pytest.approx(1 / 3) and y["f1_weighted"] == pytest.approx(1 / 3)
    assert r["n_unassigned"] == 1
    gap = r["gap"]["uar"]
    assert gap["abs"] == pytest.approx(0.25) and gap["ratio"] == pytest.approx(0.5 / 0.75)
    assert (gap["min_group"], gap["max_group"]) == ("y", "x")
    for g in (x, y):  # percentile intervals contain the point estimate
        for m in ("acc", "uar", "f1_macro", "f1_weighted"):
            lo, hi = g["ci"][m]
            assert lo <= g[m] + 1e-9 and g[m] <= hi + 1e-9 and lo < hi
    assert gap["abs_ci"][0] <= gap["abs"] <= gap["abs_ci"][1]
    # seeded: the same draws again; another seed, other draws
    again = group_metrics(preds, targets, groups, ["a", "b"], draws=500, seed=1)
    assert again["groups"]["x"]["ci"] == x["ci"]


def test_metrics_agree_with_torchmetrics_and_batch_over_draws():
    from emomm.models.scoring import build_metrics
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    ours = metrics_from_confusion(confusion(p, t, 4))
    tm = build_metrics(4)
    tm.update(torch.as_tensor(p), torch.as_tensor(t))
    ref = {k: float(v) for k, v in tm.compute().items()}
    for k in ("acc", "uar", "f1_macro", "f1_weighted"):
        assert float(ours[k]) == pytest.approx(ref[k], abs=1e-6), k
    stacked = metrics_from_confusion(np.stack([confusion(p, t, 4), confusion(t, t, 4)]))
    assert stacked["acc"].shape == (2,) and stacked["acc"][1] == 1.0


def test_a_small_group_gets_a_wide_interval():
    rng = np.random.default_rng(0)
    n_big, n_small = 400, 12
    t = rng.integers(0, 2, n_big + n_small)
    p = np.where(rng.random(len(t)) < 0.7, t, 1 - t)
    r = group_metrics(p, t, ["big"] * n_big + ["small"] * n_small, ["a", "b"], draws=300)
    width = {g: r["groups"][g]["ci"]["acc"][1] - r["groups"][g]["ci"]["acc"][0] for g in ("big", "small")}
    assert width["small"] > 2 * width["big"]


# -- group sources -----------------------------------------------------------------------------
def test_ravdess_sex_from_speaker_or_file_name():
    meta = [SampleMeta(f"/x/Actor_{a:02d}/{ravdess_name(3, a)}.wav", None) for a in (17, 18, 19, 20)]
    assert RavdessSex().assign(meta) == ["male", "female", "male", "female"]
    assert RavdessSex().assign([SampleMeta(None, 1), SampleMeta(None, 24), SampleMeta("junk.wav", None)]) \
        == ["male", "female", None]
    source, opts = build_source("ravdess_sex")
    assert isinstance(source, RavdessSex) and opts["draws"] == 1000


def test_cremad_demographics_csv(tmp_path):
    (tmp_path / "AudioWAV").mkdir()
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "VideoDemographics.csv").write_text(CREMAD_DEMO)
    meta = [SampleMeta(str(tmp_path / "AudioWAV" / f"{a}_DFA_ANG_XX.wav"), a) for a in (1001, 1002, 1005, 1007)]
    age = CremadDemographics("age")
    assert age.assign(meta, root=tmp_path) == ["50-59", "20-29", "20-29", "30-39"]
    assert CremadDemographics("sex").assign(meta, root=tmp_path) == ["Male", "Female", "Male", "Female"]
    assert CremadDemographics("race").assign(meta, root=tmp_path)[2] == "African American"
    assert CremadDemographics("ethnicity").assign(meta, root=tmp_path)[3] == "Hispanic"
    # from the file name when the dataset has no speaker ids; unknown actors get no group
    by_name = [SampleMeta(m.path, None) for m in meta] + [SampleMeta("/x/1090_DFA_ANG_XX.wav", None)]
    assert CremadDemographics("sex").assign(by_name, root=tmp_path) == ["Male", "Female", "Male", "Female", None]
    assert age_band(20) == "20-29" and age_band(74) == "70-79"
    with pytest.raises(FileNotFoundError, match="groups.path="):
        CremadDemographics("sex").assign(meta, root=tmp_path / "AudioWAV" / "nowhere")
    with pytest.raises(ValueError, match="choose one of"):
        CremadDemographics("height")
    source, _ = build_source({"_target_": "emomm.data.datasets.cremad.CremadDemographics", "column": "race",
                              "path": str(tmp_path / "metadata" / "VideoDemographics.csv"), "draws": 10})
    assert source.assign(meta) == ["Caucasian", "Caucasian", "African American", "Caucasian"]


@pytest.mark.skipif(not (SHARED_DATA / "cremad_sample" / "metadata").is_dir(), reason="no shared CREMA-D sample")
def test_cremad_real_demographics_table():
    table = CremadDemographics("sex").table(SHARED_DATA / "cremad_sample")
    assert len(table) == 91 and table[1001] == "Male" and table[1002] == "Female"
    assert set(CremadDemographics("age").table(SHARED_DATA / "cremad_sample").values()) <= \
        {"20-29", "30-39", "40-49", "50-59", "60-69", "70-79"}


def test_csv_groups_by_speaker_and_by_sample(tmp_path):
    table = tmp_path / "groups.csv"
    table.write_text("id,gender,accent\n7,f,north\n8,m,south\nclip_b.wav,m,west\n")
    meta = [SampleMeta("/d/clip_a.wav", 7), SampleMeta("/d/clip_b.wav", 8), SampleMeta("/d/clip_c.wav", 9)]
    assert CsvGroups(str(table), "gender").assign(meta) == ["f", "m", None]
    assert CsvGroups(str(table), "accent", key="sample").assign(meta) == [None, "west", None]
    with pytest.raises(ValueError, match="groups.column"):
        CsvGroups(str(table), "age").assign(meta)
    with pytest.raises(ValueError, match="not registered"):
        build_source("nope")


def test_groups_files_naming_the_old_sources_still_build(monkeypatch, tmp_path):
    """Issue 43 moved the group sources out of ``emomm.analysis.groups`` beside their datasets;
    a groups file written before (its ``_target_`` the old name) still builds the same source."""
    import yaml

    from emomm.utils import runtime
    table = tmp_path / "t.csv"
    table.write_text("id,gender\n1,f\n")
    (tmp_path / "groups").mkdir()
    old = {"sex": {"_target_": "emomm.analysis.groups.RavdessSex"},
           "race": {"_target_": "emomm.analysis.groups.CremadDemographics", "column": "race"},
           "gender": {"_target_": "emomm.analysis.groups.CsvGroups", "path": str(table), "column": "gender"}}
    for name, cfg in old.items():
        (tmp_path / "groups" / f"{name}.yaml").write_text(yaml.safe_dump({**cfg, "draws": 7}))
    monkeypatch.setattr(runtime, "CONFIG_DIR", str(tmp_path))
    built = {name: build_source(name) for name in old}
    assert {n: type(s) for n, (s, _) in built.items()} == {"sex": RavdessSex, "race": CremadDemographics,
                                                          "gender": CsvGroups}
    assert built["race"][0].column == "race" and built["race"][1] == {"draws": 7}
    assert built["gender"][0].assign([SampleMeta(None, 1), SampleMeta(None, 2)]) == ["f", None]


def test_sample_meta_through_subsets():
    class DS(torch.utils.data.Dataset):
        paths, speakers = ["a", "b", "c"], [1, 2, 3]

        def __len__(self):
            return 3
    sub = torch.utils.data.Subset(DS(), [2, 0])
    assert sample_meta(sub) == [SampleMeta("c", 3), SampleMeta("a", 1)]
    cat = torch.utils.data.ConcatDataset([sub, DS()])
    assert [m.path for m in sample_meta(cat)] == ["c", "a", "a", "b", "c"]


def test_balanced_weights_equalise_groups():
    class DS(torch.utils.data.Dataset):
        speakers = [1, 1, 1, 2]          # three male clips, one female
        paths = [None] * 4
        labels = [0, 1, 0, 0]

        def __len__(self):
            return 4
    w = balanced_sample_weights(DS(), "ravdess_sex", by="group")
    assert w[3] == pytest.approx(0.5) and w[:3].sum() == pytest.approx(0.5)
    w = balanced_sample_weights(DS(), "ravdess_sex", by="group_class")
    # cells male/0 (2 clips), male/1 (1), female/0 (1): each cell a third
    assert w[1] == pytest.approx(1 / 3) and w[3] == pytest.approx(1 / 3) and w[0] == pytest.approx(1 / 6)


# -- end to end on a tiny RAVDESS tree ---------------------------------------------------------
@pytest.fixture(scope="module")
def ravdess(tmp_path_factory):
    root = tmp_path_factory.mktemp("ravdess_groups")
    write_ravdess_tree(root, actors=range(1, 7), seconds=0.4)
    return root


def test_train_and_eval_with_groups_write_test_groups_csv_png(cfg_factory, ravdess, caplog):
    import logging
    from emomm.eval import evaluate
    from emomm.train import train
    data = ["modality=voice", "data=ravdess", f"data.root={ravdess}", "data.batch_size=4", "data.load_workers=1",
            "data.train_speakers=[1,2,3,4]", "data.val_speakers=[5,6]", "data.test_speakers=[]", "data.fold=null",
            "voice.duration=0.4"]
    cfg = cfg_factory([*data, "debug=limit", "trainer.limit_test_batches=null", "groups=ravdess_sex",
                       "groups.draws=50", "+data.balance_groups=ravdess_sex", *SMALL_CNN])
    with caplog.at_level(logging.INFO, logger="emomm.data.core.sampling"):
        summary = train(cfg)
    assert "group-balanced sampling by group over ravdess_sex" in caplog.text  # the mitigation was used
    out = Path(cfg.paths.output_dir)
    tg = json.loads((out / "metrics.json").read_text())["test_groups"]
    assert tg["source"] == "ravdess_sex" and set(tg["groups"]) == {"male", "female"}  # actor 5 male, 6 female
    assert sum(g["n"] for g in tg["groups"].values()) == summary["data_sizes"]["test"]
    assert (out / "groups_ravdess_sex.csv").is_file() and (out / "groups_ravdess_sex.png").stat().st_size > 1000

    ckpt = out / "checkpoints" / "best.ckpt"
    ecfg = cfg_factory([f"ckpt_path={ckpt}", "groups=ravdess_sex", "groups.draws=100"], config_name="eval", subdir="eval")
    result = evaluate(ecfg)
    eout = Path(ecfg.paths.output_dir)
    saved = json.loads((eout / "metrics.json").read_text())["test_groups"]
    assert saved == json.loads(json.dumps(result["test_groups"]))
    # the groups partition the test split, and their counts weigh back to the overall accuracy
    n = sum(g["n"] for g in saved["groups"].values())
    acc = sum(g["acc"] * g["n"] for g in saved["groups"].values()) / n
    assert acc == pytest.approx(result["metrics"]["acc"], abs=1e-6)
    assert set(saved["gap"]) == {"acc", "uar", "f1_macro", "f1_weighted"}
    rows = list(csv.reader(open(eout / "groups_ravdess_sex.csv")))
    assert rows[0][:3] == ["group", "n", "acc"] and {r[0] for r in rows[1:3]} == {"male", "female"}
    assert rows[3][0] == "gap (max-min)" and rows[4][0] == "ratio (min/max)"
    assert (eout / "groups_ravdess_sex.png").stat().st_size > 1000


def test_groups_on_a_dataset_without_ids_is_a_clear_error(cfg_factory):
    from emomm.train import train
    cfg = cfg_factory(["modality=voice", "data.n_train=8", "data.n_val=4", "data.n_test=4", "data.batch_size=4",
                       "voice.duration=0.25", "debug=fast_dev_run", "groups=ravdess_sex", *SMALL_CNN])
    with pytest.raises(ValueError, match="records no sample paths or speaker ids"):
        train(cfg)


def test_every_groups_option_composes_and_builds(cfg_factory, tmp_path):
    from emomm.utils.runtime import CONFIG_DIR
    table = tmp_path / "t.csv"
    table.write_text("id,gender\n1,f\n")
    for opt in sorted(p.stem for p in (Path(CONFIG_DIR) / "groups").glob("*.yaml")):
        extra = [f"groups.path={table}", "groups.column=gender"] if opt == "csv" else []
        for config in ("train", "eval"):
            base = ["ckpt_path=x.ckpt"] if config == "eval" else []
            cfg = cfg_factory([*base, f"groups={opt}", *extra], config_name=config, subdir=f"{config}-{opt}")
            source, report = build_source(cfg.groups)
            assert report["draws"] == 1000 and source.name == (opt if opt != "csv" else "csv_gender")
