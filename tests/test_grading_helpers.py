"""Unit tests of rnn_ref.grading, without nbgrader: messages, guards, delegation, sealing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import rnn_ref.grading as grading
import rnn_ref.numpy as rnp
from rnn_ref.grading import (
    DelegationError,
    GradingError,
    assert_array,
    assert_close,
    guarded_call,
    trusted_reference,
)
from rnn_ref.grading import ch02_rnn as checks


def correct_forward(x, h0, params):
    h, hs = h0, []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ params["W_xh"].T + h @ params["W_hh"].T + params["b_h"])
        hs.append(h)
    return np.stack(hs, axis=1), None


def test_assert_close_names_the_first_wrong_step_and_not_the_answer():
    expected = np.arange(24.0).reshape(2, 3, 4) / 10
    actual = expected.copy()
    actual[1, 2, 3] += 0.5
    actual[0, 1, 0] += 0.01
    with pytest.raises(GradingError) as e:
        assert_close("hs", actual, expected, dims=("n", "t", "h"))
    msg = str(e.value)
    assert "hs is wrong at 2 of 24 entries" in msg
    assert "first wrong time step is t=1" in msg
    assert "largest error is 0.5 at [n=1, t=2, h=3]" in msg
    assert "2.3" not in msg  # the expected value at the worst entry is not revealed


def test_assert_close_passes_and_returns_none():
    assert assert_close("h", np.ones(3) + 1e-9, np.ones(3)) is None


@pytest.mark.parametrize(
    ("actual", "message"),
    [
        ((1.0, 2.0), "should be a NumPy array, got a tuple"),
        (np.array(["a", "b"]), "should hold numbers"),
        (np.ones((2, 1)), r"has shape \(2, 1\), expected \(2,\)"),
        (np.array([1.0, np.nan]), r"contains NaN or infinity, first at \[i0=1\]"),
    ],
)
def test_assert_close_explains_bad_outputs(actual, message):
    with pytest.raises(GradingError, match=message):
        assert_close("out", actual, np.ones(2))


def test_scalar_message_has_no_index():
    with pytest.raises(GradingError, match=r"^loss is wrong; the error is 0.5$"):
        assert_close("loss", 1.5, 1.0)


def test_guarded_call_reports_not_implemented_and_exceptions():
    def stub(*args):
        raise NotImplementedError()

    with pytest.raises(GradingError, match="not implemented yet"):
        guarded_call("rnn_forward", stub)
    with pytest.raises(GradingError, match="raised ZeroDivisionError"):
        guarded_call("f", lambda: 1 / 0)
    with pytest.raises(GradingError, match="is not a function"):
        guarded_call("rnn_forward", 3)


def test_guarded_call_keeps_warnings_off_stderr(capfd):
    def noisy():
        warnings.warn("loud", UserWarning, stacklevel=1)
        return np.exp(np.array([1e4]))

    out = guarded_call("noisy", noisy)
    assert np.isinf(out[0])
    assert capfd.readouterr().err == ""
    assert grading.last_warnings()[0] == "UserWarning: loud"


@pytest.mark.parametrize("how", ["attribute", "bound_at_import", "submodule", "caught"])
def test_delegation_to_rnn_ref_is_caught(how):
    from rnn_ref.numpy import rnn_forward as bound
    from rnn_ref.numpy.rnn import rnn_forward as sub

    def student(x, h0, params):
        if how == "attribute":
            return rnp.rnn_forward(x, h0, params)
        if how == "bound_at_import":
            return bound(x, h0, params)
        if how == "submodule":
            return sub(x, h0, params)
        try:
            return bound(x, h0, params)
        except Exception:
            return correct_forward(x, h0, params)

    with pytest.raises(DelegationError, match=r"rnn_ref\.numpy\.rnn_forward"):
        checks.check_forward(student)
    # The tripwires are gone afterwards: the reference works again.
    hs, _ = rnp.rnn_forward(np.zeros((1, 2, 3)), np.zeros((1, 4)), _params(3, 4))
    assert hs.shape == (1, 2, 4)


def test_delegation_to_torch_is_caught():
    import torch

    def student(x, h0, params):
        cell = torch.nn.RNNCell(x.shape[2], h0.shape[1], dtype=torch.float64)
        return np.stack([cell(torch.as_tensor(x[:, 0])).detach().numpy()] * x.shape[1], 1), None

    with pytest.raises(DelegationError, match=r"torch\.nn\.RNNCell\.forward"):
        checks.check_forward(student)
    assert torch.nn.RNNCell(2, 3)(torch.zeros(1, 2)).shape == (1, 3)


def test_torch_clipping_and_init_are_caught_even_when_bound_at_import():
    """clip_grad_norm_ is a decorator's closure: the function it wraps carries the tripwire."""
    import torch
    from torch.nn.utils import clip_grad_norm_ as bound_early

    def clip_late(grads):
        p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        p.grad = torch.as_tensor(grads["W"])
        torch.nn.utils.clip_grad_value_([p], 1.0)
        return {"W": p.grad.numpy()}

    def clip_early(grads):
        p = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        p.grad = torch.as_tensor(grads["W"])
        bound_early([p], 1.0)
        return {"W": p.grad.numpy()}

    def orthogonal():
        return torch.nn.init.orthogonal_(torch.empty(3, 3)).numpy()

    grads = {"W": np.array([3.0, 4.0, 0.0])}
    with pytest.raises(DelegationError, match=r"torch\.nn\.utils\.clip_grad_value_"):
        guarded_call("clip_by_value", clip_late, grads)
    with pytest.raises(DelegationError, match="clip_grad_norm_"):
        guarded_call("clip_by_norm", clip_early, grads)
    with pytest.raises(DelegationError, match=r"torch\.nn\.init\.orthogonal_"):
        guarded_call("orthogonal_init", orthogonal)
    # Afterwards torch works again, through both bindings.
    assert np.allclose(clip_early({"W": np.array([3.0, 4.0, 0.0])})["W"], [0.6, 0.8, 0.0])
    assert np.allclose(clip_late({"W": np.array([3.0, -4.0, 0.0])})["W"], [1.0, -1.0, 0.0])


