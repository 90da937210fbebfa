"""Uploads are typed from their bytes by :mod:`emomm.media.sniff` (shared with the predict
CLI); re-exported here for the app."""
from emomm.media.sniff import SUFFIX, Sniffed, sniff

__all__ = ["SUFFIX", "Sniffed", "sniff"]
