"""Every docstring example in the package runs and prints what it says."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import matdiff

# (``matdiff.__main__`` runs the command when imported)
MODULES = sorted(m.name for m in pkgutil.walk_packages(matdiff.__path__, "matdiff.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    if name == "matdiff.compile.prefetch":  # Numba's intrinsic: imported by kernels only
        pytest.importorskip("numba")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"


def test_the_package_has_examples() -> None:
    total = sum(len(doctest.DocTestFinder().find(importlib.import_module(n))) for n in MODULES)
    assert total >= 40
