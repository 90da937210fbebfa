"""Recipes (conf/experiment/*.yaml) are defined by epochs and steps, not by a deadline."""
from pathlib import Path

import pytest

from tests.conftest import CONF_DIR

EXPERIMENTS = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))
def test_every_face_and_fusion_recipe_is_listed():
    assert {"fer2013_cpu", "fer2013_gpu", "fusion_paired", "fusion_synthetic", "demo"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_recipe_has_no_deadline(cfg_factory, experiment):
    """No recipe anneals by wall clock or stops by it: a `trainer.max_time` "guard" that a
    slower CPU reaches (MELD's 50 min, by 1-thread runs on Zen 3) gives another model there."""
    cfg = cfg_factory([f"experiment={experiment}"])
    sched = (cfg.model.get("scheduler") or {}).get("scheduler") or {}
    assert sched.get("time_budget_s") is None, f"{experiment} anneals by a deadline"
    assert cfg.trainer.get("max_time") is None, f"{experiment} stops at trainer.max_time={cfg.trainer.max_time}"
    assert cfg.trainer.max_epochs > 0


def test_fer2013_recipe_trains_on_40px_crops_by_epochs(cfg_factory):
    cfg = cfg_factory(["experiment=fer2013_cpu"])
    assert (cfg.face.image_size, cfg.face.crop_size, cfg.data.crop_size) == (48, 40, 40)
    assert cfg.data.augment.crop_scale is None and cfg.data.augment.erasing > 0 and cfg.data.augment.hflip > 0
    assert cfg.model.label_smoothing == 0.1 and cfg.model.scheduler.scheduler.warmup_epochs == 1
    assert cfg.model.scheduler.scheduler.steps_per_epoch == "auto"
    assert cfg.trainer.max_epochs == 31
    gpu = cfg_factory(["experiment=fer2013_gpu"], subdir="gpu")
    assert gpu.face.crop_size == 40 and gpu.model.scheduler.scheduler.time_budget_s is None


def test_ema_switch_composes(cfg_factory):
    cfg = cfg_factory(["experiment=fer2013_cpu", "callbacks=ema", "callbacks.ema.decay=0.998"])
    assert cfg.callbacks.ema._target_ == "emomm.callbacks.ema.EMA" and cfg.callbacks.ema.decay == 0.998
    assert cfg.callbacks.early_stopping is None and "model_checkpoint" in cfg.callbacks


def _data_paths(cfg) -> dict[str, str]:
    """The data config's path keys (``root``, ``fer_root``, ``path`` ...), resolved."""
    return {k: str(v) for k, v in cfg.data.items() if k == "path" or k.endswith("root")}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_recipe_reads_its_data_under_data_dir(cfg_factory, monkeypatch, tmp_path, experiment):
    """Every recipe's data lives under ``paths.data_dir``, which ``EMOMM_DATA_DIR`` sets; by
    default data/ in the working directory (never a path out of the repo in a recipe)."""
    text = (Path(CONF_DIR) / "experiment" / f"{experiment}.yaml").read_text()
    assert "../" not in text, f"{experiment}.yaml: a relative path; use ${{paths.data_dir}}/<name>"
    monkeypatch.setenv("EMOMM_DATA_DIR", str(tmp_path / "elsewhere"))
    cfg = cfg_factory([f"experiment={experiment}"], subdir="env")
    assert cfg.paths.data_dir == str(tmp_path / "elsewhere")
    for key, path in _data_paths(cfg).items():
        if experiment != "demo" and not cfg.data._target_.endswith("SyntheticDataModule"):
            assert path.startswith(str(tmp_path / "elsewhere") + "/"), (experiment, key, path)
    monkeypatch.delenv("EMOMM_DATA_DIR")
    cfg = cfg_factory([f"experiment={experiment}"], subdir="default")
    assert cfg.paths.data_dir == str(Path(CONF_DIR).parent / "data")
