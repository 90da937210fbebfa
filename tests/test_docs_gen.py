"""docs/gen: the reference and the results tables are read from conf/ and the result files."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

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
        page, used = results.task_page(slug, files)
        assert used and "| recipe | metric |" in page, slug


def test_a_headline_row_is_the_mean_of_its_recorded_runs_and_a_dash_where_none_is():
    machine = {"cpu": "CPU9", "cores": 2}
    files = {"a": {"val_acc": 0.70, "train_time_s": 600, "machine": machine},
             "b": {"val_acc": 0.68, "train_time_s": 1200, "machine": machine},
             "p": {"machine": machine, "pairs": [{"members": {"x": {"uar": 0.5}}, "train_time_s": {"x": 60}}]}}
    two = results.Headline("Faces", "experiment=x", "acc", "fer2013", [
        results.recorded("a", ("val_acc",), ("train_time_s",)),
        results.recorded("b", ("val_acc",), ("train_time_s",))])
    assert results.headline_cells(two, files) == ("acc: 69.0 ± 1.4 (n=2)", "15.0 min", "CPU9, 2 cores")
    one = results.Headline("Voice", "experiment=y", "UAR", "ravdess", [
        results.each_recorded("p", "pairs", ("members", "x", "uar"), ("train_time_s", "x"))])
    assert results.headline_cells(one, files) == ("UAR: 50.0 (n=1)", "1.0 min", "CPU9, 2 cores")
    gone = results.Headline("Text", "experiment=z", "F1", "meld", [
        results.recorded("renamed", ("val_acc",), ("train_time_s",)),
        results.recorded("a", ("runs", "absent", "f1"), ("runs", "absent", "t"))])
    assert results.headline_cells(gone, files) == ("F1: -", "-", "-")
    bare = results.Headline("Text", "experiment=z", "F1", "meld", [results.recorded("c", ("f1",), ("t",))])
    assert results.headline_cells(bare, {"c": {"f1": 0.6}}) == ("F1: 60.0 (n=1)", "-", "-")


def test_every_recipe_of_the_readme_table_reads_runs_from_the_recorded_results():
    files = results.load(ROOT / "benchmarks" / "results")
    for h in results.HEADLINES:
        runs = [r for source in h.sources for r in source(files)]
        assert runs and all(r.value is not None for r in runs), h.recipe      # a renamed file or key fails
        assert h.page in results.PAGES and h.recipe.startswith("experiment=")


def test_readme_results_block_is_what_the_generator_writes_now():
    """A stale README (a result file added or changed, a figure edited by hand) fails: run `python -m docs.gen`."""
    readme = (ROOT / "README.md").read_text()
    table = results.readme_table(results.load(ROOT / "benchmarks" / "results"))
    assert results.with_readme_table(readme, table) == readme, "README.md's results table is stale: python -m docs.gen"
    assert readme.index("## Results") < readme.index(results.README_START) < readme.index("## Layout")


def test_the_readme_block_is_replaced_between_its_markers_only():
    text = f"# x\n\n## Results\n\n{results.README_START}\nold\n{results.README_END}\n\nkept\n"
    assert results.with_readme_table(text, f"{results.README_START}\nnew\n{results.README_END}") == (
        f"# x\n\n## Results\n\n{results.README_START}\nnew\n{results.README_END}\n\nkept\n")
    with pytest.raises(ValueError, match="results:start"):
        results.with_readme_table("# x\n## Results\n", "table")


# -- one place per figure (issue 44): a config comment keeps the why and points at the page ----
#: What a config comment may not state: a percentage, a mean +- spread, or RESULTS.md. The
#: measured figure lives on a results page (docs/results/<task>.md) or in a dated note
#: (experiments/log/<date>-<study>.md), and the comment names that page instead.
FIGURE_IN_COMMENT = re.compile(r"RESULTS\.md|\d\s?%|\d\s*(\+-|±)\s*\d")
CITED_PAGE = re.compile(r"(?:experiments/log|docs/results)/[\w.-]+\.md")


def figures_in_comments(text: str) -> list[str]:
    """The comments of a YAML that state a measured figure, as 'line: comment'."""
    return [f"{n}: {c}" for n, c in configs.comments(text) if FIGURE_IN_COMMENT.search(c)]


def test_the_figure_rule_catches_figures_and_spares_the_why():
    assert figures_in_comments("lr: 1.0e-4   # over 3 seeds 60.2 vs 59.1 (RESULTS.md)\n")
    assert figures_in_comments("# @package _global_\n# 69.9% PublicTest in 52.5 min\nx: 1\n")
    assert figures_in_comments("x: 1\n  # continued: 60.0 +- 1.1 over 3 seeds\n")
    assert figures_in_comments("x: 1  # 73.6 ± 1.8\n")
    why = ("# @package _global_\n# +ablation=meld/bf16: faster per step (experiments/log/2026-12-06-x.md)\n"
           "gain_db: 6.0  # random gain in +-6 dB\nwarmup_fraction: 0.05  # of the steps\nsep: '50%'\n")
    assert figures_in_comments(why) == []


def test_no_config_comment_repeats_a_measured_figure():
    found = {str(p.relative_to(ROOT)): figures_in_comments(p.read_text()) for p in sorted((ROOT / "conf").rglob("*.yaml"))}
    found = {k: v for k, v in found.items() if v}
    assert not found, ("these config comments repeat a measured figure or cite RESULTS.md; keep the why in one "
                       "line and point at docs/results/<task>.md or experiments/log/<note>.md instead: "
                       f"{found}")


def test_every_page_a_config_comment_points_at_exists():
    pages = {f"docs/results/{slug}.md" for slug in (*results.PAGES, "index", "all")}
    for path in sorted((ROOT / "conf").rglob("*.yaml")):
        for n, comment in configs.comments(path.read_text()):
            for page in CITED_PAGE.findall(comment):
                ok = (ROOT / page).is_file() if page.startswith("experiments/") else page in pages
                assert ok, f"{path.relative_to(ROOT)}:{n}: {page} does not exist"
