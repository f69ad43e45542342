"""rnn_ref.numpy.errata: each transcription of the seeds' code has exactly the error the errata
chapter says it has, measured against the reference code, and the exercise's locked
transcriptions compute the same as these."""

from __future__ import annotations

import nbformat
import numpy as np
import pytest
from grading_course import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_ref.numpy import (
    gru_step_forward,
    lstm_step_backward,
    lstm_step_forward,
    numerical_gradient,
    rel_error,
)
from rnn_ref.numpy._activations import sigmoid
from rnn_ref.numpy.errata import (
    seed002_mse,
    seed003_gru_step,
    seed003_lstm_step_backward,
    seed004_lstm_step,
)


def _lstm(rng, N, D, H, scale=1.0):
    params = {
        "W_x": rng.normal(size=(4 * H, D)) * scale,
        "W_h": rng.normal(size=(4 * H, H)) * scale,
        "b": rng.normal(size=4 * H) * scale,
    }
    x, h, c = rng.normal(size=(N, D)), rng.normal(size=(N, H)), rng.normal(size=(N, H))
    return x, (h, c), params


def _gru(rng, N, D, H):
    params = {
        "W_x": rng.normal(size=(3 * H, D)),
        "W_h": rng.normal(size=(3 * H, H)),
        "b_x": rng.normal(size=3 * H),
        "b_h": rng.normal(size=3 * H),
    }
    return rng.normal(size=(N, D)), rng.normal(size=(N, H)), params


def test_seed004_lstm_differs_from_the_reference_only_by_its_sigmoid_candidate_and_cell_terms():
    rng = np.random.default_rng(0)
    H = 5
    x, (h0, c0), params = _lstm(rng, 3, 4, H)
    a = x @ params["W_x"].T + h0 @ params["W_h"].T + params["b"]
    i, f = sigmoid(a[:, :H]), sigmoid(a[:, H : 2 * H])
    a_g = a[:, 2 * H : 3 * H]
    # With zero cell terms the seed's cell is the LSTM's with sigmoid(a_g) for tanh(a_g).
    h, c = seed004_lstm_step(x, (h0, c0), {**params, "W_c": np.zeros((3 * H, H))})
    (h_ref, c_ref), _ = lstm_step_forward(x, (h0, c0), params)
    np.testing.assert_allclose(c, f * c0 + i * sigmoid(a_g), atol=1e-12)
    np.testing.assert_allclose(c_ref, f * c0 + i * np.tanh(a_g), atol=1e-12)
    assert rel_error(c, c_ref) > 0.1
    # From c_0 = 0 the seed's cell and state never go negative, whatever the inputs: every
    # write i * g is positive, so a unit cannot store a sign.
    h, c = np.zeros((64, H)), np.zeros((64, H))
    seeded = {**params, "W_c": rng.normal(size=(3 * H, H))}
    for _ in range(30):
        h, c = seed004_lstm_step(rng.normal(size=(64, 4)) * 3, (h, c), seeded)
        assert (c > 0).all() and (h > 0).all()
    # The reference LSTM reaches negative cells from the same start.
    (h, c), _ = lstm_step_forward(rng.normal(size=(64, 4)) * 3, (h * 0, c * 0), params)
    assert (c < 0).any()


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(0, 10_000))
def test_seed003_lstm_backward_fails_the_gradient_check_the_reference_passes(N, D, H, seed):
    rng = np.random.default_rng(seed)
    x, (h0, c0), params = _lstm(rng, N, D, H)
    dh, dc = rng.normal(size=(N, H)), rng.normal(size=(N, H))

    def loss(x_):
        (h, c), _ = lstm_step_forward(x_, (h0, c0), params)
        return float((dh * h).sum() + (dc * c).sum())

    dx_num = numerical_gradient(loss, x)
    _, cache = lstm_step_forward(x, (h0, c0), params)
    dx_ref, _, _ = lstm_step_backward((dh, dc), cache)
    dx_seed, _, _ = seed003_lstm_step_backward((dh, dc), x, (h0, c0), params)
    assert rel_error(dx_ref, dx_num) < 1e-6
    assert rel_error(dx_seed, dx_num) > 1e-2


def test_seed003_gru_is_chos_variant_not_torchs():
    rng = np.random.default_rng(1)
    x, h_prev, params = _gru(rng, 3, 4, 5)
    h = seed003_gru_step(x, h_prev, params)
    before, _ = gru_step_forward(x, h_prev, params, reset="before")
    after, _ = gru_step_forward(x, h_prev, params, reset="after")
    np.testing.assert_allclose(h, before, atol=1e-12)  # Cho et al.'s cell, exactly
    assert rel_error(h, after) > 1e-2  # not torch.nn.GRU's
    # The two agree when the recurrent candidate term vanishes (W_hn = 0, b_hn = 0).
    zeroed = {**params, "W_h": params["W_h"].copy(), "b_h": params["b_h"].copy()}
    zeroed["W_h"][10:], zeroed["b_h"][10:] = 0, 0
    after0, _ = gru_step_forward(x, h_prev, zeroed, reset="after")
    np.testing.assert_allclose(seed003_gru_step(x, h_prev, zeroed), after0, atol=1e-12)


def test_seed002_mse_cancels_signs_and_can_be_negative():
    y = np.array([[1.0], [2.0], [3.0]])
    assert seed002_mse(y, np.array([[2.0], [1.0], [3.0]])) == 0.0  # the MSE is 2/3
    assert seed002_mse(y, y + 1.0) == -1.0  # the MSE is 1
    rng = np.random.default_rng(2)
    y, y_pred = rng.normal(size=(50, 1)), rng.normal(size=(50, 1))
    assert seed002_mse(y, y_pred) == pytest.approx(float(np.mean(y) - np.mean(y_pred)))


def _locked_function(name: str):
    """The exercise's locked transcription ``name``, executed from the released notebook."""
    nb = nbformat.read(ROOT / "exercises" / "ch17_errata" / "ch17_errata.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == name]
    namespace = {"np": np, "sigmoid": sigmoid}
    exec(cell.source, namespace)
    return namespace[name]


def test_the_exercise_transcribes_the_same_seed_code():
    rng = np.random.default_rng(3)
    x, state, params = _lstm(rng, 2, 3, 4)
    seeded = {**params, "W_c": rng.normal(size=(12, 4))}
    for a, b in zip(
        _locked_function("seed004_lstm_step")(x, state, seeded),
        seed004_lstm_step(x, state, seeded),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    dstate = (rng.normal(size=(2, 4)), rng.normal(size=(2, 4)))
    got = _locked_function("seed003_lstm_step_backward")(dstate, x, state, params)
    want = seed003_lstm_step_backward(dstate, x, state, params)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1][0], want[1][0])
    np.testing.assert_array_equal(got[2]["W_x"], want[2]["W_x"])
    x, h_prev, gparams = _gru(rng, 2, 3, 4)
    np.testing.assert_array_equal(
        _locked_function("seed003_gru_step")(x, h_prev, gparams),
        seed003_gru_step(x, h_prev, gparams),
    )
    y, y_pred = rng.normal(size=(5, 1)), rng.normal(size=(5, 1))
    assert _locked_function("seed002_mse")(y, y_pred) == seed002_mse(y, y_pred)
