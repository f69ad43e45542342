"""rnn_ref.convert: from_torch / to_torch between rnn_ref params dicts and torch.nn.RNN/LSTM/GRU.

Every layer and direction of 2-layer bidirectional modules; bias summing (RNN, LSTM) and bias
keeping (GRU); bias=False; module outputs unchanged by a round trip; errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import rnn_ref.numpy as rnp
from rnn_ref.convert import from_torch, to_torch
from rnn_ref.torch import RNN as RefRNN

D, H = 3, 4
GATES = {nn.RNN: 1, nn.LSTM: 4, nn.GRU: 3}
KEYS = {
    nn.RNN: {"W_xh", "W_hh", "b_h"},
    nn.LSTM: {"W_x", "W_h", "b"},
    nn.GRU: {"W_x", "W_h", "b_x", "b_h"},
}
CLASSES = pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU], ids=lambda c: c.__name__)
PLACES = [(layer, rev) for layer in (0, 1) for rev in (False, True)]


def make(cls, seed, bias=True, dtype=torch.float64, **kw):
    """A 2-layer bidirectional module, batch-first, seeded torch initialisation."""
    torch.manual_seed(seed)
    kw = {"num_layers": 2, "bidirectional": True, **kw}
    return cls(D, H, bias=bias, batch_first=True, dtype=dtype, **kw)


def tensor(module, name, layer, rev):
    return getattr(module, f"{name}_l{layer}{'_reverse' if rev else ''}").detach().numpy()


def outputs(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 5, D, generator=g, dtype=torch.float64)
    with torch.no_grad():
        out, state = module(x)
    return out, state


def assert_outputs_equal(m1, m2, tol=1e-12):
    out1, s1 = outputs(m1)
    out2, s2 = outputs(m2)
    torch.testing.assert_close(out2, out1, rtol=tol, atol=tol)
    s1 = s1 if isinstance(s1, tuple) else (s1,)
    s2 = s2 if isinstance(s2, tuple) else (s2,)
    for a, b in zip(s2, s1, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@CLASSES
@pytest.mark.parametrize(("layer", "rev"), PLACES)
def test_from_torch_values_every_layer_and_direction(cls, layer, rev):
    m = make(cls, 0)
    p = from_torch(m, layer=layer, reverse=rev)
    assert set(p) == KEYS[cls]
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float64 for v in p.values())
    kx, kh = ("W_xh", "W_hh") if cls is nn.RNN else ("W_x", "W_h")
    G, D_in = GATES[cls], D if layer == 0 else 2 * H  # layer 1 reads both directions of layer 0
    assert p[kx].shape == (G * H, D_in) and p[kh].shape == (G * H, H)
    np.testing.assert_array_equal(p[kx], tensor(m, "weight_ih", layer, rev))
    np.testing.assert_array_equal(p[kh], tensor(m, "weight_hh", layer, rev))
    b_ih, b_hh = tensor(m, "bias_ih", layer, rev), tensor(m, "bias_hh", layer, rev)
    if cls is nn.GRU:  # both kept: b_hn sits inside r * (W_hn h + b_hn)
        np.testing.assert_array_equal(p["b_x"], b_ih)
        np.testing.assert_array_equal(p["b_h"], b_hh)
    else:  # only the sum enters the equations
        np.testing.assert_array_equal(p["b_h" if cls is nn.RNN else "b"], b_ih + b_hh)
    # copies: changing the dict leaves the module alone
    p[kx][...] = 0.0
    assert np.any(tensor(m, "weight_ih", layer, rev) != 0)


@CLASSES
def test_round_trip_every_layer_and_direction(cls):
    src, dst = make(cls, 0), make(cls, 1)
    for layer, rev in PLACES:
        p = from_torch(src, layer, rev)
        assert to_torch(p, dst, layer, rev) is dst
        back = from_torch(dst, layer, rev)
        assert back.keys() == p.keys()
        for k in p:
            np.testing.assert_array_equal(back[k], p[k], err_msg=f"{k} at layer {layer} rev {rev}")
        b_ih, b_hh = tensor(dst, "bias_ih", layer, rev), tensor(dst, "bias_hh", layer, rev)
        src_ih, src_hh = tensor(src, "bias_ih", layer, rev), tensor(src, "bias_hh", layer, rev)
        if cls is nn.GRU:  # both biases kept as they were
            np.testing.assert_array_equal(b_ih, src_ih)
            np.testing.assert_array_equal(b_hh, src_hh)
        else:  # the sum goes into bias_ih, bias_hh is zeroed
            np.testing.assert_array_equal(b_ih, src_ih + src_hh)
            np.testing.assert_array_equal(b_hh, 0.0)
    # the module computes the same function (only the bias split changed, so up to rounding)
    assert_outputs_equal(src, dst)


@CLASSES
def test_round_trip_into_float32_module_casts(cls):
    src, dst = make(cls, 0), make(cls, 1, dtype=torch.float32)
    for layer, rev in PLACES:
        to_torch(from_torch(src, layer, rev), dst, layer, rev)
    assert all(p.dtype == torch.float32 for p in dst.parameters())
    p32, p64 = from_torch(dst, 1, True), from_torch(src, 1, True)
    for k in p64:
        assert p32[k].dtype == np.float32
        np.testing.assert_allclose(p32[k], p64[k], rtol=1e-6, atol=1e-7)


@CLASSES
def test_only_the_named_layer_and_direction_change(cls):
    src, dst = make(cls, 0), make(cls, 1)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    to_torch(from_torch(src, 1, True), dst, layer=1, reverse=True)
    for k, v in dst.state_dict().items():
        if k.endswith("_l1_reverse"):
            assert not torch.equal(v, before[k]), k
        else:
            assert torch.equal(v, before[k]), k


def test_numpy_bidirectional_two_layer_rnn_matches_torch():
    # Running rnn_ref.numpy layer by layer and direction by direction, with the weights
    # from_torch gives for each, reproduces torch's 2-layer bidirectional RNN.
    m = make(nn.RNN, 3)
    x = np.random.default_rng(0).standard_normal((2, 5, D))
    h0 = np.zeros((2, H))
    inp = x
    for layer in (0, 1):
        fwd, _ = rnp.rnn_forward(inp, h0, from_torch(m, layer, False))
        bwd, _ = rnp.rnn_forward(inp[:, ::-1], h0, from_torch(m, layer, True))
        inp = np.concatenate([fwd, bwd[:, ::-1]], axis=2)
    with torch.no_grad():
        out, _ = m(torch.from_numpy(x))
    np.testing.assert_allclose(inp, out.numpy(), rtol=1e-10, atol=1e-12)


@CLASSES
def test_bias_false_modules(cls):
    src, dst = make(cls, 0, bias=False), make(cls, 1, bias=False)
    for layer, rev in PLACES:
        p = from_torch(src, layer, rev)
        for k in KEYS[cls] - {"W_xh", "W_hh", "W_x", "W_h"}:
            np.testing.assert_array_equal(p[k], np.zeros(GATES[cls] * H))
        to_torch(p, dst, layer, rev)
        # bias keys may also be left out altogether
        no_bias = {k: v for k, v in p.items() if k.startswith("W")}
        to_torch(no_bias, dst, layer, rev)
    assert_outputs_equal(src, dst, tol=0.0)
    p = from_torch(src)
    bias_key = sorted(KEYS[cls] - {"W_xh", "W_hh", "W_x", "W_h"})[0]
    with pytest.raises(
        ValueError, match=rf"module has bias=False but params\['{bias_key}'\] is not"
    ):
        to_torch({**p, bias_key: np.ones(GATES[cls] * H)}, dst)


def test_bias_true_module_from_bias_false_params():
    src, dst = make(nn.LSTM, 0, bias=False), make(nn.LSTM, 1, bias=True)
    for layer, rev in PLACES:
        to_torch(from_torch(src, layer, rev), dst, layer, rev)
    assert all(torch.all(p == 0) for n, p in dst.named_parameters() if n.startswith("bias"))
    assert_outputs_equal(src, dst, tol=0.0)


def test_rnn_ref_torch_module_round_trip():
    torch.manual_seed(0)
    ref = nn.RNN(D, H, batch_first=True, dtype=torch.float64)
    mine = RefRNN(D, H, dtype=torch.float64)
    to_torch(from_torch(ref), mine)
    x = torch.randn(2, 3, D, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(mine(x)[0], ref(x)[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mine.bias_hh_l0, torch.zeros(H, dtype=torch.float64))


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_wrong_module_type():
    with pytest.raises(TypeError, match=r"expected torch.nn.RNN, LSTM or GRU .*got Linear"):
        from_torch(nn.Linear(3, 4))
    with pytest.raises(TypeError, match=r"got Linear"):
        to_torch({}, nn.Linear(3, 4))


@CLASSES
def test_layer_out_of_range_and_reverse_on_unidirectional(cls):
    m = make(cls, 0)
    for bad in (2, -1):
        with pytest.raises(ValueError, match=rf"layer must be in \[0, 2\), got {bad}"):
            from_torch(m, layer=bad)
        with pytest.raises(ValueError, match=rf"layer must be in \[0, 2\), got {bad}"):
            to_torch(from_torch(m), m, layer=bad)
    uni = make(cls, 0, bidirectional=False, num_layers=1)
    with pytest.raises(ValueError, match=r"reverse=True needs a bidirectional module"):
        from_torch(uni, reverse=True)
    with pytest.raises(ValueError, match=r"reverse=True needs a bidirectional module"):
        to_torch(from_torch(uni), uni, reverse=True)
    with pytest.raises(ValueError, match=r"layer must be in \[0, 1\), got 1"):
        from_torch(uni, layer=1)


def test_wrong_shape_names_key_and_parameter():
    lstm = make(nn.LSTM, 0)
    p = from_torch(lstm)
    with pytest.raises(
        ValueError,
        match=r"params\['W_x'\] has shape \(12, 3\) but weight_ih_l0 of this LSTM needs \(16, 3\)",
    ):
        to_torch({**p, "W_x": p["W_x"][:12]}, lstm)
    # layer 1 reads 2H = 8 features: layer 0's W_x does not fit there
    with pytest.raises(ValueError, match=r"params\['W_x'\] has shape \(16, 3\) but weight_ih_l1 "):
        to_torch(p, lstm, layer=1)
    gru = make(nn.GRU, 0)
    with pytest.raises(
        ValueError, match=r"params\['b_h'\] has shape \(4,\) but bias_hh_l0_reverse"
    ):
        to_torch({**from_torch(gru), "b_h": np.zeros(H)}, gru, reverse=True)


def test_missing_key():
    rnn = make(nn.RNN, 0)
    p = from_torch(rnn)
    with pytest.raises(KeyError, match=r"params for a RNN is missing \['W_hh'\]"):
        to_torch({k: v for k, v in p.items() if k != "W_hh"}, rnn)
    with pytest.raises(KeyError, match=r"missing \['b_h'\]"):  # bias=True needs the bias
        to_torch({k: v for k, v in p.items() if k != "b_h"}, rnn)
    with pytest.raises(KeyError, match=r"params for a GRU is missing \['b_x'\]"):
        to_torch(
            {k: v for k, v in from_torch(make(nn.GRU, 0)).items() if k != "b_x"}, make(nn.GRU, 1)
        )
    # an LSTM's params are not an RNN's
    with pytest.raises(KeyError, match=r"missing \['W_xh', 'W_hh', 'b_h'\]"):
        to_torch(from_torch(make(nn.LSTM, 0)), rnn)


def test_lstm_with_projection_is_refused():
    lstm = nn.LSTM(D, H, proj_size=2, batch_first=True)
    with pytest.raises(ValueError, match=r"LSTM with proj_size > 0 has no rnn_ref equivalent"):
        from_torch(lstm)
    with pytest.raises(ValueError, match=r"proj_size > 0"):
        to_torch(from_torch(make(nn.LSTM, 0)), lstm)


def test_relu_rnn_is_refused():
    with pytest.raises(ValueError, match="nonlinearity='relu'"):
        from_torch(torch.nn.RNN(2, 3, nonlinearity="relu"))


def test_to_torch_checks_everything_before_copying():
    m = torch.nn.GRU(2, 3, dtype=torch.float64)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    params = from_torch(m)
    params = {k: v + 1.0 for k, v in params.items()}
    params["b_h"] = np.zeros(4)  # the last one copied is wrong
    with pytest.raises(ValueError, match="b_h"):
        to_torch(params, m)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
