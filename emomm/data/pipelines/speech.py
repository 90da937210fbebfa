"""`SpeakerAudioDataModule`: what acted-speech corpora (RAVDESS, CREMA-D) share.

A subclass lists its files (:meth:`scan`: path, label, speaker for each usable file, plus
the files whose names it could not parse); this class then

* resolves speaker-independent splits (``fold`` for k-fold by speaker, or explicit
  ``train_speakers`` / ``val_speakers`` / ``test_speakers``) and asserts that no speaker is
  in two splits - there is deliberately no random split across speakers;
* decodes every file once (thread pool), resampled to ``sample_rate`` and kept in memory
  (``cache``), skipping unreadable files with one warning that names them;
* serves clips cropped/padded to ``duration`` (random crops + ``augment`` in train, centre
  crops in eval), or whole clips in padded batches with lengths (``duration: null`` or
  ``pad: false``).
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from torch.utils.data import Dataset

from emomm.data.pipelines.waveforms import AudioDataset, ClipOptions, WaveAugment, read_many, report_unreadable
from emomm.media.audio import MEDIA_EXTENSIONS, AudioReadError, audio_duration
from emomm.data.core.emotion_datamodule import DataError, EmotionDataModule
from emomm.data.core.skips import MALFORMED_NAME, UNREADABLE, UNREADABLE_FOLDER
from emomm.data.core.speakers import assert_disjoint, speaker_splits

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clip:
    path: str
    label: int
    speaker: int
    train_only: bool = False   # extra training data (e.g. RAVDESS song): never in val/test
    aux: tuple[tuple[str, int], ...] = ()   # auxiliary labels ((task, index), ...): aux_label_names


def report_malformed(problems: Sequence[str], root: Path, total: int) -> None:
    if problems:
        shown = "\n  ".join(problems[:10]) + ("\n  ..." if len(problems) > 10 else "")
        log.warning("%s: ignored %d of %d media files whose names or folders do not follow the "
                    "dataset's convention (rename or remove them):\n  %s", root, len(problems),
                    total, shown)


class SpeakerAudioDataModule(EmotionDataModule):
    """Args (beyond :class:`EmotionDataModule`'s):
        root: the dataset folder (searched recursively).
        sample_rate / duration / pad / trim_db / eval_windows: see
            :class:`emomm.data.pipelines.waveforms.ClipOptions` (``eval_windows``: val/test serve whole
            clips, which the model scores as the mean of its windows' logits).
        augment: :class:`emomm.data.pipelines.waveforms.WaveAugment` options for the training split.
        fold / n_folds: k-fold cross-validation by speaker (fold K tests on speaker group K,
            validates on group K+1). Without fold and without speaker lists: fold 0.
        train_speakers / val_speakers / test_speakers: explicit speaker lists (with
            ``fold: null``); one of them may be null (= the remaining speakers);
            ``test_speakers: []`` means test = val.
        cache: decode every file once at setup and keep the waveforms in memory (fast
            epochs; unreadable files are found up front). Off: decode on every access
            (headers are still checked at setup).
        load_workers: threads for decoding.
    """

    modality = "voice"

    def __init__(self, root: str, sample_rate: int = 16000, duration: float | None = 3.0,
                 pad: bool = True, trim_db: float | None = None, augment: dict | None = None,
                 fold: int | None = None, n_folds: int = 5,
                 train_speakers: Sequence[int] | None = None, val_speakers: Sequence[int] | None = None,
                 test_speakers: Sequence[int] | None = None, cache: bool = True,
                 load_workers: int = 4, eval_windows: dict | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.clip = ClipOptions(sample_rate=int(sample_rate), duration=duration, pad=bool(pad),
                                trim_db=trim_db, eval_windows=_plain(eval_windows))
        self.augment = WaveAugment.from_config(augment)
        self.fold, self.n_folds = fold, int(n_folds)
        self.speaker_lists = {"train": _ints(train_speakers), "val": _ints(val_speakers),
                              "test": _ints(test_speakers)}
        self.cache, self.load_workers = cache, load_workers
        self.split_speakers: dict[str, list[int]] = {}

    @property
    def skipped(self) -> list[str]:
        """The messages of the files that could not be read (see :attr:`skips`)."""
        return [s.message for s in self.skips.select(UNREADABLE)]

    @property
    def malformed(self) -> list[str]:
        """The messages of the files whose names do not parse (see :attr:`skips`)."""
        return [s.message for s in self.skips.select(MALFORMED_NAME)]

    # -- to implement ------------------------------------------------------------------------
    def scan(self) -> tuple[list[Clip], list[str], int]:
        """Usable clips, problems (one line per ignored file, naming it) and the number of
        media files looked at (:meth:`media_files` lists them)."""
        raise NotImplementedError

    def media_files(self) -> list[Path]:
        """Media files under the root (recursively, through symlinked folders, hidden files
        excluded); folders that cannot be listed are recorded in :attr:`skips`."""
        return self.list_files(self.root, MEDIA_EXTENSIONS)

    # -- shared ------------------------------------------------------------------------------
    @property
    def preprocessing(self) -> dict[str, Any]:
        return {self.modality: self.clip.describe()}

    def _check_root(self) -> None:
        if not self.root.exists():
            raise FileNotFoundError(f"data.root={self.root} does not exist; point it at the "
                                    f"{type(self).__name__.replace('DataModule', '')} folder")

    def build_splits(self) -> dict[str, Dataset]:
        self._check_root()
        clips, malformed, total = self.scan()
        for msg in malformed:
            self.skips.add(MALFORMED_NAME, msg.split(": ", 1)[0], msg)
        report_malformed(malformed, self.root, total)
        if not clips:
            folders = self.skips.select(UNREADABLE_FOLDER)
            unread = f"; {len(folders)} folder(s) could not be read: {folders[0].message}" if folders else ""
            raise FileNotFoundError(f"{self.root}: no usable clips found ({total} media files looked at{unread}); "
                                    f"see the docstring of {type(self).__module__} for the layout")
        spk = speaker_splits([c.speaker for c in clips], fold=self.fold, n_folds=self.n_folds,
                             **self.speaker_lists)
        refit = not spk["val"]  # val_speakers=[]: no held-out speakers, validate on the training ones
        if refit:
            log.warning("no validation speakers (data.val_speakers=[]): the validation split is the training "
                        "speakers %s, scored without augmentation; its figures are training-set scores", spk["train"])
            spk = dict(spk, val=spk["train"])
        wanted = {s for v in spk.values() for s in v}
        clips = [c for c in clips if c.speaker in wanted]
        ok, waves = self._decode(clips, {c.speaker: s for s in ("test", "val", "train") for c in clips
                                         if c.speaker in set(spk[s])})
        keep = [i for i, good in enumerate(ok) if good]
        clips = [clips[i] for i in keep]
        waves = [waves[i] for i in keep] if waves is not None else None

        datasets: dict[str, Dataset] = {}
        for split in ("train", "val", "test"):
            idx = [i for i, c in enumerate(clips) if c.speaker in set(spk[split])
                   and (split == "train" or not c.train_only)]
            if not idx:
                continue
            datasets[split] = AudioDataset(
                [clips[i].path for i in idx], [clips[i].label for i in idx], self.clip,
                train=split == "train", augment=self.augment if split == "train" else None,
                waves=[waves[i] for i in idx] if waves is not None else None, cache=self.cache,
                modality=self.modality, speakers=[clips[i].speaker for i in idx],
                aux={t: [dict(clips[i].aux).get(t, -1) for i in idx] for t in self.aux_label_names})
        for split in ("train", "val"):
            if split not in datasets:
                left = self.skips.select(UNREADABLE, split)
                why = (f": all {len(left)} of its clips could not be read, e.g. {left[0].message}" if left
                       else "")
                raise DataError(f"{self.root}: the {split} split (speakers {spk[split]}) has no readable "
                                f"clips{why}")
        if "test" not in datasets:
            log.warning("no test speakers (%s): test metrics are computed on the validation "
                        "speakers %s", spk["test"] or "[]", spk["val"])
            datasets["test"] = datasets["val"]
        # The speakers actually present in each split never overlap (test may alias val).
        actual = {s: sorted(set(d.speakers)) for s, d in datasets.items()}
        assert_disjoint({s: v for s, v in actual.items()
                         if not (s == "test" and datasets["test"] is datasets["val"]) and not (s != "train" and refit)})
        self.split_speakers = actual
        for s, d in datasets.items():
            counts = Counter(d.labels)
            log.info("%s: %d clips, speakers %s, per class %s", s, len(d), actual[s],
                     {self.label_names[k]: counts.get(k, 0) for k in range(self.num_classes)})
        return datasets

    def _decode(self, clips: list[Clip], split_of: dict[int, str]) -> tuple[list[bool], list | None]:
        """Which clips are readable, and their waveforms when caching; the others are
        recorded in :attr:`skips` under their speaker's split (``split_of``)."""
        paths = [c.path for c in clips]
        waves: list | None = None
        if self.cache:
            waves, errors = read_many(paths, self.clip, self.load_workers)
            ok = [w is not None for w in waves]
        else:  # check headers now, decode on access
            ok, errors = [], []
            for p in paths:
                try:
                    audio_duration(p)
                    ok.append(True)
                except AudioReadError as err:
                    ok.append(False)
                    errors.append(str(err))
        for clip, error in zip([c for c, good in zip(clips, ok) if not good], errors):
            self.skips.add(UNREADABLE, clip.path, error, split_of.get(clip.speaker))
        report_unreadable(errors, len(paths))
        return ok, waves


def _plain(v: Any) -> dict | None:
    """An OmegaConf node or mapping as a plain dict (None stays None)."""
    if not v:
        return None
    try:
        from omegaconf import DictConfig, OmegaConf
        if isinstance(v, DictConfig):
            return OmegaConf.to_container(v, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover
        pass
    return dict(v)


def _ints(v: Sequence[int] | None) -> list[int] | None:
    return None if v is None else [int(x) for x in v]
