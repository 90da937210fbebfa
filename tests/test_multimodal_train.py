"""Multimodal runs end to end: audio-visual attention, three modalities, the subset table,
unimodal initialisation, freezing and balancing."""
import csv
import json

import pytest
import torch

from emomm.models.module import EmotionModule
from emomm.runs.training import build_module, train
from hydra.utils import instantiate

FACE = ["model/face_encoder=timm", "model.encoders.face.backbone=resnet10t", "face.image_size=32"]
VIDEO = ["model.encoders.video.backbone=resnet10t", "video.image_size=32", "video.num_frames=4",
         "video.synthetic.clip_frames=6", "video.synthetic.render_size=48", "video.synthetic.face_size=32"]
SMALL = ["data.n_train=14", "data.n_val=7", "data.n_test=7", "data.batch_size=7"]


def test_video_attention_trains_on_frames_and_audio(cfg_factory, tmp_path):
    cfg = cfg_factory(["modality=video", "fusion=attention", *VIDEO, *SMALL, "debug=fast_dev_run",
                       f"video.synthetic.cache_dir={tmp_path / 'clips'}"])
    assert list(cfg.modalities) == ["video", "voice"]
    summary = train(cfg)
    assert set(summary["test_modalities"]) == {"video", "voice"}
    assert set(summary["test_subsets"]) == {"video", "voice", "video+voice"}


def test_frames_only_switch(cfg_factory, tmp_path):
    cfg = cfg_factory(["modality=video", "modalities=[video]", *VIDEO, *SMALL,
                       f"video.synthetic.cache_dir={tmp_path / 'clips'}"])
    dm = instantiate(cfg.data)
    model = build_module(cfg, dm)
    assert list(model.net.encoders) == ["video"] and not model.multimodal


@pytest.fixture(scope="module")
def three_modality_run(tmp_path_factory):
    from tests.conftest import make_cfg
    out = tmp_path_factory.mktemp("mm")
    cfg = make_cfg("train", out, ["modality=multimodal", "modalities=[face,voice,text]", "fusion=late",
                                  *FACE, *SMALL, "debug=limit", "trainer.max_epochs=1",
                                  "model.modality_dropout=0.3", "callbacks=ogm_ge"])
    return out, train(cfg)


def test_three_modalities_report_simple_and_hybrid(three_modality_run):
    out, summary = three_modality_run
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["test"]) >= {"acc", "uar"}
    assert set(m["test_modalities"]) == {"face", "voice", "text"}
    assert len(m["test_subsets"]) == 7 and "face+text+voice" in m["test_subsets"]
    assert all(v["n"] == 7 for v in m["test_subsets"].values())
    # the full subset is the fused prediction itself
    assert m["test_subsets"]["face+text+voice"]["uar"] == pytest.approx(m["test"]["uar"])
    rows = list(csv.DictReader(open(out / "subsets.csv")))
    assert {r["head"] for r in rows} == {"fused", "own"} and len(rows) == 10
    logged = open(out / "csv" / "metrics.csv").readline().split(",")
    assert {"val/face/uar", "train/ogm_face", "train/aux_loss"} <= set(logged)


def test_eval_writes_the_subset_table(three_modality_run, cfg_factory):
    from emomm.eval import evaluate
    out, summary = three_modality_run
    cfg = cfg_factory([f"ckpt_path={summary['best_ckpt']}"], config_name="eval", subdir="ev")
    result = evaluate(cfg)
    assert len(result["test_subsets"]) == 7
    assert result["metrics"]["uar"] == pytest.approx(summary["test"]["uar"])


def test_missing_encoder_is_a_clear_error(cfg_factory):
    cfg = cfg_factory(["modalities=[face,voice]", *FACE, *SMALL])
    with pytest.raises(ValueError, match="no encoder configured for \\['voice'\\]"):
        build_module(cfg, instantiate(cfg.data))


