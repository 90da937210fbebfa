"""mkdocs hooks (mkdocs.yml `hooks:`): the pictures, the links to the experiment notes, and a build
that fails when a page would load anything from the network. The rules: docs/gen/site.py."""
from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # mkdocs loads this file by its path

from docs.gen.site import (expand_pictures, expand_studies, external_refs_in_site, log_notes,  # noqa: E402
                           site_log_links)

LOG = Path(__file__).resolve().parents[2] / "experiments" / "log"


def on_page_markdown(markdown, page, config, files):
    path = page.file.src_uri
    markdown = expand_pictures(markdown, path, Path(config["docs_dir"]))
    if path.startswith("results/"):
        markdown = expand_studies(site_log_links(markdown, path), log_notes(LOG))
    return markdown


def on_post_build(config):
    found = external_refs_in_site(Path(config["site_dir"]))
    if found:
        lines = "\n".join(f"  {f}: {', '.join(refs)}" for f, refs in list(found.items())[:20])
        raise PluginError(f"{len(found)} built file(s) would load from the network (the site must work "
                          f"offline; see docs/gen/site.py):\n{lines}")
