"""Finding media files under a dataset root, symlinked folders included.

``Path.rglob`` (Python < 3.13) does not descend into symlinked folders, so a dataset whose
``Actor_NN`` folders are links into another disk looked empty. :func:`walk_files` follows
folder links and guards against link loops by visiting each real folder once.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable


def walk_files(root: str | Path, suffixes: Iterable[str] | None = None, hidden: bool = False) -> list[Path]:
    """Files under ``root`` at any depth, following symlinked folders, sorted.

    ``suffixes``: keep only these (lower-case, with the dot, e.g. ``{".wav", ".flac"}``);
    ``hidden=False`` drops names starting with ``.`` (macOS ``._x.wav`` forks, ``.cache``).
    A folder reached twice (a link loop, or two links to one folder) is walked once.
    Paths keep the form under ``root`` (links are not resolved), so labels read from
    folder names still work.
    """
    root = Path(root)
    wanted = {s.lower() for s in suffixes} if suffixes is not None else None
    seen: set[tuple[int, int]] = set()
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        try:
            st = os.stat(dirpath)
        except OSError:  # a dangling link to a folder: nothing to list
            dirnames[:] = []
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            dirnames[:] = []
            continue
        seen.add(key)
        if not hidden:
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        dirnames.sort()
        for name in filenames:
            if not hidden and name.startswith("."):
                continue
            p = Path(dirpath) / name
            if wanted is not None and p.suffix.lower() not in wanted:
                continue
            if p.is_file():  # follows file links; drops dangling ones
                out.append(p)
    return sorted(out)
