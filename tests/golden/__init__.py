"""Golden outputs recorded before issue 43's redesign (see record.py) and the code that
reruns the same seeded runs for tests/test_golden.py."""