def test_init_from_loads_encoder_weights_and_head(cfg_factory, tmp_path):
    face_run = train(cfg_factory([*FACE, *SMALL, "debug=limit", "trainer.max_epochs=1", "test=false"], subdir="face"))
    ckpt = torch.load(face_run["best_ckpt"], weights_only=True)["state_dict"]
    cfg = cfg_factory(["modality=multimodal", "modalities=[face,voice]", "fusion=late", *FACE, *SMALL,
                       f"model.init_from={{face: {face_run['best_ckpt']}}}", "callbacks=freeze_encoders",
                       "callbacks.freeze_encoders.epochs={face: 1}"],
                      subdir="mm")
    model = build_module(cfg, instantiate(cfg.data))
    for k, v in model.net.encoders["face"].state_dict().items():
        assert torch.equal(v, ckpt[f"net.encoders.face.{k}"]), k
    assert torch.equal(model.net.modality_heads["face"][-1].weight, ckpt["net.head.1.weight"])
    # frozen for the first epoch: no face-encoder parameter moves
    before = {k: v.clone() for k, v in model.net.encoders["face"].state_dict().items()}
    cfg.trainer.max_epochs = 1
    cfg.trainer.limit_train_batches = 2
    cfg.trainer.limit_val_batches = 1
    cfg.test = False
    summary = train(cfg)
    trained = EmotionModule.load_from_checkpoint(summary["best_ckpt"])
    for k, v in trained.net.encoders["face"].state_dict().items():
        if v.dtype.is_floating_point:
            assert torch.equal(v, before[k]), k
    # the checkpoint reloads without the file it started from
    assert trained.hparams.init_from is None


def test_init_from_wrong_modality_names_what_it_has(cfg_factory, tmp_path):
    face_run = train(cfg_factory([*FACE, *SMALL, "debug=limit", "trainer.max_epochs=1", "test=false"], subdir="face"))
    cfg = cfg_factory(["modality=multimodal", "modalities=[face,voice]", *FACE, *SMALL,
                       f"model.init_from={{voice: {face_run['best_ckpt']}}}"], subdir="mm")
    # (Hydra wraps the model's ValueError in its InstantiationException, message intact)
    with pytest.raises(Exception, match="no voice encoder in this checkpoint \\(it has \\['face'\\]\\)"):
        build_module(cfg, instantiate(cfg.data))


def test_ensemble_of_a_face_and_a_voice_run(cfg_factory, tmp_path):
    from emomm.ensemble import ensemble
    runs = []
    for name, over in (("face", ["modality=face", *FACE]), ("voice", ["modality=voice"])):
        train(cfg_factory([*over, *SMALL, "debug=limit", "trainer.max_epochs=1", "test=false"], subdir=name))
        runs.append(str(tmp_path / name))
    for method in ("mean", "weighted", "stacking"):
        cfg = cfg_factory([f"runs=[{runs[0]},{runs[1]}]", f"method={method}"], config_name="ensemble",
                          subdir=f"ens_{method}")
        summary = ensemble(cfg)
        assert set(summary["test_models"]) == {"face", "voice"}
        assert 0.0 <= summary["test"]["uar"] <= 1.0
        out = tmp_path / f"ens_{method}"
        assert (out / "confusion_matrix.png").is_file() and (out / "metrics.json").is_file()
        assert len((out / "ensemble.csv").read_text().splitlines()) == 4
    assert summary["data_sizes"]["test"] == 7
    w = ensemble(cfg_factory([f"runs=[{runs[0]},{runs[1]}]", "method=weighted"], config_name="ensemble",
                             subdir="w"))["fitted"]["weights"]
    assert sum(w) == pytest.approx(1.0) and len(w) == 2
    with pytest.raises(FileNotFoundError, match="neither a run folder"):
        ensemble(cfg_factory([f"runs=[{runs[0]},{tmp_path / 'nope'}]"], config_name="ensemble", subdir="bad"))
