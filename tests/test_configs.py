"""Every option of every config group composes and builds."""
from pathlib import Path

import pytest
from hydra.utils import instantiate

from emomm.train import build_module
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


def test_benchmark_variants_compose(cfg_factory):
    """Every ablation variant of the benchmarks composes with its recipe (a typo in an
    override would otherwise surface only ~30 min into a benchmark), and the RAVDESS ones
    train the auxiliary heads they are named for, no more (a dict override merges)."""
    from emomm.models.objective import aux_task_weights
    for script, experiment in (("ravdess_ablation", "ravdess_voice"), ("meld_text", "meld_text"),
                               ("fer2013_cpu", None), ("text_step", "meld_text")):
        mod = _bench_module(script)
        for name in mod.VARIANTS:
            overrides = {"ravdess_ablation": lambda: mod.variant_overrides(name),
                         "text_step": lambda: mod.VARIANTS[name][0]}.get(script, lambda: mod.VARIANTS[name])()
            if experiment is None:  # the variant names its recipe
                assert overrides[0].startswith("experiment="), (script, name)
            cfg = cfg_factory([*([f"experiment={experiment}"] if experiment else []), *overrides],
                              subdir=f"{script}-{name}")
            assert cfg.data._target_, (script, name)
            if "callbacks=ema" in overrides and script == "ravdess_ablation":  # its own horizon
                assert cfg.callbacks.ema.decay == 0.997
            if script == "fer2013_cpu":  # each variant trains the recipe it names
                assert cfg.model.encoders.face._target_.endswith(
                    "WhitenedCNN" if name == "fast" else "FaceEncoder"), name
            if script in ("meld_text", "text_step"):   # MiniLM, unless the variant is named for the encoder it swaps in
                hub = cfg.model.encoders.text.model_name_or_path.name
                assert hub.endswith("all-mpnet-base-v2" if name.startswith("mpnet") else "all-MiniLM-L6-v2"), name
            if script == "meld_text":
                assert mod.variant_run_name(name) == (name if name.startswith("mpnet") else f"minilm_{name}")
            if script == "ravdess_ablation":   # measured against the single-task recipe
                tasks = aux_task_weights(cfg.model.aux_tasks, {"sex": [], "intensity": []})
                both = {"sex", "intensity"}
                expected = {"aux_sex": {"sex"}, "aux_intensity": {"intensity"},
                            "aux_sex_intensity": both, "aux_pool_stats": both}.get(
                                name, both if name.startswith("aux_both_w") else set())
                assert set(tasks) == expected, name
                if name.startswith("aux_both_w"):   # the weight the variant is named for
                    assert set(tasks.values()) == {float(name.removeprefix("aux_both_w"))}, name


def _bench_module(script: str):
    import importlib.util
    import sys
    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        spec = importlib.util.spec_from_file_location(script, bench / f"{script}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(bench))


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
