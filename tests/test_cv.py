"""Cross-validation: fold helpers, speaker vs stratified folds, and `python -m emomm.cv`
end to end on a tiny RAVDESS tree."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from emomm.cv import apply_fold
from emomm.data.core.splits import stratified_kfold
from tests.voice_fixtures import write_ravdess_tree

ROOT = Path(__file__).resolve().parents[1]


def test_stratified_kfold_tests_every_sample_once_and_keeps_classes():
    labels = np.repeat(np.arange(4), [10, 7, 5, 9])
    tested = []
    for k in range(5):
        tr, va, te = stratified_kfold(labels, k, 5, seed=3)
        assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
        assert len(tr) + len(va) + len(te) == len(labels)
        # each class is dealt round-robin: a fold holds floor or ceil of its share
        for c, n in enumerate([10, 7, 5, 9]):
            assert abs((labels[te] == c).sum() - n / 5) < 1
        tested += list(te)
        again = stratified_kfold(labels, k, 5, seed=3)
        assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))
    assert sorted(tested) == list(range(len(labels)))
    assert not np.array_equal(stratified_kfold(labels, 0, 5, seed=4)[2], stratified_kfold(labels, 0, 5, seed=3)[2])
    with pytest.raises(ValueError, match="fold=5"):
        stratified_kfold(labels, 5, 5)


def test_pooled_folds_read_samples_in_their_new_role():
    """Fold K of the pooled synthetic splits: sizes add up, folds test disjoint samples, and
    samples moved from train into test are read like evaluation samples (no augmentation)."""
    from emomm.data.synthetic import SyntheticDataModule

    opts = {"face": {"image_size": 16, "in_chans": 1, "augment": {"hflip": 0.5, "erasing": 0.5, "rotation": 10}}}
    seen = []
    for k in range(3):
        dm = SyntheticDataModule(modalities=["face"], options=opts, n_train=18, n_val=6, n_test=6,
                                 batch_size=4, cv_fold=k, cv_folds=3)
        dm.setup()
        assert sum(dm.data_sizes.values()) == 30 and dm.data_sizes["test"] == 10
        assert np.bincount(dm.class_counts("test") > 0).size >= 1
        test = dm.splits["test"]
        torch.manual_seed(0)
        a = torch.stack([test[i]["inputs"]["face"] for i in range(len(test))])
        torch.manual_seed(1)
        b = torch.stack([test[i]["inputs"]["face"] for i in range(len(test))])
        assert torch.equal(a, b), "test samples must not be augmented"
        seen.append({tuple(x.flatten()[:8].tolist()) for x in a})
    assert not (seen[0] & seen[1] or seen[1] & seen[2])


def test_apply_fold_speaker_vs_stratified(cfg_factory):
    cfg = cfg_factory(["experiment=ravdess_voice", "+fold=2", "+folds=4"])
    assert apply_fold(cfg) == "speaker"
    assert (cfg.data.fold, cfg.data.n_folds, cfg.data.train_speakers, cfg.data.val_speakers) == (2, 4, None, None)
    cfg = cfg_factory(["+fold=1", "+folds=5"], subdir="s")
    assert apply_fold(cfg) == "stratified" and (cfg.data.cv_fold, cfg.data.cv_folds) == (1, 5)
    cfg = cfg_factory(["+fold=5", "+folds=5"], subdir="t")
    with pytest.raises(ValueError, match="fold=5"):
        apply_fold(cfg)


def test_cv_cli_by_actor_writes_per_fold_table_and_mean_std(tmp_path):
    root = tmp_path / "ravdess"
    write_ravdess_tree(root, actors=range(1, 7), seconds=0.3)
    out = tmp_path / "cv"
    cmd = [sys.executable, "-m", "emomm.cv", "modality=voice", "data=ravdess", f"data.root={root}",
           "folds=3", "data.batch_size=8", "voice.duration=0.3", "data.load_workers=1",
           "model.encoders.voice.channels=[8,16]", "model.encoders.voice.lstm_hidden=16",
           "model.encoders.voice.proj_dim=16", "trainer.max_epochs=1", "+trainer.enable_progress_bar=false",
           f"hydra.sweep.dir={out}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "cross-validation over 3 folds" in r.stdout
    uar = []
    for k in range(3):
        cfg = yaml.safe_load((out / f"fold_{k}" / "config.yaml").read_text())
        assert cfg["data"]["fold"] == k and cfg["data"]["n_folds"] == 3 and cfg["data"]["train_speakers"] is None
        uar.append(json.loads((out / f"fold_{k}" / "metrics.json").read_text())["test"]["uar"])
    rows = list(csv.DictReader(open(out / "cv_folds.csv")))
    assert [r["fold"] for r in rows] == ["0", "1", "2", "mean", "std"]
    assert [float(r["test/uar"]) for r in rows[:3]] == pytest.approx(uar)
    assert float(rows[3]["test/uar"]) == pytest.approx(np.mean(uar))
    assert float(rows[4]["test/uar"]) == pytest.approx(np.std(uar, ddof=1))
    summary = json.loads((out / "cv_summary.json").read_text())
    assert summary["n"] == 3 and summary["metrics"]["best_val/uar"]["n"] == 3
    md = (out / "cv_summary.md").read_text()
    assert "| test/uar |" in md and "## per fold" in md
