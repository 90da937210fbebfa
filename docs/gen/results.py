"""Results tables generated from benchmarks/results/*.json (as timm generates its results tables).

One page per task; each row is read from a result file, never typed: recipe | metric (with its
spread and seeds) | train time | CPU | command | date | file. A field a file does not record is
shown as "-" and listed under "Gaps" on the page of every result file (all.md).
"""
from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from docs.gen.plots import chart_bars
from docs.gen.site import LOG_IN_REPO, picture_marker, studies_marker

MISSING = "-"


@dataclass
class Row:
    recipe: str
    metric: str
    value: str
    seeds: str = MISSING
    train_time: str = MISSING
    cpu: str = MISSING
    command: str = MISSING
    date: str = MISSING
    source: str = MISSING


def pct(x) -> str:
    return MISSING if x is None else f"{100 * x:.1f}"


def spread(mean, std=None, n=None) -> str:
    """'65.2 ± 1.7 (n=2)' from fractions; the mean alone when there is no std."""
    if mean is None:
        return MISSING
    s = pct(mean)
    if std is not None:
        s += f" ± {100 * std:.1f}"
    if n:
        s += f" (n={n})"
    return s


def minutes(seconds) -> str:
    return MISSING if seconds is None else f"{seconds / 60:.1f} min"


def cpu(machine: dict | None) -> str:
    if not machine:
        return MISSING
    name = machine.get("cpu") or MISSING
    if machine.get("cores"):
        name += f", {machine['cores']} cores"
    if machine.get("cuda"):
        name += f", {machine['cuda']}"
    return name


def seed_of(command: str | None) -> str:
    m = re.search(r"(?:^|\s)seed=(\d+)", command or "")
    return m.group(1) if m else ("default" if command else MISSING)


