"""The configuration reference, read from conf/ so it cannot drift from the code.

Every config group (a folder of conf/) and option (one YAML in it) with the first comment of its
YAML, and every key of every option and entry-point config (conf/<entry>.yaml) with its default
and its comment. YAML comments are read line by line (the configs are plain block YAML), so the
reference carries exactly what a reader of conf/ sees.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The entry points a user runs, each with the conf/<name>.yaml it composes (python -m emomm.<module>).
ENTRY_POINTS = {
    "train": "train", "eval": "eval", "predict": "predict", "export": "export",
    "validate": "validate", "prepare": "prepare", "cv": "cv", "compare": "compare",
    "ensemble": "ensemble", "personalize": "personalize", "live": "live", "serve": "serve",
}

_KEY = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z0-9_@./${}-]+):(?:\s+(?P<value>.*?))?\s*$")


@dataclass
class Key:
    """One key of a YAML file: `path` dotted from the top, its `default` as written, its `comment`."""
    path: str
    default: str
    comment: str


def _split_comment(line: str) -> tuple[str, str]:
    """`value  # comment` -> (value, comment); a '#' inside quotes or right after a non-space is not one."""
    quote = None
    for i, ch in enumerate(line):
        if ch in "'\"" and quote in (None, ch):
            quote = None if quote else ch
        elif ch == "#" and quote is None and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def comments(text: str) -> list[tuple[int, str]]:
    """Every comment of a YAML as (line number from 1, its text after the '#'), header and inline alike."""
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        _, comment = _split_comment(raw)
        if comment:
            out.append((n, comment))
    return out


def first_comment(text: str) -> str:
    """The YAML's first comment block, joined into one paragraph (`# @package` lines skipped)."""
    lines = []
    for raw in text.splitlines():
        s = raw.strip()
        if s.startswith("# @package"):
            continue
        if not s.startswith("#"):
            if lines or s:
                break
            continue
        lines.append(s[1:].strip())
    return " ".join(line for line in lines if line)


