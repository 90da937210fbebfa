"""Helpers for the entry points: environment, instantiation, run artifacts."""
