"""Every option of every config group composes and builds."""
from pathlib import Path

import pytest
from hydra.utils import instantiate

from emomm.runs.training import build_module
from emomm.utils.runtime import instantiate_dict

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_every_group_has_options():
    for group in ["data", "modality", "model", "fusion", "trainer", "logger", "callbacks",
                  "experiment", "hparams_search", "debug", "paths"]:
        assert options(group), f"conf/{group}/ is empty"


@pytest.mark.parametrize("group", ["trainer", "logger", "callbacks", "debug", "hparams_search"])
def test_group_options_compose(cfg_factory, group):
    for opt in options(group):
        cfg = cfg_factory([f"{group}={opt}"], subdir=f"{group}-{opt}")
        assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
        if group == "callbacks":
            instantiate_dict(cfg.callbacks)
        if group == "logger":
            names = {type(lg).__name__ for lg in instantiate_dict(cfg.logger)}
            assert "CSVLogger" in names  # the CSV log is always kept


@pytest.mark.parametrize("encoder", options("model/face_encoder"))
def test_face_encoders_build(cfg_factory, encoder):
    cfg = cfg_factory([f"model/face_encoder={encoder}", "data.n_train=7", "data.n_val=7", "data.n_test=7"])
    dm = instantiate(cfg.data)
    module = build_module(cfg, dm)
    assert module.label_names == dm.label_names
    assert module.hparams.encoders["face"]["in_chans"] == cfg.face.in_chans


@pytest.mark.parametrize("fusion", options("fusion"))
def test_fusion_options_compose(cfg_factory, fusion):
    cfg = cfg_factory([f"fusion={fusion}"])
    assert cfg.model.fusion._target_.startswith("emomm.models.fusion.")


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_compose(cfg_factory, experiment):
    cfg = cfg_factory([f"experiment={experiment}"])
    assert cfg.data._target_ and cfg.model.encoders


def test_eval_config_composes(cfg_factory):
    cfg = cfg_factory(["ckpt_path=x.ckpt"], config_name="eval")
    assert cfg.ckpt_path == "x.ckpt" and cfg.get("data") is None
    cfg = cfg_factory(["ckpt_path=x.ckpt", "data=fer2013"], config_name="eval", subdir="e2")
    assert cfg.data._target_.endswith("Fer2013DataModule")


def test_wrong_config_value_is_a_clear_error(cfg_factory):
    from hydra.errors import ConfigCompositionException
    with pytest.raises(ConfigCompositionException, match="nope"):
        cfg_factory(["data=nope"])


def test_step_time_variants_compose(cfg_factory):
    """Every variant of the text step-time benchmark composes with its recipe, with the encoder
    it is named for (the ablation variants: tests/test_benchmarks.py)."""
    variants = _bench_module("step_time").TEXT_VARIANTS
    for name in variants:
        cfg = cfg_factory(["experiment=meld_text", *variants[name][0]], subdir=f"text_step-{name}")
        hub = cfg.model.encoders.text.model_name_or_path.name
        assert hub.endswith("all-mpnet-base-v2" if name.startswith("mpnet") else "all-MiniLM-L6-v2"), name


def _bench_module(script: str):
    """``benchmarks.<script>``: the benchmarks are a package run from the repository root."""
    import importlib
    return importlib.import_module(f"benchmarks.{script}")


def test_ablation_invocations_write_their_result_one_at_a_time(tmp_path):
    """Two ravdess_ablation invocations finishing together read and write the result file one
    after the other (each keeps the other's runs): the second waits for the lock."""
    import fcntl
    locked = _bench_module("ravdess_ablation").locked
    lock = tmp_path / "sub" / "ablation.lock"
    with locked(lock):
        with open(lock) as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(lock) as other:   # released after the block
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_meld_budget_counts_the_idle_rerun_of_a_run():
    """A run timed at one thread beside another job fits the 30-min budget when its idle
    two-thread re-run does (meld_text.json's `met` read the loaded time alone before)."""
    budget_time = _bench_module("meld_text").budget_time
    assert budget_time({"train_time_s": 2604.8}) == 2604.8
    assert budget_time({"train_time_s": 2604.8, "idle_two_threads": {"train_time_s": 1107.4}}) == 1107.4


def test_ravdess_ablation_keeps_the_recorded_note(tmp_path):
    mod = _bench_module("ravdess_ablation")
    path = tmp_path / "r.json"
    assert mod.recorded_field(path, "note") is None
    path.write_text('{"note": "ema ran on Zen 4; mixup beside a MELD run", "multi_window_rescore": {"n": 8}}')
    assert mod.recorded_field(path, "note") == "ema ran on Zen 4; mixup beside a MELD run"
    assert mod.recorded_field(path, "multi_window_rescore") == {"n": 8}
