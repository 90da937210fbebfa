"""Text pieces shared by the text datasets (MELD, any labelled CSV, synthetic).

* Reading and cleaning: :func:`read_text_file` decodes a file as UTF-8 and falls back to
  cp1252 byte by byte where it is not valid UTF-8 (a byte that is neither becomes U+FFFD,
  counted as ``unrepairable``; a file with NUL bytes, UTF-16 or binary, is refused);
  :func:`read_table` turns a table's parse errors into a :class:`~emomm.data.core.emotion_datamodule.DataError`
  naming the file, the line and the fix; :func:`repair_text` fixes the
  mis-encodings found in real corpora (cp1252 C1 control characters such as ``\\x92``,
  UTF-8 read as cp1252 such as ``â€™``, and apostrophes lost to ``?`` as in MELD's
  ``I?ve``) and counts every repair; :func:`normalize_text` maps typographic punctuation to
  ASCII and collapses whitespace.
* :class:`TextDataset`: raw strings. A sample's ``inputs["text"]`` is the utterance, or
  ``{"text": utterance, "context": previous turns}`` when dialogue context is on. The
  text *encoder* tokenizes (see :mod:`emomm.models.encoders.text_transformer`), so the tokenizer
  lives in the model and its checkpoint, and one dataset serves every encoder.
* :class:`TextDataModule`: the loaders batch utterances of similar length together
  (:class:`LengthBucketBatchSampler`), which cuts padding, i.e. transformer compute, by
  about half on dialogue data.
"""
from __future__ import annotations

import csv
import io
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from emomm.data.core.emotion_datamodule import DataError, EmotionDataModule
from emomm.data.core.collate import aux_lists, collate_samples, sample_aux
from emomm.data.core.sampling import ResumableDataLoader, ResumePoint, SeededSamples, sample_seeds, seed_epoch_globals
from emomm.data.core.skips import SkipLog
from emomm.media.sniff import sniff

log = logging.getLogger(__name__)

# -- decoding and repair -------------------------------------------------------------------
_SURROGATE = re.compile("[\udc80-\udcff]")
# C1 control characters: a cp1252 byte (0x80-0x9F) that reached the text as latin-1.
_C1 = re.compile("[\u0080-\u009f]")
# UTF-8 multi-byte sequences decoded as cp1252/latin-1 ("â€™", "Ã©", "â\x80\x99"): a lead
# byte character followed by 1-3 continuation-byte characters.
_CP1252_CONT = "\u0080-\u00bf\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u017d" \
               "\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u017e\u0178"
_MOJIBAKE = re.compile(f"[\u00c2-\u00f4][{_CP1252_CONT}]{{1,3}}")
# An apostrophe lost to "?" (or U+FFFD) inside an English contraction: "I?ve", "that?s".
_LOST_APOSTROPHE = re.compile(r"(?<=[A-Za-z])[?\ufffd](?=(?:s|t|ve|re|ll|d|m)\b)")
_TYPOGRAPHIC = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
    "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u00a0": " ", "\u2009": " ", "\u200b": "", "\ufeff": "",
})
_WS = re.compile(r"\s+")

#: What :func:`repair_text` counts.
REPAIR_KINDS = ("cp1252_control", "mojibake", "lost_apostrophe", "unrepairable")


def _cp1252_byte(b: int) -> str:
    try:
        return bytes([b]).decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D are undefined in cp1252
        return bytes([b]).decode("latin-1")


def _stray_byte(b: int) -> str:
    """A byte that is not UTF-8: its cp1252 character, or U+FFFD where cp1252 has none
    (then it is neither, and :func:`repair_text` counts it as ``unrepairable``)."""
    try:
        return bytes([b]).decode("cp1252")
    except UnicodeDecodeError:
        return "\ufffd"


