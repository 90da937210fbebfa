"""`emomm.compare` on run folders written in the exact form `emomm.train` writes them."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from emomm.analysis.comparison import comparison_rows, differing_overrides, group_stats
from emomm.analysis.run_folders import find_runs
from emomm.compare import argv_with_runs

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["angry", "happy", "sad"]


def write_run(d: Path, overrides: list[str], val_uar: float, test_uar: float, subsets: bool = False,
              pruned_at: int | None = None) -> Path:
    (d / ".hydra").mkdir(parents=True)
    (d / "csv").mkdir()
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    metrics = {"monitor": "val/uar", "best_val": {"uar": val_uar, "acc": val_uar + 0.01, "epoch": 2},
               "test": {"uar": test_uar, "acc": test_uar, "f1_macro": test_uar - 0.05, "recall/angry": 0.5},
               "train_time_s": 12.5, "epochs": 3, "num_params": 1234, "label_names": LABELS}
    if pruned_at is not None:
        metrics["pruned_at_epoch"] = pruned_at
    if subsets:
        metrics["test_modalities"] = {"face": {"n": 9, "uar": 0.4}, "voice": {"n": 9, "uar": 0.3}}
        metrics["test_subsets"] = {"face+voice": {"n": 9, "uar": test_uar}, "face": {"n": 9, "uar": 0.41}}
    (d / "metrics.json").write_text(json.dumps(metrics))
    with open(d / "csv" / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "step", "train/loss_step", "val/uar"])
        for e in range(3):
            w.writerow([e, e * 10 + 5, 1.0, ""])          # a train row without val/uar
            w.writerow([e, e * 10 + 9, "", val_uar * (e + 1) / 3])
    with open(d / "confusion_matrix.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["true\\pred", *LABELS])
        for i, name in enumerate(LABELS):
            w.writerow([name, *[3 if i == j else 1 for j in range(3)]])
    return d


@pytest.fixture
def runs_tree(tmp_path):
    """A cross-validation-like multirun (lr x fold) and one multimodal run elsewhere."""
    sweep = tmp_path / "multiruns" / "2026-01-01_00-00-00"
    uar = {("1e-3", 0): 0.50, ("1e-3", 1): 0.60, ("3e-3", 0): 0.70, ("3e-3", 1): 0.74}
    for n, ((lr, fold), v) in enumerate(uar.items()):
        write_run(sweep / str(n), ["data=ravdess", f"model.optimizer.lr={lr}", f"fold={fold}"], v, v - 0.1)
    mm = write_run(tmp_path / "runs" / "mm", ["modality=multimodal", "fusion=gated"], 0.55, 0.52, subsets=True)
    (sweep / "multirun.yaml").write_text("not a run\n")
    return tmp_path, sweep, mm


def test_table_rows_differing_overrides_and_groups(runs_tree):
    _, sweep, mm = runs_tree
    runs = find_runs([sweep, str(mm)])
    assert [r.path.name for r in runs] == ["0", "1", "2", "3", "mm"]
    assert differing_overrides(runs) == ["data", "model.optimizer.lr", "fold", "modality", "fusion"]
    cols, rows = comparison_rows(runs, "test/uar")
    assert [r["run"] for r in rows][:2] == ["multiruns/2026-01-01_00-00-00/3", "multiruns/2026-01-01_00-00-00/2"]
    assert [r["test/uar"] for r in rows] == pytest.approx([0.64, 0.60, 0.52, 0.50, 0.40])
    mm_row = next(r for r in rows if r["run"].endswith("mm"))
    assert mm_row["test_subsets/face/uar"] == 0.41 and mm_row["test_modalities/voice/uar"] == 0.3
    assert mm_row["model.optimizer.lr"] == "" and mm_row["fusion"] == "gated"
    _, asc = comparison_rows(runs, "best_val/uar", ascending=True)
    assert asc[0]["best_val/uar"] == 0.50
    stats = {name: (m, s, n) for name, m, s, n in group_stats(find_runs([sweep]), "best_val/uar")}
    assert set(stats) == {"model.optimizer.lr=1e-3", "model.optimizer.lr=3e-3"}  # folds are repeats
    m, s, n = stats["model.optimizer.lr=3e-3"]
    assert (m, n) == (pytest.approx(0.72), 2) and s == pytest.approx(0.0282843, rel=1e-4)
    with pytest.raises(ValueError, match="sort_by=test/nope"):
        comparison_rows(runs, "test/nope")
    with pytest.raises(FileNotFoundError, match="no finished run"):
        find_runs([sweep / "missing"])


def test_pruned_trials_get_a_column_only_when_there_are_some(tmp_path):
    write_run(tmp_path / "s" / "0", ["model.optimizer.lr=1e-3"], 0.6, 0.5)
    write_run(tmp_path / "s" / "1", ["model.optimizer.lr=3e-3"], 0.3, 0.2, pruned_at=4)
    cols, rows = comparison_rows(find_runs([tmp_path / "s"]))
    assert cols[:2] == ["run", "pruned_at_epoch"] and [r["pruned_at_epoch"] for r in rows] == ["", 4]
    cols, _ = comparison_rows(find_runs([tmp_path / "s" / "0"]))
    assert "pruned_at_epoch" not in cols


def test_bare_paths_become_the_runs_list():
    assert argv_with_runs(["a/b", "sort_by=test/uar", "c d's"]) == ["sort_by=test/uar", "runs=['a/b','c d\\'s']"]
    assert argv_with_runs(["runs=[x]"]) == ["runs=[x]"]


def test_compare_cli_writes_tables_and_plots(runs_tree):
    tmp, sweep, mm = runs_tree
    out = tmp / "cmp"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "emomm.compare", str(tmp / "multiruns" / "*"), str(mm),
                        "sort_by=best_val/uar", f"out_dir={out}"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    md = (out / "compare.md").read_text().splitlines()
    assert md[0] == "# 5 runs, sorted by best_val/uar (rates in %)"
    assert md[4].startswith("| multiruns/2026-01-01_00-00-00/3 |") and "| 74.00 |" in md[4]
    rows = list(csv.DictReader(open(out / "compare.csv")))
    assert [float(x["best_val/uar"]) for x in rows] == [0.74, 0.70, 0.60, 0.55, 0.50]
    for name in ("metric.png", "learning_curves.png", "confusion_matrices.png"):
        w, h = Image.open(out / name).size
        assert w > 200 and h > 100, name