def yaml_keys(text: str) -> list[Key]:
    """Every mapping key of a block YAML with its dotted path, default and comment.

    A key's comment is its inline comment, continued by comment-only lines indented under it,
    or else the comment lines just above it. `defaults` lists and list items are skipped.
    """
    keys: list[Key] = []
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    last: Key | None = None
    last_indent = -1
    in_header = True
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped:
            pending, last = [], None
            continue
        if stripped.startswith("#"):
            body = stripped[1:].strip()
            if in_header or body.startswith("@package"):
                continue
            indent = len(raw) - len(raw.lstrip())
            if last is not None and last.comment and indent > last_indent:
                last.comment += " " + body
            else:
                pending.append(body)
                last = None
            continue
        in_header = False
        if stripped.startswith("- "):
            pending, last = [], None
            continue
        m = _KEY.match(raw)
        if not m:
            pending, last = [], None
            continue
        indent = len(m.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = m.group("key")
        stack.append((indent, key))
        value, comment = _split_comment(m.group("value") or "")
        path = ".".join(k for _, k in stack)
        if path == "defaults" or path.startswith("defaults."):
            pending, last = [], None
            continue
        comment = comment or " ".join(pending)
        pending = []
        last = Key(path, value, comment)
        last_indent = indent
        keys.append(last)
    return keys


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") if text else ""


def keys_table(keys: list[Key]) -> list[str]:
    """A markdown table of keys; a key without a value (a mapping) shows its children below it."""
    if not keys:
        return ["(no keys of its own: it only selects other configs)", ""]
    out = ["| key | default | comment |", "|---|---|---|"]
    for k in keys:
        default = f"`{_cell(k.default)}`" if k.default else ""
        out.append(f"| `{k.path}` | {default} | {_cell(k.comment)} |")
    return out + [""]


def groups(conf: Path) -> dict[str, list[Path]]:
    """Config group (folder of conf/, relative, '/'-joined) -> its option files, sorted."""
    found: dict[str, list[Path]] = {}
    for path in sorted(conf.rglob("*.yaml")):
        rel = path.relative_to(conf)
        if len(rel.parts) == 1:
            continue  # an entry-point config
        found.setdefault("/".join(rel.parts[:-1]), []).append(path)
    return found


def anchor(text: str) -> str:
    """The anchor mkdocs' toc gives a heading (lowercase, punctuation dropped, spaces to '-')."""
    return re.sub(r"[\s]+", "-", re.sub(r"[^\w\s-]", "", text.lower())).strip("-")


#: The options a newcomer sets first: (the override, the YAML under conf/ holding its default, the
#: key in it). Default and comment are read from that YAML; a key that moved fails the generator.
COMMON = [
    ("model.optimizer.lr", "model/default.yaml", "optimizer.lr"),
    ("model.optimizer.weight_decay", "model/default.yaml", "optimizer.weight_decay"),
    ("trainer.max_epochs", "trainer/default.yaml", "max_epochs"),
    ("trainer.precision", "trainer/default.yaml", "precision"),
    ("seed", "train.yaml", "seed"),
    ("paths.data_dir", "paths/default.yaml", "data_dir"),
]


def common_table(conf: Path) -> list[str]:
    """The table of COMMON, each row linked to the section that lists its YAML."""
    out = ["| option | default | what it is | in |", "|---|---|---|---|"]
    for override, rel, path in COMMON:
        key = next((k for k in yaml_keys((conf / rel).read_text()) if k.path == path), None)
        if key is None:
            raise ValueError(f"docs/gen/configs.py COMMON: conf/{rel} has no key {path}; point the entry "
                             "at the YAML that sets it now")
        where = rel[:-len(".yaml")]
        link = (f"[`{where}`](#{anchor(where)})" if "/" in where else
                f"[`emomm.{where}`](entry-points.md#{anchor('emomm.' + where)})")
        out.append(f"| `{override}` | `{_cell(key.default)}` | {_cell(key.comment)} | {link} |")
    return out + [""]


def config_groups_page(conf: Path) -> str:
    found = groups(conf)
    out = [
        "# Config groups",
        "",
        "Generated from `conf/` by `python -m docs.gen`: every config group (a folder), every option",
        "(a YAML in it: pick it with `group=option` on the command line) with the first comment of",
        "its YAML, and every key it sets with its default and comment (set one with",
        "`group.key=value`, e.g. `model.optimizer.lr=3e-4`). The entry points' own options are in",
        "[Entry points](entry-points.md).",
        "",
        "## Most often set",
        "",
        *common_table(conf),
        "## Every group",
        "",
        "| group | options |",
        "|---|---|",
    ]
    for group, files in found.items():
        opts = ", ".join(f"[`{p.stem}`](#{anchor(group + '/' + p.stem)})" for p in files)
        out.append(f"| [`{group}`](#{anchor(group)}) | {opts} |")
    out.append("")
    for group, files in found.items():
        out += [f"## {group}", "", "| option | what it is |", "|---|---|"]
        for p in files:
            out.append(f"| [`{p.stem}`](#{anchor(group + '/' + p.stem)}) | "
                       f"{_cell(first_comment(p.read_text()))} |")
        out.append("")
        for p in files:
            text = p.read_text()
            out += [f"### {group}/{p.stem}", "", f"`conf/{group}/{p.name}`", ""]
            comment = first_comment(text)
            if comment:
                out += [comment, ""]
            out += keys_table(yaml_keys(text))
    return "\n".join(out) + "\n"


def entry_points_page(conf: Path) -> str:
    out = [
        "# Entry points",
        "",
        "Generated from `conf/<entry point>.yaml` by `python -m docs.gen`. Every entry point is",
        "`python -m emomm.<name> key=value ...`; `--cfg job` prints the composed config without",
        "running, `--help` lists its config groups. The groups a `defaults` list pulls in are in",
        "[Config groups](config-groups.md).",
        "",
        "| entry point | what it does |",
        "|---|---|",
    ]
    for name, cfg in ENTRY_POINTS.items():
        out.append(f"| [`python -m emomm.{name}`](#{anchor('emomm.' + name)}) | "
                   f"{_cell(first_comment((conf / f'{cfg}.yaml').read_text()))} |")
    out.append("")
    for name, cfg in ENTRY_POINTS.items():
        text = (conf / f"{cfg}.yaml").read_text()
        out += [f"## emomm.{name}", "", f"`conf/{cfg}.yaml`", "", first_comment(text), ""]
        out += keys_table(yaml_keys(text))
    return "\n".join(out) + "\n"
