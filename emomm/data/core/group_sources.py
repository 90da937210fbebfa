"""Group sources: which group (sex, age band, ...) each sample belongs to.

A *group source* maps samples (their file path and speaker id, :class:`SampleMeta`) to group
names, or None when it cannot (counted as unassigned, never guessed). The sources of a
corpus live beside its dataset (:class:`~emomm.data.datasets.ravdess.RavdessSex`,
:class:`~emomm.data.datasets.cremad.CremadDemographics`); :class:`CsvGroups` reads any CSV
keyed by speaker or sample. ``conf/groups/<name>.yaml`` registers them for ``groups=<name>``
on ``emomm.eval`` and ``emomm.train`` (:func:`build_source`).

Two users: the fairness analysis (:mod:`emomm.analysis.groups`: per-group metrics and gaps)
and group-balanced training (:func:`emomm.data.core.sampling.balanced_sample_weights`).

Sample order: :func:`sample_meta` walks ``Subset``/``Concat`` wrappers to each sample's path
and speaker, in dataset order.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import ConcatDataset, Dataset, Subset

from emomm.utils.moved import upgrade_targets
from emomm.utils import runtime
from emomm.utils.targets import check_targets

#: Config keys of ``groups`` that belong to the report, not to the source's constructor.
REPORT_KEYS = ("name", "draws", "seed", "level")


@dataclass(frozen=True)
class SampleMeta:
    """What identifies a sample: its file (or None) and its speaker id (or None)."""

    path: str | None
    speaker: Any


def sample_meta(ds: Dataset) -> list[SampleMeta]:
    """Path and speaker of every sample of ``ds``, in dataset order, through ``Subset`` and
    ``ConcatDataset`` wrappers. A dataset that records neither raises a ``ValueError``."""
    if isinstance(ds, Subset):
        parent = sample_meta(ds.dataset)
        return [parent[i] for i in ds.indices]
    if isinstance(ds, ConcatDataset):
        return [m for d in ds.datasets for m in sample_meta(d)]
    paths, speakers = getattr(ds, "paths", None), getattr(ds, "speakers", None)
    if paths is None and speakers is None:
        raise ValueError(f"{type(ds).__name__} records no sample paths or speaker ids, so its samples "
                         "cannot be assigned to groups; use a dataset read from files (ravdess, cremad, ...)")
    n = len(ds)
    paths = list(paths) if paths is not None else [None] * n
    speakers = list(speakers) if speakers is not None and not isinstance(speakers, bool) else [None] * n
    return [SampleMeta(None if p is None else str(p), s) for p, s in zip(paths, speakers)]


class GroupSource:
    """Maps samples to group names; ``root`` is the dataset folder (where metadata may sit)."""

    name = "groups"

    def assign(self, meta: Sequence[SampleMeta], root: str | Path | None = None) -> list[str | None]:
        raise NotImplementedError


def actors(meta: Sequence[SampleMeta], parse_name: Callable[[str], Any]) -> list[int | None]:
    """Each sample's actor id: its speaker id, else parsed from its file name by
    ``parse_name`` (anything with an ``actor``; None when neither gives one)."""
    out: list[int | None] = []
    for m in meta:
        actor = m.speaker
        if actor is None and m.path is not None:
            try:
                actor = parse_name(m.path).actor
            except ValueError:
                actor = None
        out.append(None if actor is None else int(actor))
    return out


def age_band(age: float, width: int = 10) -> str:
    """``51 -> "50-59"`` (bands of ``width`` years)."""
    lo = int(age) // width * width
    return f"{lo}-{lo + width - 1}"


def _read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such group table")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k is not None} for r in reader]
        return [c.strip() for c in (reader.fieldnames or [])], rows


class CsvGroups(GroupSource):
    """Any CSV mapping a speaker id or a sample to group columns.

    Args:
        path: the CSV file.
        column: the group column.
        key: ``speaker`` (the id column holds speaker ids) or ``sample`` (it holds file
            names, stems or paths; matched in that order).
        id_column: the id column (default: the first column).
    """

    def __init__(self, path: str, column: str, key: str = "speaker", id_column: str | None = None) -> None:
        if key not in ("speaker", "sample"):
            raise ValueError(f"groups.key={key!r}: use speaker or sample")
        if not path:
            raise ValueError("groups=csv needs groups.path=/path/to/table.csv and groups.column=<column>")
        self.path, self.column, self.key, self.id_column = Path(path).expanduser(), column, key, id_column
        self.name = f"csv_{column}"

    def table(self) -> dict[str, str]:
        header, rows = _read_table(self.path)
        idc = self.id_column or (header[0] if header else None)
        if idc not in header or self.column not in header:
            raise ValueError(f"{self.path}: groups.column={self.column!r} / id column {idc!r} not in the "
                             f"header {header}; set groups.column= and groups.id_column=")
        return {r[idc]: r[self.column] for r in rows if r.get(idc) and r.get(self.column)}

    def assign(self, meta, root=None):
        table = self.table()
        out: list[str | None] = []
        for m in meta:
            if self.key == "speaker":
                out.append(None if m.speaker is None else table.get(str(m.speaker)))
            elif m.path is None:
                out.append(None)
            else:
                p = Path(m.path)
                out.append(next((table[k] for k in (p.name, p.stem, str(p)) if k in table), None))
        return out


def build_source(cfg: Any) -> tuple[GroupSource, dict[str, Any]]:
    """A group source and the report options (draws, seed, level) from a ``groups`` config:
    a registered name (``conf/groups/<name>.yaml``; read from a file, it is built only if its
    ``_target_``\\ s are allowed, :func:`~emomm.utils.targets.check_targets`) or a mapping
    with ``_target_`` (the user's own config)."""
    path = None
    if isinstance(cfg, str):
        path = Path(runtime.CONFIG_DIR) / "groups" / f"{cfg}.yaml"
        if not path.is_file():
            names = sorted(p.stem for p in path.parent.glob("*.yaml"))
            raise ValueError(f"groups={cfg!r} is not registered; choose one of {names} (conf/groups/)")
        cfg = OmegaConf.load(path)
    plain = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    if path is not None:
        plain = upgrade_targets(plain)  # names that moved since the file was written
        check_targets(plain, path)
    report = {k: plain.pop(k) for k in REPORT_KEYS if k in plain}
    source = instantiate(plain, _convert_="all")
    if report.get("name"):
        source.name = report["name"]
    return source, report
