"""What a dataset leaves out while loading, recorded once: :class:`SkipLog`.

Every DataModule keeps one (``dm.skips``). Readers add an entry for each file, table row
or folder they leave out, with its split when known, a reason and a message naming the item
and the fix. The warnings of training, the checks of ``setup`` (an empty split says how many
of its files were left out and why) and the report of ``python -m emomm.validate`` (its
"unreadable" column) all read this log, so they count the same things.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Iterator

#: Reasons that mean something to the checks; other reasons are free text (a CSV row's
#: "empty text", "label outside the set"...).
UNREADABLE = "unreadable"                # a media file that cannot be decoded (or is over a size bound)
UNREADABLE_FOLDER = "unreadable folder"  # a folder that cannot be listed: its files are unknown
MALFORMED_NAME = "malformed name"        # a file whose name does not follow the dataset's convention
NO_FACE = "no face"                      # a clip or photo where the detector found no face
NO_AUDIO = "no audio"                    # a clip whose sound cannot be read (or that has none)

_ANY = object()


@dataclass(frozen=True)
class Skip:
    """One thing left out. ``item``: the file or folder (or ``FILE line N`` for a table row);
    ``message``: names the item and the fix; ``split``: None when not known (a folder left out
    before the speakers were split); ``source``: the table a row came from."""

    reason: str
    item: str
    message: str
    split: str | None = None
    source: str | None = None


def folder_message(err: OSError) -> str:
    """The message of a folder that cannot be listed (``err`` from ``os.scandir``/``os.walk``,
    or from examining an entry of a folder that can be listed but not entered)."""
    path = err.filename if err.filename is not None else "?"
    return (f"{path}: cannot be read ({err.strerror or err}), so it is left out with all it holds; "
            f"make it readable (chmod -R u+rX '{path}') or move it out of the data folder")


class SkipLog:
    """An ordered list of :class:`Skip` with the few queries the checks need."""

    def __init__(self) -> None:
        self.entries: list[Skip] = []

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Skip]:
        return iter(self.entries)

    def clear(self) -> None:
        self.entries.clear()

    def add(self, reason: str, item: str | os.PathLike, message: str | None = None,
            split: str | None = None, source: str | os.PathLike | None = None) -> None:
        self.entries.append(Skip(reason, str(item), message or f"{item}: {reason}", split,
                                 None if source is None else str(source)))

    def extend(self, entries: Iterable[Skip]) -> None:
        self.entries.extend(entries)

    def add_folder_errors(self, errors: Iterable[OSError], split: str | None = None) -> None:
        """Record each folder that could not be listed (once per folder)."""
        seen = {s.item for s in self.select(UNREADABLE_FOLDER)}
        for err in errors:
            path = str(err.filename)
            if path not in seen:
                seen.add(path)
                self.add(UNREADABLE_FOLDER, path, folder_message(err), split)

    def select(self, reason: str | None = None, split: object = _ANY) -> list[Skip]:
        """Entries of ``reason`` (None: all) in ``split`` (default: any split, None included)."""
        return [s for s in self.entries if (reason is None or s.reason == reason)
                and (split is _ANY or s.split == split)]

    def count_by(self, key: str) -> dict[str | None, dict[str, int]]:
        """``{entry.<key>: {reason: n}}``, e.g. ``count_by("split")``."""
        out: dict[str | None, Counter] = {}
        for s in self.entries:
            out.setdefault(getattr(s, key), Counter())[s.reason] += 1
        return {k: dict(v) for k, v in out.items()}

    def summary(self, entries: Iterable[Skip] | None = None) -> str:
        """``"21 unreadable, 1 malformed name"`` of ``entries`` (default: all)."""
        counts = Counter(s.reason for s in (self.entries if entries is None else entries))
        return ", ".join(f"{n} {reason}" for reason, n in counts.most_common())