def test_torch_nn_can_be_allowed_for_pytorch_exercises():
    import torch

    def uses_lstm(x):
        m = torch.nn.LSTM(2, 3, batch_first=True, dtype=torch.float64)
        return m(torch.as_tensor(x))[0].detach().numpy()

    def uses_reference(x):
        import rnn_ref.numpy

        return rnn_ref.numpy.sliding_windows(x[0, :, 0], 1)

    x = np.zeros((1, 4, 2))
    with pytest.raises(DelegationError, match=r"torch\.nn\.LSTM\.forward"):
        guarded_call("f", uses_lstm, x)
    assert guarded_call("f", uses_lstm, x, torch_nn=True).shape == (1, 4, 3)
    with pytest.raises(DelegationError, match="sliding_windows"):
        guarded_call("f", uses_reference, x, torch_nn=True)


def test_weight_mapping_of_rnn_ref_convert_is_a_tripwire():
    import torch

    def load(params):
        from rnn_ref.convert import to_torch

        m = torch.nn.RNN(2, 3, batch_first=True, dtype=torch.float64)
        to_torch(params, m)
        return m.weight_ih_l0.detach().numpy()

    rng = np.random.default_rng(0)
    params = {k: rng.normal(size=v.shape) for k, v in _params(2, 3).items()}
    with pytest.raises(DelegationError, match=r"rnn_ref\.convert\.to_torch"):
        guarded_call("load", load, params, torch_nn=True)
    assert np.array_equal(load(params), params["W_xh"])


def test_reference_classes_cannot_be_constructed_used_or_subclassed():
    from rnn_ref.numpy import EarlyStopping as Bound

    class Mine(Bound):  # a subclass inherits the tripwired methods
        pass

    def construct():
        return Bound(patience=2).step(1.0)

    def subclass():
        return Mine(patience=2).step(1.0)

    def torch_module():
        import torch

        import rnn_ref.torch

        return rnn_ref.torch.LSTM(2, 3)(torch.zeros(1, 4, 2))[0].shape

    for fn in (construct, subclass):
        with pytest.raises(DelegationError, match=r"rnn_ref\.numpy\.EarlyStopping\.__init__"):
            guarded_call("f", fn)
    with pytest.raises(DelegationError, match=r"rnn_ref\.torch\.LSTM\.forward"):
        guarded_call("f", torch_module, torch_nn=True)
    # Outside a check the classes work.
    assert construct() is False and subclass() is False
    assert torch_module() == (1, 4, 3)


def test_autograd_can_be_forbidden():
    import torch

    def uses_autograd():
        x = torch.ones(2, requires_grad=True)
        (x * x).sum().backward()
        return x.grad.numpy()

    with pytest.raises(DelegationError, match="backward"):
        guarded_call("dx", uses_autograd, autograd=True)
    assert guarded_call("dx", uses_autograd).tolist() == [2.0, 2.0]


def test_rebound_numpy_is_restored_before_checking():
    saved = np.allclose, np.testing.assert_allclose, np.abs
    try:
        np.allclose = lambda *a, **k: True
        np.testing.assert_allclose = lambda *a, **k: None
        np.abs = lambda a: np.zeros_like(a)

        def zeros(x, h0, params):
            return np.zeros((x.shape[0], x.shape[1], h0.shape[1])), None

        with pytest.raises(GradingError, match="hs is wrong"):
            checks.check_forward(zeros)
        assert np.allclose is saved[0] and np.abs is saved[2]
    finally:
        np.allclose, np.testing.assert_allclose, np.abs = saved


