"""The package's house rules: its layers (the import-linter contracts in pyproject.toml) hold,
and no .py file name repeats inside emomm/."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "emomm"
#: Names every package may have.
SHARED_NAMES = {"__init__.py", "__main__.py"}


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the package under ``root`` with ``root/pyproject.toml``'s contracts
    (no cache: nothing is written into the checkout)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                           "sys.exit(lint_imports_command())", "--no-cache", "--no-logo", "pyproject.toml"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


def repeated_names(package: Path) -> dict[str, list[str]]:
    """``{file name: [paths]}`` of the .py names found more than once under ``package``."""
    where: dict[str, list[str]] = defaultdict(list)
    for path in sorted(package.rglob("*.py")):
        if path.name not in SHARED_NAMES:
            where[path.name].append(str(path.relative_to(package.parent)))
    return {name: paths for name, paths in where.items() if len(paths) > 1}


def test_the_layers_hold():
    """Entry points > runs > serve | live > inference > analysis | callbacks | sweep > models >
    data > faces > media > utils | labels, imports pointing down only, no circle in any package."""
    r = lint_imports(ROOT)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout, r.stdout[-6000:]


def test_the_contracts_catch_an_upward_import_hidden_in_a_function(tmp_path):
    """The contracts are not vacuous: a copy of the package with a utils module that imports an
    entry point (inside a function, as a circle dodger would) and one circle between two
    inference modules breaks them, each named."""
    shutil.copytree(PACKAGE, tmp_path / "emomm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "emomm" / "utils" / "planted.py").write_text("def f():\n    from emomm.train import main\n    return main\n")
    (tmp_path / "emomm" / "inference" / "planted_a.py").write_text("from emomm.inference import planted_b\n")
    (tmp_path / "emomm" / "inference" / "planted_b.py").write_text("from emomm.inference import planted_a\n")
    r = lint_imports(tmp_path)
    assert r.returncode != 0
    assert "emomm.utils.planted -> emomm.train" in r.stdout, r.stdout[-6000:]
    assert "No cycles are allowed in emomm.inference" in r.stdout, r.stdout[-6000:]


def test_no_file_name_repeats_in_the_package():
    """A name says what a file is, once: ``voice.py`` in three packages said three things."""
    assert repeated_names(PACKAGE) == {}


def test_repeated_names_finds_a_repeat(tmp_path):
    (tmp_path / "pkg" / "a").mkdir(parents=True)
    (tmp_path / "pkg" / "b").mkdir()
    for rel in ("a/__init__.py", "b/__init__.py", "a/voice.py", "b/voice.py", "b/text.py", "__main__.py", "a/__main__.py"):
        (tmp_path / "pkg" / rel).write_text("")
    assert repeated_names(tmp_path / "pkg") == {"voice.py": ["pkg/a/voice.py", "pkg/b/voice.py"]}
