"""benchmarks/bad_inputs.py: its classification rules on synthetic outcomes, its expectation
table, its file-write detection and ASGI driver; end to end with --quick (slow)."""
from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import bad_inputs as bi

ROOT = Path(__file__).resolve().parents[1]

HYDRA_KEYERROR = """[2026-12-07 17:27:09,396][emomm][INFO] - loading
Error executing job with overrides: ['ckpt_path=/data/x/model.ckpt']
Traceback (most recent call last):
  File "/repo/emomm/eval.py", line 180, in main
    evaluate(cfg)
  File "/repo/emomm/models/module.py", line 216, in load_from_checkpoint
    hparams = load_checkpoint(checkpoint_path)["hyper_parameters"]
KeyError: 'hyper_parameters'

Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.
"""

HYDRA_NAMED = """Error executing job with overrides: ['ckpt_path=/data/x/model.ckpt']
Traceback (most recent call last):
  File "/repo/emomm/eval.py", line 180, in main
    evaluate(cfg)
emomm.utils.safe_load.UnsafeCheckpointError: /data/x/model.ckpt: refused to load: it holds objects
other than weights

Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.
"""

CHAINED = """Traceback (most recent call last):
  File "a.py", line 1, in f
KeyError: 'x'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "b.py", line 2, in g
ValueError: /data/x/model.ckpt: not a checkpoint; re-export it
"""
NEEDLES = [re.escape("/data/x/model.ckpt"), re.escape("model.ckpt")]


# -- classification -------------------------------------------------------------------------------
@pytest.mark.parametrize("expect,obs,category", [
    (bi.REFUSE, bi.Observation("result", "exit 0"), "silent_wrong"),
    (bi.REFUSE, bi.Observation("refusal", "exit 1"), "clear_error"),
    (bi.REFUSE, bi.Observation("crash", "timed out"), "crash"),
    (bi.OK, bi.Observation("result", "exit 0"), "ok"),
    (bi.OK, bi.Observation("refusal", "exit 1"), "clear_error"),
    (bi.Expect("ok", check=r"caf\u00e9"), bi.Observation("result", text='"text": "caf\ufffd"'), "silent_wrong"),
    (bi.Expect("ok", check=r"caf\u00e9"), bi.Observation("result", text='"text": "caf\u00e9"'), "ok"),
    (bi.flag(bi.NO_SPEECH), bi.Observation("result", text='{"label": "angry"}'), "silent_wrong"),
    (bi.flag(bi.NO_SPEECH), bi.Observation("result", text='{"label": null, "note": "no speech"}'), "ok"),
    (bi.flag(bi.NO_SPEECH), bi.Observation("refusal", "exit 1"), "clear_error"),
    (bi.Expect("refuse", max_read=bi.MB), bi.Observation("refusal", "HTTP 413", read=48 * bi.MB), "silent_wrong"),
    (bi.Expect("refuse", max_read=bi.MB), bi.Observation("refusal", "HTTP 413", read=256 * bi.KB), "clear_error"),
])
def test_classify(expect, obs, category):
    assert bi.classify(expect, obs)[0] == category


def test_a_good_input_refused_is_named_as_such():
    assert bi.classify(bi.OK, bi.Observation("refusal", "exit 1"))[1].startswith("refused a good input")


def test_expectations_must_be_well_formed():
    with pytest.raises(ValueError):
        bi.Expect("maybe")
    with pytest.raises(ValueError):
        bi.Expect("flag")


@pytest.mark.parametrize("rc,output,timed_out,status", [
    (1, HYDRA_KEYERROR, False, "crash"),                  # a programming error: crash even if named
    (1, HYDRA_NAMED, False, "refusal"),                   # a deliberate error naming the file
    (1, CHAINED, False, "refusal"),                       # the last exception counts
    (1, HYDRA_NAMED.replace("/data/x/model.ckpt: ", ""), False, "crash"),   # does not name the file
    (1, "model.ckpt: no hyper-parameters; re-train it\n", False, "refusal"),
    (0, "3 inputs, 0 failed\n", False, "result"),
    (None, "", True, "crash"),
    (-9, "", False, "crash"),
])
def test_observe_cli(rc, output, timed_out, status):
    assert bi.observe_cli(rc, output, timed_out, NEEDLES, 1.0).status == status