def test_grading_modules_are_sealed():
    with pytest.raises(AttributeError, match="read-only"):
        grading.assert_close = lambda *a, **k: None
    with pytest.raises(AttributeError, match="read-only"):
        checks.check_forward = lambda f: None
    with pytest.raises(AttributeError, match="read-only"):
        del grading.assert_array


def test_trusted_reference_ignores_patches_to_rnn_ref(monkeypatch):
    monkeypatch.setattr(rnp, "rnn_forward", correct_forward)
    ref = trusted_reference("rnn_ref.numpy")
    assert ref is not rnp and ref.rnn_forward is not rnp.rnn_forward
    assert ref.rnn_forward.__module__.startswith("_rnn_ref_trusted_")


def test_checks_accept_a_correct_implementation():
    checks.check_forward(correct_forward)


def test_checks_insist_on_out_cache_pairs():
    with pytest.raises(GradingError, match=r"should return \(hs, cache\)"):
        checks.check_forward(lambda x, h0, p: correct_forward(x, h0, p)[0])


def test_checks_catch_in_place_modification():
    def mutates(x, h0, params):
        out = correct_forward(x, h0, params)
        x *= 2
        return out

    with pytest.raises(GradingError, match="modified its input x in place"):
        checks.check_forward(mutates)


def test_assert_array_wants_an_array():
    assert assert_array("h", np.array([[1, 2]]), (1, 2)).shape == (1, 2)
    with pytest.raises(GradingError, match="should be a NumPy array, got a list"):
        assert_array("h", [[1.0, 2.0]], (1, 2))


def _params(D, H):
    return {"W_xh": np.zeros((H, D)), "W_hh": np.zeros((H, H)), "b_h": np.zeros(H)}


def test_the_case_is_named_in_a_failed_check_but_not_in_a_delegation():
    from rnn_ref.grading._cases import array_in_case, call_in_case, pair

    with pytest.raises(
        GradingError, match=r"^h has shape \(3, 2\), expected \(2, 3\) \(case: N=2, T=1\)$"
    ):
        array_in_case("h", np.zeros((3, 2)), (2, 3), "N=2, T=1")
    with pytest.raises(GradingError, match=r"\(seed 7\)$") as e:
        array_in_case("h", np.zeros((3, 2)), (2, 3), "seed 7", prefix="")
    assert "case:" not in str(e.value)
    assert array_in_case("h", np.ones((2, 3)), (2, 3), "ok").shape == (2, 3)

    def broken(x):
        raise IndexError("index 3 is out of bounds")

    with pytest.raises(GradingError, match=r"IndexError.*\(case: T=1\)$"):
        call_in_case("f", broken, np.zeros(2), context="T=1")

    def delegates(x, h0, params):
        return rnp.rnn_forward(x, h0, params)

    x, h0 = np.zeros((1, 2, 3)), np.zeros((1, 4))
    params = {"W_xh": np.zeros((4, 3)), "W_hh": np.zeros((4, 4)), "b_h": np.zeros(4)}
    with pytest.raises(DelegationError) as e:
        call_in_case("rnn_forward", delegates, x, h0, params, context="T=2")
    assert "case:" not in str(e.value)

    seen = []
    call_in_case("f", abs, -2, context="c", guard=lambda *a, **k: seen.append((a, k)))
    assert seen == [(("f", abs, -2), {"autograd": False})]

    assert pair("f", (1, 2), "h, cache") == (1, 2)
    with pytest.raises(
        GradingError, match=r"^f should return \(h, cache\), a tuple of two; got a tuple of 3$"
    ):
        pair("f", (1, 2, 3), "h, cache")
    with pytest.raises(GradingError, match=r"got ndarray \(case: N=1\)$"):
        pair("f", np.zeros(2), "h, cache", "N=1")


def test_shared_case_helpers_are_sealed():
    import rnn_ref.grading._cases as cases

    with pytest.raises(AttributeError, match="read-only"):
        cases.assert_array = lambda *a: None


def test_expected_is_the_trusted_reference_or_none_while_recording(monkeypatch):
    from rnn_ref.grading import _guard
    from rnn_ref.grading._cases import expected

    x = np.arange(10.0)
    np.testing.assert_array_equal(
        expected("sliding_windows", x, 3, 1)[0], rnp.sliding_windows(x, 3, 1)[0]
    )
    monkeypatch.setenv(_guard._record.RECORD_DIR_ENV, "/nonexistent")  # a student's kernel
    assert _guard.recording() and expected("sliding_windows", x, 3, 1) is None
