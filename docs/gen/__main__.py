"""`python -m docs.gen`: write the generated pages of the site (run by `make docs`).

docs/reference/: the config groups and entry points (from conf/) and the Python API pages
(mkdocstrings directives for the modules found in the package). docs/results/: one results page
per task from benchmarks/results/*.json, and the experiment log copied from experiments/log/.
Both folders are git-ignored and rewritten whole on every run. README.md (tracked): the block
between its `<!-- results:start -->` and `<!-- results:end -->` markers, the headline table of
the recipes (one row each), from the same result files.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from docs.gen import configs, results

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


def log_title(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def main() -> int:
    ref, res = DOCS / "reference", DOCS / "results"
    for folder in (ref, res):
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
    logs = []
    for p in sorted(log_dir.glob("*.md")) if log_dir.is_dir() else []:
        if p.name == "index.md":
            continue
        text = p.read_text()
        write(res / "log" / p.name, text)
        logs.append((p.name, log_title(p)))
    write(res / "log" / "index.md", "# Experiment log\n\nOne dated note per study, moved from "
          "experiments/RESULTS.md (`experiments/log/` in the repository). The tables are on the "
          "[results pages](../index.md).\n\n" + "\n".join(f"- [{t}]({f})" for f, t in logs) + "\n")

    files = results.load(ROOT / "benchmarks" / "results")
    used: set[str] = set()
    for slug in results.PAGES:
        text, u = results.task_page(slug, files, logs)
        used |= u
        write(res / f"{slug}.md", text)
    write(res / "all.md", results.all_page(files, used))
    write(res / "index.md", results.index_page(logs))
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = results.with_readme_table(text, results.readme_table(files))
    if new != text:
        readme.write_text(new)
    print(f"docs.gen: {len(files)} result files, {len(logs)} log notes, "
          f"{len(configs.groups(conf))} config groups -> {ref.relative_to(ROOT)}/, {res.relative_to(ROOT)}/, "
          f"README.md ({'updated' if new != text else 'unchanged'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
