"""docs/gen: the reference and the results tables are read from conf/ and the result files."""
from __future__ import annotations

from pathlib import Path

from docs.gen import configs, results

ROOT = Path(__file__).resolve().parents[1]


def test_every_key_of_a_yaml_with_its_comment():
    text = ("# The module.\n_target_: x.Y\noptimizer:\n  lr: 1.0e-3     # the peak rate\n"
            "  # above the key\n  weight_decay: 0.01\ndefaults:\n  - default\nnote: a  # one\n"
            "                # continued\n")
    keys = {k.path: (k.default, k.comment) for k in configs.yaml_keys(text)}
    assert keys["optimizer.lr"] == ("1.0e-3", "the peak rate")
    assert keys["optimizer.weight_decay"] == ("0.01", "above the key")
    assert keys["note"] == ("a", "one continued") and "defaults" not in keys
    assert configs.first_comment("# @package _global_\n# The module.\n# More.\nx: 1\n") == "The module. More."


def test_the_config_reference_names_the_learning_rate():
    page = configs.config_groups_page(ROOT / "conf")
    assert "| `optimizer.lr` | `1.0e-3` |" in page            # model/default.yaml
    assert "## callbacks" in page and "### experiment/meld_text" in page
    assert "## emomm.train" in configs.entry_points_page(ROOT / "conf")


def test_a_results_row_is_read_from_its_file_and_a_missing_field_is_a_dash():
    d = {"benchmark": "ravdess_voice_x", "date": "2030-01-01 00:00", "machine": {"cpu": "CPU9", "cores": 4},
         "overrides": ["experiment=ravdess_voice"], "seeds": [1, 2], "n_seeds": 2,
         "val_uar_mean": 0.7, "val_uar_std": 0.01, "train_time_s_mean": 600}
    (row,) = results.seeds_run(d, "ravdess_voice_x")
    assert (row.value, row.seeds, row.train_time, row.cpu, row.date) == (
        "70.0 ± 1.0 (n=2)", "1, 2", "10.0 min", "CPU9, 4 cores", "2030-01-01 00:00")
    (row,) = results.seeds_run({"val_uar": 0.5}, "bare")
    assert (row.seeds, row.train_time, row.cpu, row.command, row.date) == ("-",) * 5
    assert "command" in results.gaps({"val_uar": 0.5})


def test_every_task_page_has_rows_from_the_recorded_results():
    files = results.load(ROOT / "benchmarks" / "results")
    for slug in results.PAGES:
        page, used = results.task_page(slug, files, [])
        assert used and "| recipe | metric |" in page, slug
