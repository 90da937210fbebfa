"""What the mkdocs hooks (docs/gen/hooks.py) do to the pages and the built site, as pure functions.

- Pictures: the screenshots and plots are drawn at build time into docs/generated/ (git-ignored:
  media are not tracked). A page names one with a marker that GitHub shows as nothing,
  `<!-- picture: plots/fer2013-1.png | alt text -->`; the site shows the image when the file was
  drawn and nothing otherwise (no placeholder, no broken link).
- Links to the experiment notes: the results pages (tracked, so README.md's links work on GitHub)
  link the notes where the repository keeps them, `../../experiments/log/`; the site has its copy
  under results/log/ (written by `python -m docs.gen`). A page's list of the notes on its task is
  a marker, `<!-- studies: fer2013 face -->`, filled in at build time from experiments/log/ (the
  notes whose file names hold one of the words): a new note changes no tracked page.
- Offline: a built page may load nothing from another host (a script, a style sheet, a font, an
  image, a frame); links a reader follows (`<a href>`) are fine.
"""
from __future__ import annotations

import posixpath
import re
from pathlib import Path

GENERATED = "generated"          # docs/generated/: the pictures drawn by `python -m docs.gen`
#: What `python -m docs.gen` writes that git does not track (.gitignore): a page a reader meets on
#: GitHub or in a fresh clone (README.md, the results pages) may not link into these.
UNTRACKED = ("site/", "docs/reference/", "docs/results/log/", f"docs/{GENERATED}/")
PICTURE = re.compile(r"<!--\s*picture:\s*(?P<path>[^|>]+?)\s*\|\s*(?P<alt>[^>]*?)\s*-->")
LOG_IN_REPO = "../../experiments/log/"


STUDIES = re.compile(r"<!--\s*studies:\s*(?P<words>[^>]*?)\s*-->")


def log_title(path: Path) -> str:
    """A note's first `# ` heading (else its file name)."""
    for line in path.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


def log_notes(log_dir: Path) -> list[tuple[str, str]]:
    """(file name, title) of each dated note in experiments/log/, in date order."""
    return [(p.name, log_title(p)) for p in sorted(log_dir.glob("*.md")) if p.name != "index.md"]


def studies_marker(words: list[str]) -> str:
    """The marker a results page carries for the list of notes whose file names hold one of `words`."""
    return f"<!-- studies: {' '.join(words)} -->"


def expand_studies(markdown: str, notes: list[tuple[str, str]]) -> str:
    """Each studies marker replaced by the list of its notes, linked as the site keeps them (log/)."""
    def listing(m: re.Match) -> str:
        words = m["words"].split()
        return "\n".join(f"- [{t}](log/{f})" for f, t in notes if any(w in f for w in words))
    return STUDIES.sub(listing, markdown)


def picture_marker(path: str, alt: str) -> str:
    """The marker a page carries for the picture docs/generated/`path` (a `>` in `alt`, as in
    "recall >= 40 px", would end the marker: written as `&gt;`)."""
    return f"<!-- picture: {path} | {alt.replace('>', '&gt;')} -->"


def expand_pictures(markdown: str, page_path: str, docs_dir: Path) -> str:
    """`markdown` (the page docs/`page_path`) with each picture marker replaced by the image when
    docs/generated/<path> exists, and by nothing when it does not."""
    def image(m: re.Match) -> str:
        rel = f"{GENERATED}/{m['path']}"
        if not (docs_dir / rel).is_file():
            return ""
        src = posixpath.relpath(rel, posixpath.dirname(page_path) or ".")
        return f"![{m['alt']}]({src})"
    return PICTURE.sub(image, markdown)


def pictures(markdown: str) -> list[str]:
    """The docs/generated/ paths a page's markers name."""
    return [m["path"] for m in PICTURE.finditer(markdown)]


def site_log_links(markdown: str, page_path: str) -> str:
    """A results page's links to experiments/log/ pointed at the site's copy (results/log/)."""
    if not page_path.startswith("results/") or page_path.startswith("results/log/"):
        return markdown
    return (markdown.replace(f"]({LOG_IN_REPO})", "](log/index.md)")
            .replace(f"]({LOG_IN_REPO}", "](log/"))


_LINK_TARGET = re.compile(r"\]\(([^)\s]+)\)")


def dead_links(markdown: str, page: Path, root: Path) -> list[str]:
    """The relative links of `page` (a file under `root`) that a fresh clone cannot follow: the
    target is missing or is written by `python -m docs.gen` into an untracked folder."""
    dead = []
    for target in _LINK_TARGET.findall(markdown):
        path = target.split("#")[0]
        if not path or re.match(r"[a-z]+:", path):
            continue
        resolved = (page.parent / path).resolve()
        rel = resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else str(resolved)
        if not resolved.exists() or any((rel + "/").startswith(u) for u in UNTRACKED):
            dead.append(target)
    return dead


# -- nothing from the network ---------------------------------------------------------------------
EXTERNAL = r"""(?:https?:)?//[^"'\s>]+"""
_SRC = re.compile(rf"""\b(?:src|srcset|data-src|poster)\s*=\s*["']?({EXTERNAL})""", re.I)
_LINK = re.compile(r"<link\b[^>]*>", re.I)
_HREF = re.compile(rf"""\bhref\s*=\s*["']?({EXTERNAL})""", re.I)
_REL = re.compile(r"""\brel\s*=\s*["']?([^"'>]+)""", re.I)
#: The `<link rel>` kinds a browser fetches (a canonical or alternate link is only an address).
LOADING_RELS = {"stylesheet", "preload", "prefetch", "preconnect", "dns-prefetch", "modulepreload",
                "icon", "shortcut", "apple-touch-icon", "manifest", "import"}
_CSS_URL = re.compile(rf"""(?:@import\s+|url\(\s*)["']?({EXTERNAL})""", re.I)
#: Material fetches mermaid from unpkg.com when a page has a diagram: none may have one.
_MERMAID = re.compile(r"""class\s*=\s*["'][^"']*\bmermaid\b""", re.I)


def external_refs(html: str) -> list[str]:
    """What a page would load from another host: external `src`s (scripts, images, frames), `<link>`
    hrefs that load (style sheets, fonts, preconnects, icons; not a canonical address), CSS
    `@import`/`url()`, and mermaid diagrams."""
    found = _SRC.findall(html) + _CSS_URL.findall(html)
    for tag in _LINK.findall(html):
        rel = _REL.search(tag)
        if rel is None or LOADING_RELS & set(rel[1].lower().split()):
            found += _HREF.findall(tag)
    if _MERMAID.search(html):
        found.append("mermaid (loaded from unpkg.com)")
    return found


def external_refs_in_site(site: Path) -> dict[str, list[str]]:
    """{file: its external references} over the built site's HTML and CSS (empty when offline)."""
    out = {}
    for p in sorted(site.rglob("*")):
        if p.suffix in (".html", ".css") and p.is_file():
            refs = external_refs(p.read_text(errors="replace"))
            if refs:
                out[str(p.relative_to(site))] = sorted(set(refs))
    return out
