"""Hypothesis profiles for the random-expression tests.

Select one with the environment variable ``HYPOTHESIS_PROFILE``:

* ``dev`` (default): a few hundred examples in all, seeded, about half a minute;
* ``ci``: more examples (well over 300 across the random tests), seeded, no deadline;
* ``hunt``: many more examples, *not* derandomized (new examples on every run), for
  hunting bugs by hand; minimise what it finds and add a deterministic regression test.

``dev`` and ``ci`` are derandomized (a fixed seed), so a run is reproducible; no
profile has a deadline (symbolic differentiation of a deep tree takes a while).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large],
)

settings.register_profile("dev", max_examples=100, **_COMMON)
settings.register_profile("ci", max_examples=150, **_COMMON)
settings.register_profile("hunt", max_examples=1000, **{**_COMMON, "derandomize": False})
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _function_table_restored():
    """Functions a test (or a docstring example) adds with md.define_function are
    removed after it, so no test sees another's definitions."""
    from matdiff.expr.functions import FUNCTIONS, unregister

    before = set(FUNCTIONS)
    yield
    for name in [n for n in FUNCTIONS if n not in before]:
        unregister(name)
