"""Shared fixtures and settings for the test suite.

- Hypothesis: a ``ci`` profile (no deadline, few examples, derandomized so every run draws the
  same examples) is loaded unless ``HYPOTHESIS_PROFILE`` names another (``dev`` draws more,
  at random: ``HYPOTHESIS_PROFILE=dev pytest``).
- ``@pytest.mark.cuda`` tests are skipped, with a reason, when no CUDA device is present.
- ``rng``: a seeded ``numpy.random.Generator``; ``make_rnn_params``: random RNN parameters;
  ``assert_grad``: compare an analytic with a numerical gradient; ``assert_unchanged``: compare
  nested dicts/tuples of arrays exactly (for "no input is modified"). The last three are
  session-scoped so that ``@given`` tests can use them.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from rnn_ref.numpy import rel_error

# The grading round trip's shared tests live in tests/grading_course.py: rewrite their asserts.
pytest.register_assert_rewrite("grading_course")

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=50,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

SEED = 20240601


def pytest_collection_modifyitems(config, items):
    """Skip ``cuda``-marked tests when torch sees no CUDA device (torch imported only if needed)."""
    cuda_items = [item for item in items if item.get_closest_marker("cuda") is not None]
    if not cuda_items:
        return
    try:
        import torch

        available = torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a dependency
        available = False
    if available:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device: torch.cuda.is_available() is False")
    for item in cuda_items:
        item.add_marker(skip)


def random_rnn_params(
    rng: np.random.Generator,
    D: int,
    H: int,
    V: int | None = None,
    dtype=np.float64,
    scale: float = 0.5,
) -> dict[str, np.ndarray]:
    """``W_xh`` (H, D), ``W_hh`` (H, H), ``b_h`` (H,) and, if ``V`` is given, ``W_hy`` (V, H),
    ``b_y`` (V,), drawn N(0, scale²/fan_in) (biases N(0, scale²)) so tanh stays unsaturated."""
    p = {
        "W_xh": rng.standard_normal((H, D)) * scale / np.sqrt(D),
        "W_hh": rng.standard_normal((H, H)) * scale / np.sqrt(H),
        "b_h": rng.standard_normal(H) * scale,
    }
    if V is not None:
        p["W_hy"] = rng.standard_normal((V, H)) * scale / np.sqrt(H)
        p["b_y"] = rng.standard_normal(V) * scale
    return {k: v.astype(dtype) for k, v in p.items()}


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh Generator with a fixed seed for each test."""
    return np.random.default_rng(SEED)


@pytest.fixture(scope="session")
def make_rnn_params():
    """The function :func:`random_rnn_params` (session-scoped, so usable inside ``@given``)."""
    return random_rnn_params


# rel_error of a correct float64 gradient is ~1e-9 on the tests' small, unsaturated problems; a
# sign error gives 1. An entry that is itself tiny (say 1e-6, far back in time) can have rel_error
# ~1e-6 from rounding noise alone (absolute error ~1e-11), so an absolute error far below the
# gradient's scale is accepted too.
GRAD_RTOL = 1e-7
GRAD_ATOL = 1e-9


def check_grad(analytic, numeric, name: str, tol: float = GRAD_RTOL, atol: float = GRAD_ATOL):
    """Assert ``rel_error(analytic, numeric) < tol`` or ``max|analytic - numeric| <
    atol * max(1, max|numeric|)``; the message names the gradient and both errors."""
    analytic, numeric = np.asarray(analytic), np.asarray(numeric)
    assert analytic.shape == numeric.shape, f"{name}: shape {analytic.shape} != {numeric.shape}"
    err = rel_error(analytic, numeric)
    abs_err = float(np.max(np.abs(analytic - numeric), initial=0.0))
    scale = max(1.0, float(np.max(np.abs(numeric), initial=0.0)))
    assert err < tol or abs_err < atol * scale, (
        f"{name}: rel_error {err:.3e} >= {tol:.0e} and max abs error {abs_err:.3e}"
    )


def check_unchanged(before, after, path: str = "input"):
    """Assert two nested dicts/tuples/lists of arrays are equal, element for element and dtype."""
    if isinstance(before, dict):
        assert before.keys() == after.keys(), f"{path}: keys changed"
        for k in before:
            check_unchanged(before[k], after[k], f"{path}[{k!r}]")
    elif isinstance(before, (tuple, list)):
        assert len(before) == len(after), f"{path}: length changed"
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            check_unchanged(b, a, f"{path}[{i}]")
    else:
        np.testing.assert_array_equal(after, before, strict=True, err_msg=f"{path} was modified")


@pytest.fixture(scope="session")
def assert_grad():
    """The function :func:`check_grad`."""
    return check_grad


@pytest.fixture(scope="session")
def assert_unchanged():
    """The function :func:`check_unchanged`."""
    return check_unchanged
