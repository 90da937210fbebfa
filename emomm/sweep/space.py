"""Search spaces in Hydra's own override grammar, turned into Optuna distributions.

``hydra.sweeper.params`` (and sweep overrides on the command line) use the syntax Hydra
users already know:

==========================================  ===============================================
``key: choice(a, b, c)`` or ``a,b,c``        categorical
``key: interval(1e-4, 1e-2)``                uniform float
``key: tag(log, interval(1e-4, 1e-2))``      log-uniform float
``key: tag(int, interval(16, 256))``         integer (``tag(int, log, ...)``: log-uniform)
``key: range(1, 5)``                          integer 1..4 (Hydra's stop is exclusive)
``key: range(0.0, 0.5, step=0.1)``            float on a grid 0.0..0.4
``key: 3``                                    fixed: passed to every trial unchanged
==========================================  ===============================================
"""
from __future__ import annotations

from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep


def parse_space(params: dict[str, Any] | None, arguments: list[str]) -> tuple[dict[str, Any], list[str]]:
    """``(distributions by key, fixed overrides)`` from the config's ``params`` and the
    command line's ``arguments`` (the command line wins for a key given in both).

    Fixed overrides are the non-sweep command-line arguments (``data.root=...``): Hydra
    recomposes every job from the primary config, so each trial must carry them again.
    """
    parser = OverridesParser.create()
    lines = [f"{k}={v}" for k, v in (params or {}).items()] + list(arguments)
    space: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    for o in parser.parse_overrides(lines):
        key = o.get_key_element()
        space.pop(key, None), fixed.pop(key, None)
        if o.is_sweep_override():
            space[key] = to_distribution(o)
        else:
            fixed[key] = f"{key}={o.get_value_element_as_str()}"
    return space, list(fixed.values())


def to_distribution(o: Override) -> Any:
    """One sweep override -> an ``optuna.distributions`` object."""
    from optuna import distributions as D

    v = o.value()
    key = o.get_key_element()
    if isinstance(v, ChoiceSweep):
        choices = [c for c in v.list]
        for c in choices:
            if not isinstance(c, (str, int, float, bool)) and c is not None:
                raise ValueError(f"{key}: choice values must be numbers, strings, booleans or null, got {c!r}")
        return D.CategoricalDistribution(choices)
    if isinstance(v, RangeSweep):
        start, stop, step = v.start, v.stop, v.step
        if all(float(x).is_integer() for x in (start, stop, step)):
            return D.IntDistribution(int(start), int(stop) - int(step), step=int(step))
        n = int(round((stop - start) / step))
        return D.FloatDistribution(start, start + (n - 1) * step, step=step)
    if isinstance(v, IntervalSweep):
        log = "log" in v.tags
        if "int" in v.tags:
            return D.IntDistribution(int(v.start), int(v.end), log=log)
        return D.FloatDistribution(float(v.start), float(v.end), log=log)
    raise ValueError(f"{key}: unsupported sweep {o.input_line!r}; use choice(), range(), interval() "
                     "or tag(log, interval())")


def to_override(key: str, value: Any) -> str:
    """A sampled value as a Hydra override (``null`` for None, lower-case booleans)."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = str(value).lower()
    else:
        text = str(value)
    return f"{key}={text}"