def _get(d: dict, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def base(d: dict, name: str, **kw) -> dict:
    """The fields every row of one file shares."""
    return dict(cpu=cpu(d.get("machine")), date=d.get("date") or MISSING, source=name, **kw)


# --- extractors: one per result schema; each yields the rows of one file -------------------------

def fer2013(d: dict, name: str) -> Iterable[Row]:
    command = _get(d, "details", "command")
    common = base(d, name, seeds=seed_of(command), command=command or MISSING,
                  train_time=minutes(d.get("train_time_s")))
    recipe = d.get("benchmark", name)
    yield Row(recipe, "val (PublicTest) acc", pct(d.get("val_acc")), **common)
    if d.get("val_tta10"):
        views = " x ".join(d.get("tta10_views") or []) or "10 views"
        yield Row(recipe, f"val acc, eval with {views}", pct(d["val_tta10"].get("acc")),
                  **{**common, "command": _get(d, "eval_tta10", "command") or MISSING})


def seeds_run(d: dict, name: str) -> Iterable[Row]:
    """benchmarks.ravdess_voice: one recipe over seeds (or, older files, one run)."""
    recipe = " ".join(d.get("overrides") or []) or d.get("benchmark", name)
    recipe = re.sub(r"\s*data\.root=\S+", "", recipe) or d.get("benchmark", name)
    if "val_uar_mean" in d:
        per_seed = d.get("per_seed") or []
        commands = {s.get("command") for s in per_seed if s.get("command")}
        yield Row(recipe, "val UAR (actors 17-20)",
                  spread(d["val_uar_mean"], d.get("val_uar_std"), d.get("n_seeds")),
                  **base(d, name, seeds=", ".join(map(str, d.get("seeds") or [])) or MISSING,
                         train_time=minutes(d.get("train_time_s_mean")),
                         command=commands.pop() if len(commands) == 1 else
                         (f"python -m benchmarks.ravdess_voice --seeds {' '.join(map(str, d.get('seeds') or []))}"
                          if d.get("seeds") else MISSING)))
    else:
        command = _get(d, "details", "command")
        yield Row(recipe, "val UAR (actors 17-20)", pct(d.get("val_uar")),
                  **base(d, name, seeds=seed_of(command), train_time=minutes(d.get("train_time_s")),
                         command=command or MISSING))


def pair_summary(d: dict, name: str) -> Iterable[Row]:
    """benchmarks.ravdess_pair and analysis.ensemble_pairs: sets paired by seed and their ensemble."""
    summary = d.get("summary") or {}
    seeds = d.get("seeds")
    n = len(seeds) if seeds else len(d.get("pairs") or []) or None
    members = d.get("experiments") or d.get("sets") or []
    for key, metrics in summary.items():
        if key.startswith("gain_over_") or not isinstance(metrics, dict) or "uar" not in metrics:
            continue
        recipe = f"mean ensemble of {' + '.join(members)}" if key == "ensemble" else key
        yield Row(recipe, "val UAR", spread(metrics["uar"].get("mean"), metrics["uar"].get("std"), n),
                  **base(d, name, seeds=", ".join(map(str, seeds)) if seeds else MISSING,
                         train_time=minutes(d.get("pair_train_s_max")) if key == "ensemble" else MISSING,
                         command=d.get("command") or MISSING))


def cv_compare(d: dict, name: str) -> Iterable[Row]:
    """benchmarks.voice_cv: recipes by k-fold cross-validation by speaker, and their mean ensembles."""
    for key, c in (d.get("candidates") or {}).items():
        yield Row(f"{key} (`{c.get('command', MISSING).replace('python -m emomm.cv ', '')}`)",
                  f"test UAR, {c.get('folds')}-fold CV by actor",
                  spread(_get(c, "mean", "uar"), _get(c, "std", "uar"), c.get("folds")),
                  **base(d, name, train_time=minutes(c.get("train_time_s_mean")),
                         command=c.get("command") or MISSING))
    for key, e in (d.get("ensembles") or {}).items():
        yield Row(f"mean ensemble of {' + '.join(e.get('members') or [key])}", "test UAR, same folds",
                  spread(_get(e, "mean", "uar"), _get(e, "std", "uar"), len(e.get("per_fold") or {}) or None),
                  **base(d, name, command=d.get("command") or MISSING))


def ablation(d: dict, name: str) -> Iterable[Row]:
    for variant, s in (d.get("summary") or {}).items():
        yield Row(f"ravdess_voice, {variant}", "val UAR",
                  spread(s.get("val_uar_mean"), s.get("val_uar_std"), len(s.get("seeds") or []) or None),
                  **base(d, name, seeds=", ".join(map(str, s.get("seeds") or [])) or MISSING,
                         command=f"python -m benchmarks.ravdess_ablation --only {variant}"))


def meld(d: dict, name: str) -> Iterable[Row]:
    for run, r in (d.get("runs") or {}).items():
        command = r.get("command")
        yield Row(run, "dev weighted F1", pct(r.get("dev_f1_weighted")),
                  seeds=seed_of(command), train_time=minutes(r.get("train_time_s")),
                  cpu=cpu(r.get("machine") or d.get("machine")), command=command or MISSING,
                  date=d.get("date") or MISSING, source=name)
    for ens, e in (d.get("ensembles") or {}).items():
        yield Row(f"ensemble {ens}", "dev weighted F1", pct(e.get("dev_f1_weighted")),
                  train_time=minutes(e.get("training_time_s")), command=e.get("command") or MISSING,
                  **{k: v for k, v in base(d, name).items()})


def fusion_synthetic(d: dict, name: str) -> Iterable[Row]:
    for run, uar in (d.get("test_uar") or {}).items():
        r = (d.get("runs") or {}).get(run) or {}
        yield Row(run, "test UAR", pct(uar),
                  **base(d, name, seeds=seed_of(r.get("command")),
                         train_time=minutes(r.get("train_time_s")),
                         command=r.get("command") or MISSING))


def fusion_paired(d: dict, name: str) -> Iterable[Row]:
    for group in ("single_modality_test_uar", "fusion_test_uar"):
        for run, uar in (d.get(group) or {}).items():
            yield Row(run, "test UAR", pct(uar), **base(d, name, command=d.get("command") or MISSING))


def live(d: dict, name: str) -> Iterable[Row]:
    for setup, r in (d.get("results") or {}).items():
        yield Row(setup, "frames/s; latency p50 / p95 (ms)",
                  f"{r.get('fps', MISSING)}; {r.get('latency_ms_p50', MISSING)} / {r.get('latency_ms_p95', MISSING)}",
                  **base(d, name, command=d.get("command") or MISSING))
    for det, ms in (d.get("detector_ms_per_frame_640x480") or {}).items():
        yield Row(f"detector {det}", "ms per 640x480 frame", str(ms),
                  **base(d, name, command=d.get("command") or MISSING))


def mesh_rate(d: dict, name: str) -> Iterable[Row]:
    """benchmarks/mesh_rate.py: found rates, time per face, the live loop with the mesh off / on."""
    kw = base(d, name, command=d.get("command") or MISSING)
    fer = d.get("fer2013_publictest") or {}
    for variant, r in (fer.get("variants") or {}).items():
        yield Row(f"FER2013 PublicTest ({fer.get('faces', MISSING)} faces), {variant}", "mesh found",
                  pct(r.get("found_rate")), **kw)
    for key in ("ms_per_face_batched", "ms_per_face_one_at_a_time"):
        if key in fer:
            yield Row("FER2013 PublicTest", key.replace("_", " "), str(fer[key]), **kw)
    clips = d.get("cremad_clips") or {}
    for geometry, r in (clips.get("geometries") or {}).items():
        yield Row(f"CREMA-D clips ({clips.get('frames_with_a_face', MISSING)} frames with a face), {geometry}",
                  "mesh found; ms per face (crop + mesh)",
                  f"{pct(r.get('found_rate'))}; {r.get('crop_ms_per_face', MISSING)} + "
                  f"{r.get('mesh_ms_per_face_one_at_a_time', MISSING)}", **kw)
    for setup, r in (((d.get("live_640x480") or {}).get("results")) or {}).items():
        if isinstance(r, dict):
            yield Row(f"live 640x480, {setup}", "frames/s; latency p50 / p95 (ms)",
                      f"{r.get('fps', MISSING)}; {r.get('latency_ms_p50', MISSING)} / "
                      f"{r.get('latency_ms_p95', MISSING)}", **kw)


def detect_footage(d: dict, name: str) -> Iterable[Row]:
    """Recall by face size, precision and time per detector setting and frame size; live frames/s."""
    for size, settings in (d.get("detection") or {}).items():
        for setting, r in settings.items():
            if not isinstance(r, dict):
                continue
            by = "; ".join(f"{k} px {pct(v.get('recall'))}" for k, v in (r.get("recall_by_size") or {}).items())
            yield Row(f"{setting}, {size}", "recall >= 40 px | by size | precision | ms/frame",
                      f"{pct(r.get('recall_40px_up'))} | {by} | {pct(r.get('precision'))} | {r.get('ms_per_frame', MISSING)}",
                      **base(d, name, command=d.get("command") or MISSING))
    for size, r in (d.get("live") or {}).items():
        yield Row(f"live defaults, {size}", "frames/s (wall; per CPU s); latency p50 / p95 (ms)",
                  f"{r.get('fps', MISSING)}; {r.get('cpu_fps', MISSING)}; {r.get('latency_ms_p50', MISSING)} / "
                  f"{r.get('latency_ms_p95', MISSING)}",
                  **base(d, name, command=d.get("command") or MISSING))


def live_backends(d: dict, name: str) -> Iterable[Row]:
    """benchmarks/live_backends.py: the default live path per backend, and its classifier alone."""
    threads = d.get("threads", MISSING)
    for backend, r in (d.get("results") or {}).items():
        setup = f"{d.get('model', MISSING)}, {backend}, {threads} threads"
        yield Row(setup, "frames/s; latency per frame p50 / p95 (ms)",
                  f"{r.get('fps', MISSING)}; {r.get('latency_ms_p50', MISSING)} / {r.get('latency_ms_p95', MISSING)}",
                  **base(d, name, command=d.get("command") or MISSING))
        yield Row(setup, "classifier alone, ms per crop p50 / p95",
                  f"{r.get('classifier_ms_p50', MISSING)} / {r.get('classifier_ms_p95', MISSING)}",
                  **base(d, name, command=d.get("command") or MISSING))
    if d.get("load_before"):
        yield Row("load average (1 min) before / after, 2 cores", "load",
                  f"{d['load_before'][0]} / {(d.get('load_after') or [MISSING])[0]}",
                  **base(d, name, command=d.get("command") or MISSING))


def export(d: dict, name: str) -> Iterable[Row]:
    for model, r in (d.get("results") or {}).items():
        sizes = r.get("size_bytes") or {}
        for backend, lat in (r.get("latency_per_crop") or {}).items():
            size = sizes.get(backend) or sizes.get("pytorch_state_dict" if backend == "pytorch" else "")
            mb = f"{size / 1e6:.1f}" if size else MISSING
            yield Row(f"{model}, {backend}", "ms per crop p50 / p95; file MB",
                      f"{lat.get('p50_ms', MISSING)} / {lat.get('p95_ms', MISSING)}; {mb}",
                      **base(d, name, command=d.get("command") or MISSING))


def serve(d: dict, name: str) -> Iterable[Row]:
    recipe = f"{d.get('clients', MISSING)} clients x {d.get('seconds', MISSING)} s, {d.get('server_workers', MISSING)} workers"
    yield Row(recipe, "requests/s; errors", f"{d.get('requests_per_s', MISSING)}; {d.get('errors', MISSING)}",
              **base(d, name, command=d.get("command") or MISSING))
    for kind in ("all", "image", "text"):
        lat = d.get(f"latency_ms_{kind}")
        if lat:
            yield Row(recipe, f"latency ms ({kind}) p50 / p95 / p99",
                      f"{lat.get('p50')} / {lat.get('p95')} / {lat.get('p99')}",
                      **base(d, name, command=d.get("command") or MISSING))


def throughput(d: dict, name: str) -> Iterable[Row]:
    for kind in ("images", "audio"):
        r = d.get(kind)
        if isinstance(r, dict):
            for k, v in r.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    yield Row(f"predict {kind}", k, str(v), **base(d, name, command=d.get("command") or MISSING))


def tracking(d: dict, name: str) -> Iterable[Row]:
    """benchmarks/track_footage.py: per setting (detector, scene, frame size, rate) and tracker."""
    for setting, per in (d.get("results") or {}).items():
        for tracker, r in per.items():
            if isinstance(r, dict):
                yield Row(f"{setting}, {tracker}", "ID switches per person: mean / max; per minute; fragments per person",
                          f"{r.get('switches_per_person', MISSING)} / {r.get('max_switches_per_person', MISSING)}; "
                          f"{r.get('switches_per_min', MISSING)}; {r.get('fragments_per_person', MISSING)}",
                          seeds=str(d.get("seeds", MISSING)), **base(d, name, command=d.get("command") or MISSING))


def landmarks(d: dict, name: str) -> Iterable[Row]:
    """benchmarks.landmarks_fer2013: per seed, the landmark model, the pixel model and their mean
    ensemble on the test split; how often the face mesh was found."""
    for seed, r in (d.get("seeds") or {}).items():
        common = base(d, name, seeds=str(seed), command=r.get("train_command") or MISSING,
                      train_time=minutes(r.get("train_wall_s")))
        scored = {**common, "command": r.get("ensemble_command") or MISSING, "train_time": MISSING}
        for what, key, row in (("landmarks alone (experiment=fer2013_landmarks)", "landmarks_alone", common),
                               (f"pixels alone ({d.get('pixels', 'pixels')})", "pixels_alone", scored),
                               ("mean ensemble of the two", "mean_ensemble", scored)):
            yield Row(what, "test acc / UAR", f"{pct(_get(r, key, 'acc'))} / {pct(_get(r, key, 'uar'))}", **row)
        gain = _get(r, "ensemble_minus_pixels_points", "acc")
        yield Row("ensemble minus pixels alone", "acc points", MISSING if gain is None else f"{gain:+.2f}", **scored)
    for m in d.get("mesh_detection") or []:
        yield Row("face mesh found", f"of {m.get('faces')} faces", pct(m.get("rate")),
                  **base(d, name, command=d.get("command") or MISSING))


def landmarks_occlusion(d: dict, name: str) -> Iterable[Row]:
    """benchmarks.landmarks_fer2013 --occlusion: per seed and condition, the landmark model, the
    pixel model and their mean ensemble (acc, and the drop from clean), the mesh's found rate and,
    where recorded, on how many faces the landmark member was left out of the ensemble."""
    names = {"landmarks": "landmarks alone", "pixels": f"pixels alone ({d.get('pixels', 'pixels')})",
             "mean_ensemble": "mean ensemble of the two"}
    for i, (run, r) in enumerate((d.get("seeds") or {}).items(), 1):
        row = base(d, name, seeds=str(i), command=r.get("ensemble_command") or MISSING)
        for cond, c in (r.get("conditions") or {}).items():
            left = c.get("landmark_member_dropped")
            if left is not None:
                names["mean_ensemble"] = "mean ensemble of the two (landmarks left out where the mesh is lost)"
                yield Row(f"landmark member left out, {cond}", "faces", str(left), **row)
            for role, what in names.items():
                acc, drop = _get(c, "metrics", role, "acc"), _get(c, "drop_points", role, "acc")
                value = pct(acc) + ("" if cond == "clean" or drop is None else f" (-{drop:.2f} points)")
                yield Row(f"{what}, {cond}", "test acc (drop from clean)", value, **row)
            m = c.get("mesh_found")
            if m:
                yield Row(f"face mesh found, {cond}", f"of {m.get('faces')} faces", pct(m.get("rate")), **row)


def people_count(d: dict, name: str) -> Iterable[Row]:
    """benchmarks/people_footage.py: people reported vs ground truth, per setting and
    ``min_person_frames``."""
    for setting, per in (d.get("results") or {}).items():
        for k, r in per.items():
            if k.startswith("min_person_frames=") and isinstance(r, dict):
                g = lambda f: r.get(f, MISSING)  # noqa: E731
                yield Row(f"{setting}, {k}", "people found / true; spurious, duplicates, missed; brief tracks",
                          f"{g('found')} / {g('true')}; {g('spurious')}, {g('duplicates')}, {g('missed')}; "
                          f"{g('brief_tracks')}", **base(d, name, command=d.get("command") or MISSING))


def flat_numbers(fields: tuple[str, ...]) -> Callable[[dict, str], Iterable[Row]]:
    """Rows for the named numeric fields of a file (nested dicts of numbers flattened)."""
    def rows(d: dict, name: str) -> Iterable[Row]:
        for f in fields:
            v = d.get(f)
            items = v.items() if isinstance(v, dict) else [(None, v)]
            for k, x in items:
                if isinstance(x, (int, float)) and not isinstance(x, bool):
                    yield Row(d.get("benchmark", name), f if k is None else f"{f}: {k}", str(x),
                              **base(d, name, command=d.get("command") or MISSING))
    return rows


# --- pages -----------------------------------------------------------------------------------

@dataclass
class Section:
    title: str
    pattern: str            # a regex matched against the file's stem
    rows: Callable[[dict, str], Iterable[Row]]


PAGES = {
    "fer2013": ("FER2013", "Face images, 7 classes; accuracy on PublicTest (validation), the issue's "
                "target metric. Recipes: `experiment=fer2013_fast`, `experiment=fer2013_cpu`.", [
        Section("Recipes and their variants", r"fer2013_cpu.*", fer2013),
    ], ["fer2013"]),
    "ravdess": ("RAVDESS", "Speech, 8 classes; UAR on actors 17-20 (validation), or on each fold's "
                "unseen actors in cross-validation. Recipes: "
                "`experiment=ravdess_voice`, `experiment=ravdess_ge2e`.", [
        Section("Recipes over seeds", r"ravdess_(voice|ge2e).*", seeds_run),
        Section("Ensembles of recipes paired by seed", r"ravdess_(pair|cnn).*", pair_summary),
        Section("Ablation: each technique toggled alone", r"ravdess_ablation", ablation),
        Section("Cross-validation by actor (how the zoo's voice-ravdess is chosen)", r"ravdess_cv.*", cv_compare),
    ], ["ravdess", "voice", "ge2e"]),
    "meld": ("MELD", "Text, 7 classes; weighted F1 on dev, MELD's metric. Recipe: `experiment=meld_text`.", [
        Section("Recipe variants, seeds and ensembles", r"meld_text", meld),
    ], ["meld"]),
    "fusion": ("Fusion", "Joining modalities: synthetic data with unreliable modalities, and real "
               "FER2013 faces paired with RAVDESS voices by label (independent given the label: it tests "
               "fusion mechanics, not audio-visual co-occurrence).", [
        Section("Synthetic data", r"fusion_synthetic.*", fusion_synthetic),
        Section("FER2013 faces + RAVDESS voices", r"fusion_paired", fusion_paired),
    ], ["fusion"]),
    "landmarks": ("Landmarks", "Facial landmarks as a modality: the face mesh of each FER2013 face into the "
                  "geometry encoder, alone and in a mean ensemble with the pixel model; the split is the "
                  "data's test split (PublicTest where there is no PrivateTest).", [
        Section("FER2013: landmarks, pixels and their ensemble", r"landmarks_fer2013(_smoke)?", landmarks),
        Section("FER2013 under occlusion: does the landmark stream degrade differently?",
                r"landmarks_fer2013_occlusion", landmarks_occlusion),
    ], ["landmarks"]),
    "speed-live": ("Speed: live", "The live loop (`python -m emomm.live`) per frame (threads as each setup says).", [
        Section("Live pipeline", r"live_pipeline.*", live),
        Section("Face mesh: found rate and cost", r"mesh_rate.*", mesh_rate),
        Section("Default path (zoo face model): PyTorch against ONNX Runtime", r"live_backends", live_backends),
    ], ["live", "mesh"]),
    "detect-footage": ("Faces at any frame size", "Face detectors on real faces (CREMA-D, FER2013) composed "
                       "into 1920x1080 and 640x480 frames with known boxes (`benchmarks/footage.py`): recall "
                       "by face size at IoU >= 0.5, precision, time per frame, one thread; live frames/s "
                       "with the default settings.", [
        Section("Detectors and settings; live", r"detect_footage.*", detect_footage),
    ], ["detect", "footage", "frame-size"]),
    "speed-export": ("Speed: export", "Per face crop, batch 1, one thread: PyTorch against the ONNX "
                     "exports (`python -m emomm.export`).", [
        Section("Export latency and size", r"export_latency.*", export),
        Section("Predictor throughput", r"predict_throughput.*", throughput),
    ], ["export", "predict"]),
    "speed-serve": ("Speed: serve", "The web app (`python -m emomm.serve`) under a bounded loopback "
                    "load (`benchmarks/serve_load.py`).", [
        Section("Load test", r"serve_load.*", serve),
    ], ["serve"]),
    "speed-crops": ("Speed: crop preparation", "Face detection and the crop cache "
                    "(`python -m emomm.prepare`, batched MTCNN, cached clips).", [
        Section("Preparing a dataset's crops", r"prepare_cremad",
                flat_numbers(("clips", "frames", "faces_found", "failed", "prepare_time_s",
                              "wall_time_s", "frames_per_s"))),
        Section("Batched face detection", r"face_crops",
                flat_numbers(("fps", "speedup_batched_vs_plain", "cpu_seconds_per_frame",
                              "max_box_diff_px"))),
        Section("Loading cached clips", r"video_loading",
                flat_numbers(("clips_per_s", "entry_read_clips_per_s", "build_cache_s"))),
    ], ["crop", "face", "prepare", "video"]),
    "tracking": ("Tracking", "One id per person across a video's frames (`predictor.tracker`, "
                 "[Predict](../guides/predict.md)) on composed moving footage with known ids "
                 "(`benchmarks/footage.py`): `oracle` rows track the ground-truth boxes with a detector's "
                 "jitter and misses (the tracker alone), `mtcnn` rows MTCNN's detections on the drawn frames. "
                 "The issue's target: at most 1 ID switch per person per clip.", [
        Section("ID switches per tracker", r"track_footage.*", tracking),
        Section("People counted per video (`predictor.min_person_frames`)", r"people_footage.*", people_count),
    ], ["track", "people"]),
}

COLUMNS = ("recipe", "metric", "value", "seeds", "train time", "CPU", "command", "date", "file")


def _cell(text: str, code: bool = False) -> str:
    text = str(text).replace("|", "\\|")
    return f"`{text}`" if code and text != MISSING else text


def is_smoke(d: dict, stem: str) -> bool:
    return bool(d.get("smoke")) or "smoke" in stem


def table(rows: list[Row]) -> list[str]:
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        out.append("| " + " | ".join([
            _cell(r.recipe), _cell(r.metric), _cell(r.value), _cell(r.seeds), _cell(r.train_time),
            _cell(r.cpu), _cell(r.command, code=True), _cell(r.date),
            _cell(f"{r.source}.json", code=True),
        ]) + " |")
    return out + [""]


def load(results: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(results.glob("*.json"))}


def section_rows(slug: str, files: dict[str, dict]) -> list[tuple[Section, list[Row], set[str]]]:
    """Each section of the page `slug` with its rows and the result files they come from (smoke
    runs left out)."""
    out = []
    for s in PAGES[slug][2]:
        rows: list[Row] = []
        used: set[str] = set()
        for stem, d in files.items():
            if re.fullmatch(s.pattern, stem) and not is_smoke(d, stem):
                rows += list(s.rows(d, stem))
                used.add(stem)
        out.append((s, rows, used))
    return out


def plot_name(slug: str, i: int) -> str:
    """The chart of section `i` (from 1) of the page `slug`, under docs/generated/."""
    return f"plots/{slug}-{i}.png"


def task_page(slug: str, files: dict[str, dict]) -> tuple[str, set[str]]:
    """The page's markdown and the result files it used."""
    title, intro, sections, words = PAGES[slug]
    out = [f"# {title}", "", intro, "",
           "Generated from `benchmarks/results/*.json` by `python -m docs.gen`: every row is read from a "
           "result file (smoke runs left out; they are listed in [every result file](all.md)). "
           "Values are percent unless the metric says otherwise; `a ± b (n=k)` is the mean and standard "
           "deviation over k seeds. \"-\" marks a field the file does not record.", ""]
    used: set[str] = set()
    for i, (s, rows, files_used) in enumerate(section_rows(slug, files), 1):
        used |= files_used
        out += [f"## {s.title}", ""] + (table(rows) if rows else ["No result file yet.", ""])
        chart = chart_bars(rows)
        if chart:
            out += [picture_marker(plot_name(slug, i), f"{title}, {s.title}: {chart[0]}"), ""]
    out += ["## Studies behind these results", "",
            f"The dated notes on this task in [experiments/log/]({LOG_IN_REPO}) (their file names hold "
            f"{' or '.join(f'`{w}`' for w in words)}):", "", studies_marker(words), ""]
    return "\n".join(out) + "\n", used


def gaps(d: dict) -> list[str]:
    """The fields a row needs that this file does not record."""
    missing = []
    if not d.get("command") and not _get(d, "details", "command") and not any(
            isinstance(r, dict) and r.get("command")
            for r in (d.get("runs") or {}).values() if isinstance(d.get("runs"), dict)):
        missing.append("command")
    if not d.get("machine"):
        missing.append("machine")
    if not d.get("date"):
        missing.append("date")
    if not any(k in d for k in ("seeds", "seed", "n_seeds")) and not _get(d, "details", "command"):
        missing.append("seeds")
    return missing


def all_page(files: dict[str, dict], used: set[str]) -> str:
    out = ["# Every result file", "",
           "Every JSON in `benchmarks/results/`, with the page that tabulates it and the fields a results "
           "row needs that it does not record (shown as \"-\" in the tables). A file on no page is read "
           f"in the [experiment log]({LOG_IN_REPO}).", "",
           "| file | benchmark | date | CPU | smoke | on page | gaps |", "|---|---|---|---|---|---|---|"]
    page_of = {}
    for slug, (title, _, sections, _) in PAGES.items():
        for s in sections:
            for stem in files:
                if re.fullmatch(s.pattern, stem):
                    page_of.setdefault(stem, f"[{title}]({slug}.md)")
    for stem, d in files.items():
        out.append(f"| `{stem}.json` | {_cell(d.get('benchmark', MISSING))} | {_cell(d.get('date', MISSING))} | "
                   f"{_cell(cpu(d.get('machine')))} | {'yes' if is_smoke(d, stem) else ''} | "
                   f"{page_of.get(stem, '-')} | {', '.join(gaps(d)) or ''} |")
    return "\n".join(out) + "\n"


def index_page() -> str:
    out = ["# Results", "",
           "One page per task, generated from `benchmarks/results/*.json` by `python -m docs.gen` (run "
           "by `make docs`): a row is never typed by hand. To re-run a benchmark, see "
           "[Reproduce our results](../guides/reproduce.md).", ""]
    out += [f"- [{title}]({slug}.md)" for slug, (title, *_rest) in PAGES.items()]
    out += ["- [Every result file](all.md)", f"- [Experiment log]({LOG_IN_REPO}): one dated note per "
            "study, with its findings", ""]
    return "\n".join(out) + "\n"


# --- README.md's headline table: one row per recipe --------------------------------------------
#
# Which result files stand for a recipe is a choice, made here once: the runs of the recipe *as it
# stands* (its config unchanged since they ran), read from the files that record them, scored by
# the figure a model card gives (FER2013 PublicTest accuracy, RAVDESS UAR on the unseen actors
# 17-20, MELD dev weighted F1, the fusions' test UAR). Several runs (seeds) give their mean ± std
# (sample std, as benchmarks.ravdess_voice writes it); one run says n=1. A field no file records
# is "-": a recipe whose files are gone shows a row of dashes, never a typed number.

README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


@dataclass
class Run:
    """One training run of a recipe as a result file records it (any field may be missing)."""
    value: float | None
    train_time_s: float | None
    machine: dict | None


def recorded(stem: str, value: tuple[str, ...], time: tuple[str, ...],
             *at: tuple[str, ...]) -> Callable[[dict[str, dict]], list[Run]]:
    """The runs recorded in file `stem`: the record at each path of `at` (the file itself when
    none), its value and train time at the key paths `value` and `time`, its machine (else the
    file's). A missing file or record gives no run."""
    def runs(files: dict[str, dict]) -> list[Run]:
        d = files.get(stem)
        if d is None:
            return []
        records = [_get(d, *path) for path in at or [()]]
        return [Run(_get(r, *value), _get(r, *time), r.get("machine") or d.get("machine"))
                for r in records if isinstance(r, dict)]
    return runs


def each_recorded(stem: str, items: str, value: tuple[str, ...],
                  time: tuple[str, ...]) -> Callable[[dict[str, dict]], list[Run]]:
    """One run per element of the list `items` of file `stem` (its seeds, its pairs)."""
    def runs(files: dict[str, dict]) -> list[Run]:
        d = files.get(stem) or {}
        return [Run(_get(r, *value), _get(r, *time), r.get("machine") or d.get("machine"))
                for r in d.get(items) or [] if isinstance(r, dict)]
    return runs


@dataclass
class Headline:
    task: str
    recipe: str             # the overrides its runs were trained with, as a user types them
    metric: str
    page: str               # its results page: docs/results/<page>.md
    sources: list[Callable[[dict[str, dict]], list[Run]]] = field(default_factory=list)
    note: str = ""          # what the row's runs are, when a reader needs to know


HEADLINES = [
    # The recipe since "FER2013 fast recipe: 36 epochs, the first 18 on 32 px crops" (2026-12-07):
    # small36 ran it as overrides before it became the default (the callback then under its old
    # module path), seed2 as the plain recipe after. The 30-epoch fer2013_cpu_fast* runs predate it.
    Headline("Faces (FER2013)", "experiment=fer2013_fast", "PublicTest accuracy", "fer2013", [
        recorded("fer2013_cpu_fast_small36", ("val_acc",), ("train_time_s",)),
        recorded("fer2013_cpu_fast_seed2", ("val_acc",), ("train_time_s",)),
    ], "the model as trained, scored on the centre crop and its mirror"),
    # The recipe since "RAVDESS in 30 minutes" (2026-12-06: precision auto, the NHWC CNN, multi-task
    # heads): `experiment=ravdess_voice seed=N` as benchmarks.ravdess_pair ran it, seeds 1-3. The
    # ravdess_voice*.json files are older versions of the recipe or variants of it.
    Headline("Voice (RAVDESS)", "experiment=ravdess_voice", "UAR (validation actors 17-20, which the recipe was tuned on)", "ravdess", [
        each_recorded(stem, "pairs", ("members", "ravdess_voice", "uar"), ("train_time_s", "ravdess_voice"))
        for stem in ("ravdess_pair_s12", "ravdess_pair_s3")
    ], "train time with the GE2E recipe training beside it, one thread each on the 2 cores"),
    # Unchanged since it was measured (2026-12-06), seeds 1-3 one at a time.
    Headline("Voice (RAVDESS)", "experiment=ravdess_ge2e", "UAR (validation actors 17-20, which the recipe was tuned on)", "ravdess", [
        each_recorded("ravdess_ge2e", "per_seed", ("val_uar",), ("train_time_s",)),
    ], "the pretrained GE2E speaker encoder, fine-tuned; its seeds trained one at a time"),
    # The recipe since its peak rate became 1e-4 (2026-12-03): the runs whose command is the plain
    # recipe (meld_text.json renames runs so each command reproduces under the current default).
    Headline("Text (MELD)", "experiment=meld_text", "dev weighted F1", "meld", [
        recorded("meld_text", ("dev_f1_weighted",), ("train_time_s",), ("runs", run))
        for run in ("minilm", "minilm_seed2", "minilm_seed3")
    ]),
    # The fusion that experiment=fusion_paired uses by default (fusion=auto: attention for two
    # modalities), as benchmarks.fusion_paired trained it (+ablation=paired/attention composes to
    # its former override list).
    Headline("Fusion (FER2013 face + RAVDESS voice)", "experiment=fusion_paired +ablation=paired/attention",
             "test UAR (actors 18-20)", "fusion", [
        recorded("fusion_paired", ("fusion_test_uar", "attention"), ("steps", "attention", "train_time_s")),
    ], "the fusion run alone, from the face and voice runs it starts from; faces and voices paired by "
       "label, not recorded together"),
    Headline("Fusion (synthetic face + text)", "experiment=fusion_synthetic +ablation=fusion/attention",
             "test UAR", "fusion", [
        recorded("fusion_synthetic", ("test_uar", "attention"), ("runs", "attention", "train_time_s")),
    ]),
]


def headline_cells(h: Headline, files: dict[str, dict]) -> tuple[str, str, str]:
    """(metric, train time, CPU) of a recipe from its recorded runs that give the metric: the mean ±
    std over them (n=1 for one run), their mean train time and the CPUs they ran on; "-" where
    none records it."""
    runs = [r for source in h.sources for r in source(files) if r.value is not None]
    values = [r.value for r in runs]
    times = [r.train_time_s for r in runs if r.train_time_s is not None]
    if values:
        std = statistics.stdev(values) if len(values) > 1 else None
        metric = f"{h.metric}: {spread(statistics.mean(values), std, len(values))}"
    else:
        metric = f"{h.metric}: {MISSING}"
    cpus = sorted({cpu(r.machine) for r in runs} - {MISSING})
    return metric, minutes(statistics.mean(times)) if times else MISSING, "; ".join(cpus) or MISSING


def readme_table(files: dict[str, dict]) -> str:
    """The block README.md carries between its results markers (markers included)."""
    out = [README_START,
           "<!-- generated by `python -m docs.gen` from benchmarks/results/*.json (docs/gen/results.py "
           "HEADLINES); do not edit by hand -->",
           "| task | recipe | metric | train time | CPU | results |", "|---|---|---|---|---|---|"]
    notes = []
    for h in HEADLINES:
        metric, time, machine = headline_cells(h, files)
        task = h.task
        if h.note:
            notes.append(h.note)
            task += f" [{len(notes)}]"
        out.append("| " + " | ".join([_cell(task), _cell(h.recipe, code=True), _cell(metric), _cell(time),
                                      _cell(machine), f"[{PAGES[h.page][0]}](docs/results/{h.page}.md)"]) + " |")
    out += ["", "Figures are percent; `a ± b (n=k)` is the mean and standard deviation over k seeds, the "
            "train time their mean. Each recipe's runs and why they stand for it: `HEADLINES` in "
            "docs/gen/results.py.", ""]
    out += [f"- [{i}] {n}." for i, n in enumerate(notes, 1)]
    return "\n".join(out + [README_END])


def with_readme_table(readme: str, table: str) -> str:
    """README.md's text with the block between its results markers replaced by `table`."""
    start, end = readme.find(README_START), readme.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no {README_START} ... {README_END} block: add the two markers "
                         "under its '## Results' heading, then run `python -m docs.gen` again")
    return readme[:start] + table + readme[end + len(README_END):]