def test_message_problems():
    named = bi.observe_cli(1, HYDRA_NAMED, False, NEEDLES)
    assert bi.message_problems(named, NEEDLES) == ["traceback shown"]
    # Hydra's echo of the overrides names the file but is not the message
    vague = bi.observe_cli(1, "Error executing job with overrides: ['ckpt_path=/data/x/model.ckpt']\nbad file\n",
                           False, NEEDLES)
    assert vague.status == "refusal" and "does not name the input" in bi.message_problems(vague, NEEDLES)
    for torch_says in ("re-run with weights_only=False", "Re-running `torch.load` with `weights_only` set to `False`",
                       "Weights only load failed. This file can still be loaded, to do so you have two options"):
        advice = bi.Observation("refusal", message=f"/data/x/model.ckpt: refused ({torch_says})")
        assert "advises loading it unsafely" in bi.message_problems(advice, NEEDLES)
    leak = bi.Observation("refusal", message="upload.mp4: cannot decode /tmp/tmpab12cd34.mp4")
    assert "leaks a temporary path" in bi.message_problems(leak, [r"upload\.mp4"], remote=True)
    assert bi.message_problems(leak, [r"upload\.mp4"]) == []   # a CLI names the user's own paths


def test_final_exception():
    assert bi.final_exception(HYDRA_KEYERROR) == "KeyError: 'hyper_parameters'"
    assert bi.final_exception(HYDRA_NAMED).endswith("other than weights")
    assert bi.exception_type(bi.final_exception(HYDRA_NAMED)) == "UnsafeCheckpointError"


def test_observe_record_http_and_ws():
    crashed = bi.observe_cli(1, HYDRA_KEYERROR, False, NEEDLES)
    assert bi.observe_record(None, crashed).status == "crash"
    assert bi.observe_record(None, bi.Observation("result")).status == "crash"   # exit 0, no line
    rec = bi.observe_record({"input": "/m/silent.wav", "kind": "audio", "label": "angry"}, crashed)
    assert rec.status == "result" and "silent" not in rec.text                    # flags never read the name
    assert bi.observe_record({"input": "/m/a.jpg", "error": "a.jpg: cannot read"}, crashed).status == "refusal"

    assert bi.observe_http({"status": 500, "body": "Internal Server Error"}).status == "crash"
    assert bi.observe_http({"status": None}).status == "crash"
    assert bi.observe_http({"status": 200, "body": "{}", "exception": "Traceback...\nValueError: x"}).status == "crash"
    err = bi.observe_http({"status": 413, "body": json.dumps({"error": {"code": "too_large", "message": "cap"}}),
                           "read": 10})
    assert err.status == "refusal" and err.read == 10 and not err.problems
    assert bi.observe_http({"status": 400, "body": "<html>bad</html>"}).problems == ["not a JSON error"]
    assert bi.observe_http({"status": 200, "body": "{}"}).status == "result"

    assert bi.observe_ws({"exception": "Traceback\nValueError: cannot convert float NaN"}).status == "crash"
    forbidden = bi.observe_ws({"accepted": False, "close": 4401})
    assert forbidden.status == "refusal" and forbidden.problems == ["HTTP 403 instead of close code 4401"]
    assert bi.observe_ws({"accepted": True, "close": 4401}).status == "refusal"
    alive = {"accepted": True, "replies": [{"type": "error", "code": "bad", "message": "m"}],
             "probe": {"type": "error"}}
    assert bi.observe_ws(alive).status == "refusal"
    assert bi.observe_ws({**alive, "probe": None}).status == "crash"              # stopped answering
    assert bi.observe_ws({"accepted": True, "replies": [{"type": "frame"}], "probe": {}}).status == "crash"
    assert bi.observe_ws({"accepted": True, "replies": [{"type": "frame"}],
                          "probe": {"type": "error"}}).status == "result"


def test_snapshot_changes(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "in.txt").write_text("a")
    before = bi.snapshot([tmp_path])
    (tmp_path / "home" / "made" / "deep").mkdir(parents=True)          # an empty folder counts
    (tmp_path / "home" / ".cache" / "matplotlib").mkdir(parents=True)  # an allowed cache and its parent
    (tmp_path / "home" / ".cache" / "matplotlib" / "fontlist.json").write_text("{}")
    (tmp_path / "in.txt").write_text("changed")
    found = bi.changes(before, bi.snapshot([tmp_path]), [str(tmp_path / "home" / ".cache" / "matplotlib")])
    assert sorted(found) == sorted([f"changed {tmp_path / 'in.txt'}", f"created {tmp_path / 'home' / 'made'}",
                                    f"created {tmp_path / 'home' / 'made' / 'deep'}"])


