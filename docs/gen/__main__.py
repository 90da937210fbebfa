"""`python -m docs.gen`: write the generated pages and pictures of the site (run by `make docs`).

docs/reference/ (git-ignored): the config groups and entry points (from conf/) and the Python API
pages (mkdocstrings directives for the modules found in the package). docs/results/: one results
page per task, the index and every result file, from benchmarks/results/*.json -- tracked, so
README.md's links to them work on GitHub and a fresh clone, and tested to be what this writes
now (tests/test_docs_site.py) -- and, git-ignored, log/ (the experiment notes copied from
experiments/log/ for the site). docs/generated/ (git-ignored, media are not tracked): plots/
(one chart per results table section) and screenshots/ (the web app in Chromium; skipped with a
note where there is none). README.md: the block between its `<!-- results:start -->` and
`<!-- results:end -->` markers, the headline table of the recipes, from the same result files.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from docs.gen import configs, plots, results, screenshots
from docs.gen.site import GENERATED, log_notes

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

API = {
    "predictor": ("Predictor", "Predict from raw media with a trained checkpoint (or an export).",
                  ["emomm.inference.predictor.Predictor"]),
    "module": ("EmotionModule", "The LightningModule every run trains: encoders -> fusion -> heads.",
               ["emomm.models.module.EmotionModule"]),
    "encoders": ("Encoders", "One file per encoder family in `emomm/models/encoders/`; each returns an "
                 "`EncoderOutput`.", "emomm/models/encoders"),
    "fusions": ("Fusions", "How modalities are joined (`fusion=`).", ["emomm.models.fusion"]),
    "datamodules": ("DataModules", "The DataModule base and one module per dataset "
                    "(`emomm/data/datasets/`).",
                    ["emomm.data.core.emotion_datamodule"] + ["emomm/data/datasets"]),
}


def _modules(folder: str) -> list[str]:
    return [".".join((Path(folder) / p.stem).parts) for p in sorted((ROOT / folder).glob("*.py"))
            if p.stem != "__init__"]


def api_page(title: str, intro: str, targets) -> str:
    if isinstance(targets, str):
        targets = [targets]
    names: list[str] = []
    for t in targets:
        names += _modules(t) if "/" in t else [t]
    out = [f"# {title}", "", intro, "", "Generated from the docstrings by mkdocstrings.", ""]
    for n in names:
        out += [f"::: {n}", ""]
    return "\n".join(out)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def results_pages(files: dict[str, dict]) -> dict[str, str]:
    """{file name under docs/results/: its markdown} for the tracked results pages: read from the
    result files alone (the notes they list are filled in at build time: docs/gen/site.py)."""
    pages, used = {}, set()
    for slug in results.PAGES:
        pages[f"{slug}.md"], u = results.task_page(slug, files)
        used |= u
    pages["all.md"] = results.all_page(files, used)
    pages["index.md"] = results.index_page()
    return pages


def draw_plots(files: dict[str, dict], out: Path) -> int:
    """The results pages' charts into `out` (docs/generated/); how many."""
    n = 0
    for slug, (title, *_rest) in results.PAGES.items():
        for i, (section, rows, _used) in enumerate(results.section_rows(slug, files), 1):
            chart = plots.chart_bars(rows)
            if chart:
                plots.draw(out / results.plot_name(slug, i), f"{title}: {section.title}", *chart)
                n += 1
    return n


def main() -> int:
    ref, res, generated = DOCS / "reference", DOCS / "results", DOCS / GENERATED
    for folder in (ref, res, generated / "plots"):
        shutil.rmtree(folder, ignore_errors=True)
    conf = ROOT / "conf"
    write(ref / "index.md", "# Reference\n\nGenerated from the code by `python -m docs.gen`, so it cannot "
          "drift: [Entry points](entry-points.md) (their options, from `conf/<entry point>.yaml`), "
          "[Config groups](config-groups.md) (every group, option and key with its comment) and the "
          "Python API ([Predictor](api/predictor.md), [EmotionModule](api/module.md), "
          "[encoders](api/encoders.md), [fusions](api/fusions.md), "
          "[DataModules](api/datamodules.md)). What a run writes: [Run outputs](../guides/outputs.md).\n")
    write(ref / "config-groups.md", configs.config_groups_page(conf))
    write(ref / "entry-points.md", configs.entry_points_page(conf))
    for slug, (title, intro, targets) in API.items():
        write(ref / "api" / f"{slug}.md", api_page(title, intro, targets))

    log_dir = ROOT / "experiments" / "log"
    logs = log_notes(log_dir)
    for name, _title in logs:
        write(res / "log" / name, (log_dir / name).read_text())
    write(res / "log" / "index.md", "# Experiment log\n\nOne dated note per study, moved from "
          "experiments/RESULTS.md (`experiments/log/` in the repository). The tables are on the "
          "[results pages](../index.md).\n\n" + "\n".join(f"- [{t}]({f})" for f, t in logs) + "\n")

    files = results.load(ROOT / "benchmarks" / "results")
    for name, text in results_pages(files).items():
        write(res / name, text)
    n_plots = draw_plots(files, generated)
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = results.with_readme_table(text, results.readme_table(files))
    if new != text:
        readme.write_text(new)
    print(f"docs.gen: {len(files)} result files, {len(logs)} log notes, "
          f"{len(configs.groups(conf))} config groups -> {ref.relative_to(ROOT)}/, {res.relative_to(ROOT)}/, "
          f"README.md ({'updated' if new != text else 'unchanged'}); {n_plots} plots")
    print("docs.gen: " + screenshots.draw())
    return 0


if __name__ == "__main__":
    sys.exit(main())
