"""Generators of the documentation pages that must not drift from the code: `python -m docs.gen`."""
