"""benchmarks/ is a package run from the repository root (``python -m benchmarks.<name>``)."""
from __future__ import annotations

import ast
import functools
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_benchmarks_read_data_under_the_data_dir(tmp_path):
    """A benchmark's default dataset path is under ``paths.data_dir`` (``EMOMM_DATA_DIR``, else
    data/ in the checkout), as the recipes': never a path out of the repository."""
    for path in SCRIPTS:
        text = path.read_text()
        assert '"shared" / "data"' not in text and "../shared" not in text, f"{path.name}: use benchmarks.common.DATA_DIR"
    code = "from benchmarks.common import DATA_DIR, ROOT; print(DATA_DIR); print(ROOT / 'data')"
    env = {k: v for k, v in os.environ.items() if k != "EMOMM_DATA_DIR"}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    default, expected = r.stdout.split()
    assert default == expected, r.stderr
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                       env={**env, "EMOMM_DATA_DIR": str(tmp_path)})
    assert r.stdout.split()[0] == str(tmp_path), r.stderr


def test_a_benchmark_runs_as_a_module_from_the_root():
    r = subprocess.run([sys.executable, "-m", "benchmarks.ravdess_pair", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "--seeds" in r.stdout, r.stderr


# -- ablations as config groups: conf/ablation/<task>/<variant>.yaml ---------------------------
ABLATION_DIR = ROOT / "conf" / "ablation"
RECIPE = {"meld": "meld_text", "ravdess": "ravdess_voice", "fer2013": "fer2013_cpu", "fusion": "fusion_synthetic",
          "paired": "fusion_paired"}
ABLATIONS = sorted((p.parent.name, p.stem) for p in ABLATION_DIR.glob("*/*.yaml"))


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _flat_config(cfg) -> dict:
    """``cfg`` without its hydra node, as ``{"a.b.c": value}`` (unresolved)."""
    from omegaconf import OmegaConf
    return _flat({k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items() if k != "hydra"})


@functools.lru_cache(maxsize=None)
def _recipe(task: str, out: str) -> dict:
    from tests.conftest import make_cfg
    return _flat_config(make_cfg("train", Path(out), [f"experiment={RECIPE[task]}"]))


def test_every_task_has_its_ablations():
    assert {t for t, _ in ABLATIONS} == set(RECIPE)
    assert len([v for t, v in ABLATIONS if t == "meld"]) == 29   # meld_text.py's 27 variants + future1/2
    assert {"baseline", "ema", "aux_sex_intensity"} <= {v for t, v in ABLATIONS if t == "ravdess"}


@pytest.mark.parametrize("task,variant", ABLATIONS)
def test_ablation_composes_and_changes_its_recipe(tmp_path_factory, task, variant):
    """Each ablation composes on its recipe (a stale key would otherwise surface ~30 min into a
    run), changes it, and does what it is named for."""
    from emomm.models.objective import aux_task_weights
    from tests.conftest import make_cfg
    text = (ABLATION_DIR / task / f"{variant}.yaml").read_text()
    assert text.startswith("# @package _global_\n"), f"{task}/{variant}.yaml: its first line must be # @package _global_"
    assert f"+ablation={task}/{variant}" in text, f"{task}/{variant}.yaml: name its command in the header"
    recipe = _recipe(task, str(tmp_path_factory.getbasetemp() / "recipe"))
    cfg = make_cfg("train", tmp_path_factory.getbasetemp() / "recipe", [f"experiment={RECIPE[task]}",
                                                                       f"+ablation={task}/{variant}"])
    changed = {k for k, v in _flat_config(cfg).items() if recipe.get(k, "missing") != v}
    # ravdess/aux_sex_intensity is the recipe as it is now (the techniques' reference is baseline)
    assert bool(changed) != ((task, variant) == ("ravdess", "aux_sex_intensity")), (task, variant, changed)
    if "ema" in variant.split("_") or variant == "ema":
        assert cfg.callbacks.ema._target_.endswith("EMA"), variant
        assert cfg.callbacks.ema.decay == {"meld": 0.995, "ravdess": 0.997, "fer2013": 0.999}[task]
    if task == "meld":   # MiniLM, unless the variant is named for the encoder it swaps in
        hub = cfg.model.encoders.text.model_name_or_path.name
        assert hub.endswith("all-mpnet-base-v2" if variant.startswith("mpnet") else "all-MiniLM-L6-v2"), variant
        assert (cfg.trainer.precision == "bf16-mixed") == ("bf16" in variant), variant
    if task == "ravdess":   # measured against the single-task recipe: the heads it is named for, no more
        tasks = aux_task_weights(cfg.model.aux_tasks, {"sex": [], "intensity": []})
        both = {"sex", "intensity"}
        expected = {"aux_sex": {"sex"}, "aux_intensity": {"intensity"}, "aux_sex_intensity": both,
                    "aux_pool_stats": both}.get(variant, both if variant.startswith("aux_both_w") else set())
        assert set(tasks) == expected, variant
        if variant.startswith("aux_both_w"):   # the weight the variant is named for
            assert set(tasks.values()) == {float(variant.removeprefix("aux_both_w"))}, variant
    if task == "fer2013":
        assert cfg.model.encoders.face._target_.endswith("FaceEncoder"), variant
    if task == "paired":
        assert cfg.fusion._target_ == f"emomm.models.fusion.{variant.capitalize()}Fusion", variant
    if task == "fusion":   # single_<m>: that modality alone; <fusion>[_dropout][_3m]: what it names
        name = variant.split("_")
        if name[0] == "single":
            assert list(cfg.modalities) == [name[1]], variant
        else:
            assert cfg.fusion._target_ == f"emomm.models.fusion.{name[0].capitalize()}Fusion", variant
            assert cfg.model.modality_dropout == (0.3 if "dropout" in name else None), variant
            assert list(cfg.modalities) == (["face", "voice", "text"] if "3m" in name else ["face", "text"]), variant


#: benchmarks/fusion_synthetic.py's runs as override lists, before they became ablation configs.
def _former_fusion_plan(modalities: list[str], singles: dict[str, str]) -> dict[str, list[str]]:
    both = [f"modalities=[{','.join(modalities)}]"]
    runs = {f"single:{m}": [f"modalities=[{m}]"] for m in modalities}
    for f in ["late", "concat", "gated", "attention"]:
        runs[f] = [*both, f"fusion={f}"]
        runs[f"{f}+dropout"] = [*both, f"fusion={f}", "model.modality_dropout=0.3"]
    init = ",".join(f"{m}:{d}/checkpoints/best.ckpt" for m, d in singles.items())
    runs["late+init"] = [*both, "fusion=late", f"++model.init_from={{{init}}}", "callbacks=freeze_encoders",
                         "callbacks.freeze_encoders.epochs=2", "model.modality_dropout=0.3"]
    return runs


@pytest.mark.parametrize("modalities", [["face", "text"], ["face", "voice", "text"]])
def test_fusion_synthetic_runs_its_ablation_configs_unchanged(tmp_path_factory, modalities):
    """Each run of benchmarks.fusion_synthetic is its ``+ablation=fusion/<run>`` config, which
    composes to exactly the config its former override list gave."""
    from tests.conftest import make_cfg
    mod = importlib.import_module("benchmarks.fusion_synthetic")
    singles = {m: f"/runs/{m}" for m in modalities}
    plan = mod.plan(modalities, {f"single:{m}": {"run_dir": d} for m, d in singles.items()})
    former = _former_fusion_plan(modalities, singles)
    assert list(plan) == list(former)
    out = tmp_path_factory.getbasetemp() / "fusion"

    def composed(overrides):
        return _flat_config(make_cfg("train", out, ["experiment=fusion_synthetic", *overrides]))
    for name, overrides in plan.items():
        config = "late_dropout" if name == "late+init" else mod.variant(name)   # + init_from, freeze_epochs
        assert overrides[0] == f"+ablation=fusion/{config}" and (ABLATION_DIR / "fusion" / f"{config}.yaml").is_file()
        assert composed(overrides) == composed(former[name]), name
    if len(modalities) == 3:   # the three-modality late fusion of RESULTS.md's multirun is that run
        assert composed(["+ablation=fusion/late_dropout_3m"]) == composed(former["late+dropout"])


def test_fusion_paired_runs_its_ablation_configs_unchanged(tmp_path_factory):
    """benchmarks.fusion_paired's trained fusions are ``+ablation=paired/<fusion>``, composing to
    exactly the config of their former override lists."""
    from tests.conftest import make_cfg
    mod = importlib.import_module("benchmarks.fusion_paired")
    init = "model.init_from={face: /f/last.ckpt, voice: /v/best.ckpt}"
    former = {"late": ["fusion=late", "callbacks.freeze_encoders.epochs={face: 100, voice: 100}", "trainer.max_epochs=3"],
              "gated": ["fusion=gated", "trainer.max_epochs=6"], "attention": ["fusion=attention", "trainer.max_epochs=6"]}
    out = tmp_path_factory.getbasetemp() / "paired"

    def composed(overrides):
        return _flat_config(make_cfg("train", out, ["experiment=fusion_paired", init, *overrides]))
    assert mod.FUSIONS == list(former) and set(mod.FUSIONS) == {v for t, v in ABLATIONS if t == "paired"}
    for name in mod.FUSIONS:
        assert composed(mod.fusion_overrides(name, 6)) == composed(former[name]), name
    # without --fusion-epochs, RESULTS.md's multirun trains gated and attention 4 epochs, as measured
    assert composed(["+ablation=paired/gated"]) == composed(["fusion=gated", "trainer.max_epochs=4"])


@pytest.mark.parametrize("script,task", [("meld_text", "meld"), ("ravdess_ablation", "ravdess")])
def test_benchmarks_run_the_ablation_configs(script, task):
    """The benchmarks keep no override lists of their own: a variant is its config."""
    mod = importlib.import_module(f"benchmarks.{script}")
    assert mod.VARIANTS == sorted(v for t, v in ABLATIONS if t == task)
    assert all(mod.variant_overrides(v) == [f"+ablation={task}/{v}"] for v in mod.VARIANTS)


def test_ablation_multirun_composes_from_the_command_line():
    """The command beside each ablation table in RESULTS.md, its config printed (--cfg job)."""
    r = subprocess.run([sys.executable, "-m", "emomm.train", "experiment=meld_text", "+ablation=meld/bf16_ema",
                        "seed=2", "--cfg", "job"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "precision: bf16-mixed" in r.stdout and "decay: 0.995" in r.stdout and "seed: 2" in r.stdout


def test_none_is_the_recipe_unchanged(tmp_path_factory):
    """``+ablation=none``, the reference run of a multirun over ablations, changes nothing."""
    from tests.conftest import make_cfg
    recipe = _recipe("meld", str(tmp_path_factory.getbasetemp() / "recipe"))
    cfg = make_cfg("train", tmp_path_factory.getbasetemp() / "recipe", ["experiment=meld_text", "+ablation=none"])
    assert _flat_config(cfg) == recipe


#: Ablation configs that no table of RESULTS.md reports yet (no run of them is recorded).
UNMEASURED = {"meld/future1", "ravdess/aux_both_w1.0", "ravdess/multi_window", "ravdess/song"}


def test_results_page_gives_a_multirun_command_for_each_ablation():
    """Every ablation table of experiments/RESULTS.md is re-run by one multirun command beside it:
    each command names existing configs, and every measured config is named."""
    import re
    text = (ROOT / "experiments" / "RESULTS.md").read_text()
    named = {v for sweep in re.findall(r"\+ablation=([^\s`]+)", text) for v in sweep.split(",")}
    known = {f"{t}/{v}" for t, v in ABLATIONS} | {"none"}
    assert named <= known, sorted(named - known)
    assert known - named - {"none"} == UNMEASURED, sorted(known - named - {"none"})


def test_one_step_time_benchmark_for_every_task(tmp_path):
    """``python -m benchmarks.step_time voice`` times a step and writes its result; without a task
    it says which there are."""
    import json
    from benchmarks import step_time
    assert set(step_time.TASKS) == {"face", "voice", "text"}
    r = subprocess.run([sys.executable, "-m", "benchmarks.step_time"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0 and "face|voice|text" in r.stderr
    name = f"zz_test_step_time_{tmp_path.name}"
    try:
        step_time.main(["voice", "--rounds", "2", "--steps", "1", "--threads", "1", "--variants", "cnn_nchw_fp32",
                        "--name", name])
        res = json.loads((BENCH / "results" / f"{name}.json").read_text())
        assert len(res["variants"]["cnn_nchw_fp32"]["step_s"]) == 1 and res["rounds"] == 2   # the first step is warm-up
    finally:
        (BENCH / "results" / f"{name}.json").unlink(missing_ok=True)
