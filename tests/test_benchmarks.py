"""benchmarks/ is a package run from the repository root (``python -m benchmarks.<name>``)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if p.name != "__init__.py")


def test_benchmarks_are_a_package_without_path_edits():
    """No script edits ``sys.path`` or imports a sibling by its bare name (which works only
    when run as ``python benchmarks/x.py``)."""
    assert (BENCH / "__init__.py").is_file()
    siblings = {p.stem for p in SCRIPTS}
    for path in SCRIPTS:
        text = path.read_text()
        assert "sys.path" not in text, f"{path.name}: edits sys.path; import benchmarks.<name> instead"
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module not in siblings, f"{path.name}: `from {node.module} import`; use benchmarks.{node.module}"
            if isinstance(node, ast.Import):
                assert not {a.name for a in node.names} & siblings, path.name


def test_no_command_runs_a_benchmark_by_its_file_path():
    """README, RESULTS.md, the Makefile and the scripts' own usage lines say ``python -m
    benchmarks.<name>``, never ``python benchmarks/<name>.py``."""
    for path in [ROOT / "README.md", ROOT / "experiments" / "RESULTS.md", ROOT / "Makefile", *SCRIPTS]:
        assert "python benchmarks/" not in path.read_text(), path


def test_a_benchmark_runs_as_a_module_from_the_root():
    r = subprocess.run([sys.executable, "-m", "benchmarks.ensemble_pairs", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "--set" in r.stdout, r.stderr
