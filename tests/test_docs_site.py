"""The documentation site as a reader meets it (issue 44): the results pages README.md links are
tracked and fresh, no link of a tracked page is dead on a fresh clone, pictures appear only when
drawn, and the built site loads nothing from the network."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from PIL import Image

from docs.gen import plots, results, screenshots
from docs.gen.__main__ import draw_plots, results_pages
from docs.gen.site import (LOG_IN_REPO, dead_links, expand_pictures, expand_studies, external_refs,
                           external_refs_in_site, picture_marker, pictures, site_log_links, studies_marker)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return results_pages(results.load(ROOT / "benchmarks" / "results"))


def test_the_tracked_results_pages_are_what_the_generator_writes_now(pages):
    """A result file added or changed, or a page edited by hand: run `python -m docs.gen`."""
    on_disk = {p.name: p.read_text() for p in RESULTS.glob("*.md")}
    assert set(on_disk) == set(pages), "docs/results/*.md are not the generated set: python -m docs.gen"
    stale = sorted(n for n in pages if on_disk[n] != pages[n])
    assert not stale, f"docs/results/{stale} are stale: python -m docs.gen"


def test_readme_and_the_results_pages_have_no_dead_link_on_a_fresh_clone():
    for page in [ROOT / "README.md", *sorted(RESULTS.glob("*.md"))]:
        assert not dead_links(page.read_text(), page, ROOT), (
            f"{page.relative_to(ROOT)} links a missing file or one only `make docs` writes (GitHub shows a 404)")


def test_experiment_notes_link_only_each_other():
    """The site shows the notes from a copy (results/log/), where a link into the repository
    (`../../docs/results/x.md`) breaks the strict build: a note names such files as code."""
    log = ROOT / "experiments" / "log"
    for note in sorted(log.glob("*.md")):
        local = [t for t in re.findall(r"\]\(([^)\s]+)\)", note.read_text()) if not re.match(r"[a-z]+:|#", t)]
        bad = [t for t in local if "/" in t.split("#")[0] or not (log / t.split("#")[0]).is_file()]
        assert not bad, f"{note.relative_to(ROOT)} links {bad}: link another note by its file name, or name the file as code"


def test_a_link_into_an_untracked_generated_folder_is_dead(tmp_path):
    (tmp_path / "docs" / "reference").mkdir(parents=True)
    (tmp_path / "docs" / "reference" / "x.md").write_text("# x\n")
    (tmp_path / "conf").mkdir()
    page = tmp_path / "README.md"
    text = "[ref](docs/reference/x.md) [conf](conf/) [gone](docs/y.md#a) [web](https://x.org) [top](#top)"
    assert dead_links(text, page, tmp_path) == ["docs/reference/x.md", "docs/y.md#a"]


def test_a_picture_shows_when_drawn_and_leaves_nothing_when_not(tmp_path):
    page = f"# Web app\n\n{picture_marker('screenshots/a.png', 'The Upload tab')}\n\ntext\n"
    assert pictures(page) == ["screenshots/a.png"]
    assert pictures(picture_marker("plots/b.png", "recall >= 40 px")) == ["plots/b.png"]
    assert expand_pictures(page, "getting-started/web-app.md", tmp_path) == "# Web app\n\n\n\ntext\n"
    (tmp_path / "generated" / "screenshots").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "generated" / "screenshots" / "a.png")
    assert "![The Upload tab](../generated/screenshots/a.png)" in expand_pictures(
        page, "getting-started/web-app.md", tmp_path)


def test_the_site_links_its_own_copy_of_the_experiment_notes():
    text = f"[a note]({LOG_IN_REPO}2026-12-07-x.md) and [the log]({LOG_IN_REPO})"
    assert site_log_links(text, "results/fer2013.md") == "[a note](log/2026-12-07-x.md) and [the log](log/index.md)"
    assert site_log_links(text, "guides/train.md") == text


def test_every_chart_a_results_page_names_is_drawn(pages, tmp_path):
    named = {p for text in pages.values() for p in pictures(text)}
    assert named, "no results page shows a chart"
    assert draw_plots(results.load(ROOT / "benchmarks" / "results"), tmp_path) == len(named)
    for path in named:
        with Image.open(tmp_path / path) as im:
            assert im.width > 200 and im.height > 50, path


def test_a_chart_takes_the_rows_of_one_metric_with_their_spread():
    row = results.Row
    rows = [row("a", "UAR", "65.2 ± 1.7 (n=2)", source="f1"), row("a", "UAR", "60.0", source="f2"),
            row("b", "UAR", "-"), row("c", "F1", "70.0")]
    assert plots.chart_bars(rows) == ("UAR (%)", [("a [f1]", 65.2, 1.7), ("a [f2]", 60.0, None)])
    assert plots.chart_bars(rows[:1]) is None
    assert plots.axis("ms per crop p50 / p95; file MB") == "ms per crop p50"


def test_the_external_reference_check_catches_what_a_page_would_load():
    page = ('<script src="https://unpkg.com/iframe-worker/shim"></script>'
            '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">'
            '<style>@import url("//cdn.example/x.css")</style><img src=http://x.org/a.png>'
            '<pre class="mermaid">graph</pre>')
    assert len(external_refs(page)) == 5
    local = ('<script src="assets/javascripts/iframe-worker.js"></script><link rel="stylesheet" '
             'href="../assets/x.css"><a href="https://squidfunk.github.io/mkdocs-material/">Material</a>'
             '<link rel="canonical" href="http://127.0.0.1:8001/index.html">')
    assert external_refs(local) == []


def test_the_site_built_with_the_project_config_loads_nothing_from_the_network(tmp_path):
    """Material's offline plugin adds a search shim from unpkg.com unless mkdocs.yml gives one: the
    build (the hook fails it) and the pages must name only local files."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nOne page.\n")
    (docs / "assets" / "javascripts").mkdir(parents=True)
    shim = "assets/javascripts/iframe-worker.js"
    (docs / shim).write_text((ROOT / "docs" / shim).read_text())
    cfg = load_config(config_file=str(ROOT / "mkdocs.yml"), docs_dir=str(docs),
                      site_dir=str(tmp_path / "site"), nav=[{"Home": "index.md"}])
    build(cfg)
    html = (tmp_path / "site" / "index.html").read_text()
    assert f'<script src="{shim}"></script>' in html and (tmp_path / "site" / shim).is_file()
    assert external_refs_in_site(tmp_path / "site") == {}


