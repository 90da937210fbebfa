"""Finding media files under a dataset root, symlinked folders included.

``Path.rglob`` (Python < 3.13) does not descend into symlinked folders, so a dataset whose
``Actor_NN`` folders are links into another disk looked empty. :func:`walk_files` follows
folder links and guards against link loops by visiting each real folder once, and can
report the folders it could not list (permissions) instead of passing over them in silence.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Iterable

_GONE = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)


def walk_files(root: str | Path, suffixes: Iterable[str] | None = None, hidden: bool = False,
               errors: list[OSError] | None = None) -> list[Path]:
    """Files under ``root`` at any depth, following symlinked folders, sorted.

    ``suffixes``: keep only these (lower-case, with the dot, e.g. ``{".wav", ".flac"}``);
    ``hidden=False`` drops names starting with ``.`` (macOS ``._x.wav`` forks, ``.cache``).
    A folder reached twice (a link loop, or two links to one folder) is walked once.
    Paths keep the form under ``root`` (links are not resolved), so labels read from
    folder names still work. ``errors``: a list that receives the ``OSError`` of each folder
    (or file) that could not be listed or examined, e.g. for lack of permission; without it
    they are passed over.
    """
    root = Path(root)
    wanted = {s.lower() for s in suffixes} if suffixes is not None else None
    seen: set[tuple[int, int]] = set()
    out: list[Path] = []
    onerror = errors.append if errors is not None else None
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=onerror):
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
            try:
                if stat.S_ISREG(os.stat(p).st_mode):  # follows file links
                    out.append(p)
            except OSError as err:
                if err.errno in _GONE:  # a dangling link (what Path.is_file ignores)
                    continue
                if errors is None:  # e.g. a folder that can be read but not entered (no x bit)
                    raise
                errors.append(err)
    return sorted(out)
