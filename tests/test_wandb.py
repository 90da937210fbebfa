"""W&B offline: a 2-job multirun with logger=wandb, read back from the offline run files."""
import json

import pytest
import os
import subprocess
import sys
from pathlib import Path

from emomm.callbacks.wandb_report import multirun_group, report_payload

ROOT = Path(__file__).resolve().parents[1]


def wandb_records(path: Path):
    """The protobuf records of an offline ``run-*.wandb`` file (a LevelDB-style log:
    7-byte file header, then 32 KiB blocks of records with a 7-byte header each)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        if kind == 0:  # block padding
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL / LAST
            rec = pb.Record()
            rec.ParseFromString(buf + chunk if kind == 4 else chunk)
            buf = b""
            yield rec
        else:               # FIRST / MIDDLE
            buf = chunk if kind == 2 else buf + chunk


def test_group_names_and_tables():
    assert multirun_group("/o/train/multiruns/2026-01-01_10-00-00", "RunMode.MULTIRUN") == "train/2026-01-01_10-00-00"
    assert multirun_group("/o/train/sweeps/voice_optuna", "RunMode.MULTIRUN") == "train/voice_optuna"
    assert multirun_group("/o/cv/2026-01-01", "RunMode.MULTIRUN") == "cv/2026-01-01"
    assert multirun_group("/o/train/multiruns/x", "RunMode.RUN") is None
    tables = report_payload({"metrics": {"recall/a": 0.5, "recall/b": 1.0}, "confmat": [[1, 1], [0, 3]],
                             "subsets": {"face+voice": {"n": 5, "uar": 0.7, "acc": 0.8}},
                             "modalities": {"face": {"n": 5, "uar": 0.6}}}, ["a", "b"])
    assert tables["test/per_class_recall"][1] == [["a", 0.5, 2], ["b", 1.0, 3]]
    assert tables["test/subsets"][1][0][:5] == ["fused", "face+voice", 5, 0.8, 0.7]
    assert tables["test/subsets"][1][1][:2] == ["own", "face"]
    assert "test/subsets" not in report_payload({"metrics": {"recall/a": 1.0}}, ["a"])


# slow: it passes alone (15 s) but once failed in a full-suite run on a loaded 2-core box, the
# offline .wandb file holding no run record when read (wandb's writer process lagging behind
# finish()); kept out of the default suite until that is understood. `make test-all` runs it.
@pytest.mark.slow
def test_multirun_with_wandb_offline_groups_runs_and_logs_tables(tmp_path):
    sweep = tmp_path / "train" / "multiruns" / "mr"
    cmd = [sys.executable, "-m", "emomm.train", "-m", "logger=wandb", "model.optimizer.lr=1e-3,2e-3",
           "tags=[test,wandb]", "model/face_encoder=timm", "model.encoders.face.backbone=resnet10t",
           "face.image_size=16", "data.n_train=14", "data.n_val=7", "data.n_test=7", "data.batch_size=7",
           "trainer.max_epochs=1", "+trainer.enable_progress_bar=false", f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline",
           "WANDB_SILENT": "true"}
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    ids = set()
    for job, lr in (("0", "0.001"), ("1", "0.002")):  # as the basic sweeper writes them
        runs = list((sweep / job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, f"job {job} must have its own W&B run: {runs}"
        records = list(wandb_records(next(runs[0].glob("run-*.wandb"))))
        run = next(x.run for x in records if x.WhichOneof("record_type") == "run")
        ids.add(run.run_id)
        assert run.run_group == "train/mr" and run.display_name == f"train-{job}"
        assert list(run.tags) == ["test", "wandb"]
        config = {i.key: json.loads(i.value_json) for x in records if x.WhichOneof("record_type") in ("run", "config")
                  for i in (x.run.config.update if x.WhichOneof("record_type") == "run" else x.config.update)}
        assert config["overrides"]["model.optimizer.lr"] == lr
        logged = {i.key or "/".join(i.nested_key): i.value_json for x in records
                  if x.WhichOneof("record_type") == "history" for i in x.history.item}
        # media are logged as nested keys: <key>/_type, <key>/path, ...
        assert json.loads(logged["test/per_class_recall/_type"]) == "table-file"
        assert (json.loads(logged["test/per_class_recall/nrows"]), json.loads(logged["test/per_class_recall/ncols"])) \
            == (7, 3)
        assert json.loads(logged["test/confusion_matrix/_type"]) == "image-file"
        assert (runs[0] / "files" / json.loads(logged["test/confusion_matrix/path"])).is_file()
        table = json.loads((runs[0] / "files" / json.loads(logged["test/per_class_recall/path"])).read_text())
        assert table["columns"] == ["class", "recall", "support"]
        assert [row[0] for row in table["data"]] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
        assert sum(row[2] for row in table["data"]) == 7
    assert len(ids) == 2
