"""Registry of synthetic modality generators.

A generator factory has the signature ``factory(options: dict, train: bool)`` and returns
an object with ``__call__(spec) -> Tensor`` (the model-ready sample for that modality)
and ``describe() -> dict`` (its deterministic preprocessing, stored in checkpoints).
"""
from __future__ import annotations

from typing import Callable

SYNTHETIC_MODALITIES: dict[str, Callable] = {}


def register(name: str):
    def wrap(factory):
        SYNTHETIC_MODALITIES[name] = factory
        return factory
    return wrap