#: Byte-order marks of UTF-16/32, longest first (UTF-32-LE starts like UTF-16-LE); UTF-8's
#: is stripped and its text read like any UTF-8 (cp1252 bytes included).
_BOMS = ((b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
         (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"))


def _utf16_without_bom(raw: bytes) -> str | None:
    """The codec of BOM-less UTF-16 text (mostly ASCII: every other byte is NUL), or None."""
    if len(raw) < 2 or len(raw) % 2:
        return None
    even, odd = raw[0::2].count(0), raw[1::2].count(0)
    half = len(raw) // 2
    if odd >= 0.4 * half and even <= 0.1 * odd:
        return "utf-16-le"
    if even >= 0.4 * half and odd <= 0.1 * even:
        return "utf-16-be"
    return None


def decode_bytes(raw: bytes) -> tuple[str, int]:
    """Text of bytes: UTF-16 / UTF-32 by their byte-order mark, else UTF-8 (its BOM dropped)
    with the bytes that are not valid UTF-8 read as cp1252 (a file mixing both is common
    after spreadsheet round trips), and the five bytes cp1252 leaves undefined (0x81, 0x8D,
    0x8F, 0x90, 0x9D) as U+FFFD. Returns ``(text, number of bytes read as cp1252)``; a BOM
    whose encoding does not decode is a ``ValueError``."""
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            try:
                return raw[len(bom):].decode(codec), 0
            except UnicodeDecodeError as err:
                raise ValueError(f"it starts with a {codec.upper()} byte-order mark but is not {codec.upper()} "
                                 f"({err.reason} at byte {err.start + len(bom)})") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8"), 0
    except UnicodeDecodeError:
        pass
    text = raw.decode("utf-8", errors="surrogateescape")
    stray = [_stray_byte(ord(c) - 0xDC00) for c in _SURROGATE.findall(text)]
    chars = iter(stray)
    return _SURROGATE.sub(lambda m: next(chars), text), sum(c != "\ufffd" for c in stray)


def read_text_file(path: Path) -> tuple[str, int]:
    """:func:`decode_bytes` of a file, and UTF-16 without a BOM (every other byte NUL).
    Bytes that are no text (NUL bytes otherwise: an image, audio, a binary; a BOM that lies)
    are a :class:`DataError` (a ``ValueError``) naming the file and the format its bytes
    have, when they have one."""
    raw = Path(path).read_bytes()
    try:
        nul = raw.find(b"\x00")
        if nul >= 0 and not raw.startswith(tuple(bom for bom, _ in _BOMS)):
            binary = ValueError(f"it holds binary data (NUL bytes, the first at byte {nul}), not text")
            codec = _utf16_without_bom(raw)
            if codec is None:
                raise binary
            try:
                return raw.decode(codec), 0
            except UnicodeDecodeError:
                raise binary from None
        return decode_bytes(raw)
    except ValueError as err:
        found = sniff(raw)
        what = f"; its bytes are a {found.format.upper()} {found.kind}" if found else ""
        raise DataError(f"{path}: not a text file: {err}{what}; save it as UTF-8 text (re-export it) "
                        "or give it its real suffix") from None


def _fix_mojibake(match: re.Match) -> str:
    seg = match.group()
    for enc in ("cp1252", "latin-1"):
        try:
            return seg.encode(enc).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return seg


def repair_text(text: str, counts: Counter | None = None) -> str:
    """Undo the usual mis-encodings of English corpora, counting each into ``counts``.

    * ``mojibake``: UTF-8 read as cp1252 (``donâ€™t`` -> ``don’t``);
    * ``cp1252_control``: a cp1252 byte kept as a C1 control (``don\\x92t`` -> ``don’t``);
    * ``lost_apostrophe``: ``?`` or U+FFFD inside a contraction (``I?ve`` -> ``I've``), as
      in MELD's train split; other ``?`` are left alone (``Sanders?He's`` is a question);
    * ``unrepairable``: U+FFFD characters that remain (counted, kept).
    """
    counts = counts if counts is not None else Counter()
    if not text:
        return text
    if any(0xC2 <= ord(c) <= 0xF4 for c in text):
        def fix(match: re.Match) -> str:
            out = _fix_mojibake(match)
            counts["mojibake"] += out != match.group()
            return out
        text = _MOJIBAKE.sub(fix, text)
    if _C1.search(text):
        counts["cp1252_control"] += len(_C1.findall(text))
        text = _C1.sub(lambda m: _cp1252_byte(ord(m.group())), text)
    if "?" in text or "\ufffd" in text:
        text, n = _LOST_APOSTROPHE.subn("'", text)
        counts["lost_apostrophe"] += n
    if "\ufffd" in text:
        counts["unrepairable"] += text.count("\ufffd")
    return text


def normalize_text(text: str, punctuation: bool = True) -> str:
    """Collapse whitespace (MELD has line breaks and runs of spaces inside utterances) and,
    with ``punctuation``, map curly quotes, dashes and odd spaces to ASCII and ``…`` to
    ``...`` so ``don’t`` and ``don't`` are one token sequence."""
    if punctuation:
        text = text.translate(_TYPOGRAPHIC).replace("\u2026", "...")
    return _WS.sub(" ", text).strip()


def clean_text(text: Any, counts: Counter | None = None, repair: bool = True,
               normalize: bool = True) -> str:
    """``repair_text`` then ``normalize_text``; NaN/None become ``""``."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    text = str(text)
    if repair:
        text = repair_text(text, counts)
    return normalize_text(text, punctuation=normalize)


def report_repairs(counts: Counter, where: str) -> None:
    found = {k: v for k, v in counts.items() if v}
    if found:
        log.info("%s: repaired mis-encoded text: %s", where,
                 ", ".join(f"{v} {k}" for k, v in sorted(found.items())))
    if counts.get("unrepairable"):
        log.warning("%s: %d characters could not be decoded (bytes neither UTF-8 nor cp1252, or U+FFFD in the "
                    "file) and are kept as U+FFFD; re-save the file as UTF-8 from its source", where,
                    counts["unrepairable"])


def record_skipped(skips: SkipLog, skipped: dict[str, list[str]], path: Path, split: str | None = None) -> None:
    """Put the rows of ``skipped`` (``{reason: ["line 12", ...]}``) into ``skips``."""
    for reason, rows in skipped.items():
        for row in rows:
            skips.add(reason, f"{path} {row}", f"{path} {row}: {reason}; fix or delete the row", split, source=path)


def report_skipped(skipped: dict[str, list[str]], where: str, total: int) -> None:
    """One warning per reason: how many rows, which ones (first ten), out of how many."""
    for reason, rows in skipped.items():
        if rows:
            more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
            log.warning("%s: skipped %d of %d rows (%s): %s%s", where, len(rows), total, reason,
                        ", ".join(rows[:10]), more)


def read_table(path: Path, sep: str | None = None, header: bool = True) -> tuple[pd.DataFrame, int]:
    """A CSV/TSV as strings (no NaN conversion), decoded by :func:`read_text_file`.

    ``sep`` None: tab for ``.tsv``/``.tab``, else sniffed from the first lines
    (``,`` ``;`` ``\\t`` ``|``). Returns ``(frame, cp1252 bytes found)``. A file that cannot
    be parsed, is empty or has no data row is a :class:`DataError` (:func:`parse_csv`).
    """
    text, n_bytes = read_text_file(path)
    if sep is None:
        if Path(path).suffix.lower() in (".tsv", ".tab"):
            sep = "\t"
        else:
            head = "\n".join(text.splitlines()[:20])
            try:
                sep = csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
            except csv.Error:
                sep = ","
    df = parse_csv(io.StringIO(text), path, sep=sep, header=0 if header else None, dtype=str,
                   keep_default_na=False, skip_blank_lines=True)
    if header:
        df.columns = [str(c).strip() for c in df.columns]
    return df, n_bytes


_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_OPEN_QUOTE = re.compile(r"EOF inside string starting at row (\d+)")


def parse_csv(source: Any, path: str | Path, sep: str = ",", **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_csv(source, sep=sep, **kwargs)`` whose failures are a
    :class:`DataError` naming ``path``, the line and the fix; so is a table without any
    data row (an empty file, or a header alone)."""
    try:
        df = pd.read_csv(source, sep=sep, **kwargs)
    except pd.errors.EmptyDataError:
        size = Path(path).stat().st_size if Path(path).is_file() else None
        what = "empty (0 bytes)" if size == 0 else "empty (no header row, no data)"
        raise DataError(f"{path}: the table is {what}; write it again with a header row naming the "
                        "columns and one row per sample") from None
    except (pd.errors.ParserError, csv.Error, UnicodeDecodeError, ValueError) as err:
        raise DataError(csv_error_message(path, err, sep)) from None
    if len(df) == 0:
        raise DataError(f"{path}: the table has a header ({', '.join(map(str, df.columns))}) but no data row; "
                        "add one row per sample, or point the data config at the right file")
    return df


def csv_error_message(path: str | Path, err: Exception, sep: str = ",") -> str:
    """A parse error of table ``path`` as a message naming the line and the fix."""
    text = str(err)
    if isinstance(err, UnicodeDecodeError):
        return (f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); re-save the file as UTF-8 "
                "(e.g. \"CSV UTF-8\" in a spreadsheet)")
    m = _FIELDS.search(text)
    if m:
        want, line, got = m.groups()
        return (f"{path} line {line}: {got} fields where the first row has {want}; put double quotes "
                f"around fields that contain the separator {sep!r} (a quote inside a quoted field is "
                "written twice), or set data.sep to the file's separator")
    m = _OPEN_QUOTE.search(text)
    if m:
        return (f"{path} line {int(m.group(1)) + 1}: a double quote opened on this line is never closed, so "
                "the rest of the file would be one field; close it (a quote inside a quoted field is "
                "written twice: \"\")")
    return (f"{path}: cannot parse the table ({text.strip()}); check that it is a CSV/TSV with one row per "
            "sample, and data.sep")


def find_column(df: pd.DataFrame, name: str | int, path: Path, what: str) -> str | int:
    """The column called ``name`` (case- and space-insensitive), or a clear error."""
    if isinstance(name, int) or (isinstance(name, str) and name.isdigit() and name not in df.columns):
        idx = int(name)
        if idx >= len(df.columns):
            raise ValueError(f"{path}: {what} column index {idx} but the file has "
                             f"{len(df.columns)} columns")
        return df.columns[idx]
    norm = {str(c).strip().lower().replace(" ", "").replace("_", ""): c for c in df.columns}
    key = str(name).strip().lower().replace(" ", "").replace("_", "")
    if key not in norm:
        raise ValueError(f"{path}: no {what} column {name!r}; columns are {list(df.columns)}. "
                         f"Set the column name in the data config.")
    return norm[key]


# -- dataset and loaders ------------------------------------------------------------------
class TextDataset(Dataset):
    """Utterances (and optional context strings) with integer labels.

    ``ids`` (e.g. MELD's ``Sr No.``) are kept for error messages and predictions; ``aux``
    (``{task: [int]}``, e.g. MELD's sentiment) gives each sample its auxiliary labels.
    """

    def __init__(self, texts: Sequence[str], labels: Sequence[int],
                 contexts: Sequence[str] | None = None, ids: Sequence[Any] | None = None,
                 modality: str = "text", aux: dict[str, Sequence[int]] | None = None) -> None:
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        self.aux = aux_lists(aux, len(texts))
        if contexts is not None and len(contexts) != len(texts):
            raise ValueError(f"{len(contexts)} contexts for {len(texts)} texts")
        self.texts = list(texts)
        self.labels = [int(x) for x in labels]
        self.contexts = list(contexts) if contexts is not None else None
        self.ids = list(ids) if ids is not None else list(range(len(self.texts)))
        self.modality = modality
        # Character counts: a cheap, tokenizer-free proxy for the token length.
        self.lengths = [len(t) + (len(c) if self.contexts else 0)
                        for t, c in zip(self.texts, self.contexts or self.texts)]

    def __len__(self) -> int:
        return len(self.texts)

    def item_text(self, i: int) -> Any:
        if self.contexts is None:
            return self.texts[i]
        return {"text": self.texts[i], "context": self.contexts[i]}

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"inputs": {self.modality: self.item_text(i)}, "label": self.labels[i], "index": i,
                **sample_aux(self.aux, i)}


def dataset_lengths(ds: Dataset) -> list[int] | None:
    """Per-sample length proxies of a dataset (through ``Subset``), None if unknown."""
    if isinstance(ds, torch.utils.data.Subset):
        parent = dataset_lengths(ds.dataset)
        return None if parent is None else [parent[i] for i in ds.indices]
    lengths = getattr(ds, "lengths", None)
    return list(lengths) if lengths is not None else None


def dataset_texts(ds: Dataset, modality: str = "text") -> list[str]:
    """Every string of a dataset's ``modality`` (utterances; context turns are the same
    utterances again, so they are left out), for fitting tokenizers."""
    if isinstance(ds, torch.utils.data.Subset):
        if isinstance(ds.dataset, TextDataset):
            return [ds.dataset.texts[i] for i in ds.indices]
        return [_as_text(ds[i]["inputs"].get(modality)) for i in range(len(ds))]
    if isinstance(ds, TextDataset):
        return list(ds.texts)
    return [_as_text(ds[i]["inputs"].get(modality)) for i in range(len(ds))]


def _as_text(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, dict):
        return str(x.get("text", ""))
    return str(x)


class LengthBucketBatchSampler(ResumePoint, Sampler[list[int]]):
    """Batches of similar-length samples: shuffle, cut into pools of ``pool`` batches, sort
    each pool by length, batch it, shuffle the batches (``shuffle=False``: one global sort,
    deterministic). Padding, and so transformer compute, falls to near the true token count.
    ``seed_samples``: batches of ``(index, seed)`` pairs for :class:`SeededSamples`, the seed
    fixed by the sample's position in the epoch; :meth:`resume_at` counts batches.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int = 0,
                 pool: int = 50, epoch_fn=None, seed_samples: bool = False) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size, self.shuffle, self.seed, self.pool = batch_size, shuffle, seed, pool
        self.epoch = 0
        # The trainer's epoch (exact resumption, see emomm.data.core.sampling); None: count iterations.
        self.epoch_fn = epoch_fn
        self.seed_samples = seed_samples

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list]:
        n, bs = len(self.lengths), self.batch_size
        if not self.shuffle:
            order = np.argsort(-self.lengths, kind="stable")
            yield from (order[i:i + bs].tolist() for i in range(0, n, bs))
            return
        epoch = self.epoch_fn() if self.epoch_fn is not None else None
        if epoch is None:
            epoch = self.epoch
            self.epoch += 1
        else:
            seed_epoch_globals(self.seed, epoch)
        rng = np.random.default_rng([self.seed, epoch])
        idx = rng.permutation(n)
        batches = []
        step = bs * self.pool
        for start in range(0, n, step):
            chunk = idx[start:start + step]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + bs].tolist() for i in range(0, len(chunk), bs)]
        batches = [batches[j] for j in rng.permutation(len(batches))]
        if self.seed_samples:
            seeds = iter(sample_seeds(self.seed, epoch, n).tolist())
            batches = [[(i, next(seeds)) for i in b] for b in batches]
        yield from batches[self._start(epoch):]


class TextDataModule(EmotionDataModule):
    """Base of the text datasets: length-bucketed loaders and the text preprocessing record.

    Args:
        bucket_by_length: batch similar lengths together (off: plain shuffled batches).
        repair / normalize: text cleaning (see :func:`clean_text`).
    """

    def __init__(self, bucket_by_length: bool = True, repair: bool = True,
                 normalize: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bucket_by_length = bucket_by_length
        self.repair, self.normalize = repair, normalize
        self.repairs: dict[str, dict[str, int]] = {}

    #: What :attr:`skipped` groups the rows left out by: ``split`` or ``source`` (the table).
    skip_key = "split"

    @property
    def skipped(self) -> dict[str, dict[str, int]]:
        """``{split or table: {reason: rows}}`` of the rows left out while reading (:attr:`skips`)."""
        return self.skips.count_by(self.skip_key)

    @property
    def preprocessing(self) -> dict[str, Any]:
        return {"text": {"repair": self.repair, "normalize": self.normalize}}

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = self.splits[split]
        lengths = dataset_lengths(ds) if self.bucket_by_length else None
        trainer = getattr(self, "trainer", None)
        if lengths is None or (trainer is not None and trainer.world_size > 1):
            # (several processes: Lightning's distributed sampler shards plain batches)
            return super()._loader(split, shuffle)
        bs = self.batch_size if split == "train" else self.eval_batch_size
        train = split == "train" and shuffle
        sampler = LengthBucketBatchSampler(lengths, bs, shuffle, self.seed, epoch_fn=self._trainer_epoch if train else None,
                                           seed_samples=train)
        return ResumableDataLoader(SeededSamples(ds) if train else ds, batch_sampler=sampler,
                                   num_workers=self.num_workers, pin_memory=self.pin_memory,
                                   persistent_workers=self.num_workers > 0, collate_fn=collate_samples,
                                   progress_fn=self._train_progress if train else None)