# -- the table and the request builders -----------------------------------------------------------
def test_every_case_is_runnable(tmp_path):
    from tests.bad_inputs import (FER_VARIANTS, MELD_CSV_VARIANTS, checkpoint_corpus, gadget_configs,
                                  write_media_corpus)
    media = write_media_corpus(tmp_path / "m", huge_text_mb=0.01)
    reqs, scripts = bi.http_requests(media), bi.ws_scripts(media)
    gadgets = gadget_configs(tmp_path, tmp_path / "secret")
    for name, case in bi.CASES.items():
        assert set(case.expect) <= set(bi.ENTRY_POINTS), name
        for exp in case.expect.values():
            for rx in (exp.flag, exp.check, *exp.names):
                if rx:
                    re.compile(rx)
        if case.cls in ("media", "text"):
            assert name in media, name
            if "serve" in case.expect:
                assert name in reqs, name
        elif case.cls == "http":
            assert name in reqs, name
        elif case.cls == "websocket":
            assert name in scripts, name
        elif case.cls == "checkpoint":
            assert name == "ckpt_good" or name.startswith("ckpt_") or name in gadgets, name
        elif case.cls == "dataset":   # Bench.data_root builds it from its name
            kind, _, rest = name.partition("_")
            assert (kind == "fer" and rest in FER_VARIANTS) or name == "ravdess_unreadable_actor" \
                or (kind == "meld" and rest.removesuffix("_csv") in MELD_CSV_VARIANTS), name
    assert any(c.quick for c in bi.CASES.values())
    # every checkpoint case can be written (the gadgets aim into the canary)
    import torch
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2, 2)}, "hyper_parameters": {
        "label_names": ["a", "b"], "encoders": {"face": {"_target_": "x.Y"}}, "data": {}}}, good)
    ckpts = checkpoint_corpus(good, tmp_path / "c", tmp_path / "canary", tmp_path / "secret")
    assert set(ckpts) == {n for n, c in bi.CASES.items() if c.cls == "checkpoint"} - {"ckpt_good"}
    assert ckpts["ckpt_jpeg"].read_bytes()[:3] == b"\xff\xd8\xff"
    assert torch.load(ckpts["gadget_open"], weights_only=True)["hyper_parameters"]["encoders"]["face"]["_target_"] \
        == "builtins.open"


def test_asgi_driver_counts_what_the_app_read():
    async def reads_all(scope, receive, send):
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})

    async def refuses_early(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 413, "headers": []})
        await send({"type": "http.response.body", "body": b'{"error": {"code": "too_large"}}'})

    async def raises(scope, receive, send):
        raise RuntimeError("boom")

    body = lambda: bi.padded_json(b"{", 4 * bi.MB, b"}")  # noqa: E731
    full = asyncio.run(bi.asgi_http(reads_all, "POST", "/", [], body()))
    assert full["status"] == 200 and full["body"] == str(4 * bi.MB + 2) and full["read"] == 4 * bi.MB + 2
    early = asyncio.run(bi.asgi_http(refuses_early, "POST", "/", [], body()))
    assert early["status"] == 413 and early["read"] == 1            # only the prefix chunk
    boom = asyncio.run(bi.asgi_http(raises, "POST", "/", [], [b"x"]))
    assert boom["status"] is None and "RuntimeError: boom" in boom["exception"]


def test_asgi_ws_driver_sees_errors_probes_and_drops():
    async def live(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": '{"type": "ready"}'})
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("text") == "die":
                raise ValueError("cannot convert float NaN to integer")
            await send({"type": "websocket.send", "text": '{"type": "error", "code": "bad", "message": "no"}'})

    async def closes(scope, receive, send):
        await receive()
        await send({"type": "websocket.close", "code": 4401})

    ok = asyncio.run(bi.asgi_ws(live, [{"text": "hello"}], wait=1.0))
    assert ok["accepted"] and ok["replies"][0]["code"] == "bad" and ok["probe"] and not ok["exception"]
    dead = asyncio.run(bi.asgi_ws(live, [{"text": "die"}], wait=1.0))
    assert "ValueError" in dead["exception"] and dead["probe"] is None
    shut = asyncio.run(bi.asgi_ws(closes, [], wait=1.0))
    assert not shut["accepted"] and shut["close"] == 4401


# -- end to end ------------------------------------------------------------------------------------
@pytest.mark.slow  # 35-90 s on the shared 2-core box: two tiny trainings and ~30 entry-point runs
def test_quick_run_end_to_end(tmp_path):
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bad_inputs", "--quick", "--out", str(out),
                           "--work", str(tmp_path / "work")], cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    t = res["totals"]
    assert t["runs"] == len(res["runs"]) == sum(t[c] for c in bi.CATEGORIES) > 20
    assert set(res["by_entry_point"]) == set(bi.ENTRY_POINTS) and res["load_average"] and res["machine"]
    runs = {(r["entry"], r["case"]): r for r in res["runs"]}
    for key in [("predict", "good_jpg"), ("serve", "good_jpg"), ("live", "good_mp4"), ("train", "fer_good")] + \
            [(e, "ckpt_good") for e in bi.CKPT_ALL]:
        assert runs[key]["category"] == "ok", runs[key]              # the controls work
    for e in bi.CKPT_ALL:   # a gadget is never "ok": refused, or caught crashing / writing
        r = runs[(e, "gadget_open")]
        assert r["category"] != "ok" and (r["category"] == "clear_error" or r["wrote"] or r["category"] == "crash")
    assert not (tmp_path / "work").exists()                           # cleaned up