def test_without_chromium_the_screenshots_are_skipped_with_a_note(monkeypatch, tmp_path):
    monkeypatch.setattr(screenshots, "browser_paths", lambda: (None, None))
    note = screenshots.draw(tmp_path)
    assert note.startswith("screenshots skipped") and "chromium" in note
    assert list(tmp_path.iterdir()) == []


def test_screenshots_are_drawn_again_when_the_web_app_changes(monkeypatch, tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    (static / "app.js").write_text("x")
    monkeypatch.setattr(screenshots, "SOURCES", (static,))
    out = tmp_path / "shots"
    assert not screenshots.fresh(out)
    out.mkdir()
    for name in screenshots.SHOTS:
        (out / name).write_bytes(b"png")
    assert screenshots.fresh(out)
    later = (out / next(iter(screenshots.SHOTS))).stat().st_mtime + 10
    os.utime(static / "app.js", (later, later))
    assert not screenshots.fresh(out)


def test_the_readme_states_measured_figures_only_in_its_generated_table():
    """One place per figure: a measured figure in README.md is read from a result file by
    `python -m docs.gen` (the results block), never typed beside it (config comments: test_docs_gen)."""
    from tests.test_docs_gen import FIGURE_IN_COMMENT

    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(results.README_START), readme.index(results.README_END)
    typed = readme[:start] + readme[end:]
    found = [line for line in typed.splitlines() if FIGURE_IN_COMMENT.search(line)]
    assert not found, f"README.md states these figures outside its generated table: {found}"
    assert FIGURE_IN_COMMENT.search(readme[start:end]), "the generated table holds the figures"


def test_the_web_app_page_shows_the_screenshots_docs_gen_draws():
    page = (ROOT / "docs" / "getting-started" / "web-app.md").read_text()
    assert pictures(page) == [f"screenshots/{n}" for n in screenshots.SHOTS]


def test_the_config_reference_opens_with_the_learning_rate(tmp_path):
    """A newcomer looking for the learning rate finds it in the first table of the reference, with
    the comment of the YAML that sets it; a COMMON key that moved fails the generator."""
    from docs.gen import configs

    page = configs.config_groups_page(ROOT / "conf")
    top = page[:page.index("## Every group")]
    (lr,) = [line for line in top.splitlines() if line.startswith("| `model.optimizer.lr` |")]
    assert "learning rate" in lr and "(#modeldefault)" in lr
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "default.yaml").write_text("optimizer:\n  rate: 1.0e-3\n")
    with pytest.raises(ValueError, match="has no key optimizer.lr"):
        configs.common_table(tmp_path)


def test_a_results_page_lists_its_notes_at_build_time_so_a_new_note_changes_no_tracked_page(pages):
    notes = [("2026-12-01-face-fer2013.md", "FER2013 crops"), ("2026-12-02-meld-x.md", "MELD x")]
    page = f"## Studies\n\n{studies_marker(['fer2013', 'face'])}\n"
    assert expand_studies(page, notes) == "## Studies\n\n- [FER2013 crops](log/2026-12-01-face-fer2013.md)\n"
    assert studies_marker(["fer2013"]) in pages["fer2013.md"] and "2026-12" not in pages["fer2013.md"].split(
        "## Studies behind these results")[1]
