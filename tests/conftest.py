"""Test hygiene shared by every test module: floating-point errors raise, seeded generators, markers."""
import numpy as np
import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a test that takes more than ~10 s (deselect with -m 'not slow')")


@pytest.fixture(autouse=True)
def _raise_on_float_errors():
    """Overflow, division by zero and invalid operations in NumPy raise instead of warning.

    Underflow to zero (e.g. exp(-large) in a density) is benign and ignored, as in py-pde's conftest.
    """
    old = np.seterr(all="raise", under="ignore")
    try:
        yield
    finally:
        np.seterr(**old)


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed, so every test that draws data is reproducible."""
    return np.random.default_rng(20240611)
