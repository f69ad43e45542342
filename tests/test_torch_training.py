"""rnn_ref.torch.training: truncated BPTT in a training loop, teacher-forced and free-running
decoding, and variational dropout.

Truncated BPTT is compared with the NumPy reference (rnn_ref.numpy.truncated_bptt_grads) in
float64 through an optimizer that records the chunk gradients; the decoder is checked by
recording what it was fed; the dropout module by its masks, its gradient and eval mode.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rnn_ref.convert import to_torch
from rnn_ref.numpy import rnn_loss_and_grads, truncated_bptt_grads
from rnn_ref.torch.training import (
    VariationalDropout,
    greedy_decode,
    teacher_forcing_decode,
    train_epoch_tbptt,
)

torch.set_num_threads(1)


class RecordingOptimizer:
    """Collects the gradients seen at every ``step()`` and leaves the parameters unchanged."""

    def __init__(self, params):
        self.params = list(params)
        self.steps = []

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.steps.append([p.grad.detach().clone() for p in self.params])


def model_and_data(seed, N=3, T=7, D=2, H=4, V=3):
    rng = np.random.default_rng(seed)
    params = {
        "W_xh": rng.standard_normal((H, D)),
        "W_hh": rng.standard_normal((H, H)) * 0.5,
        "b_h": rng.standard_normal(H) * 0.5,
        "W_hy": rng.standard_normal((V, H)),
        "b_y": rng.standard_normal(V) * 0.5,
    }
    x = rng.standard_normal((N, T, D))
    targets = rng.integers(0, V, size=(N, T))
    rnn = nn.RNN(D, H, batch_first=True, dtype=torch.float64)
    to_torch({k: params[k] for k in ("W_xh", "W_hh", "b_h")}, rnn)
    head = nn.Linear(H, V, dtype=torch.float64)
    with torch.no_grad():
        head.weight.copy_(torch.tensor(params["W_hy"]))
        head.bias.copy_(torch.tensor(params["b_y"]))
    return params, x, targets, rnn, head


@pytest.mark.parametrize("k", [1, 3, 7, 10])
def test_tbptt_chunk_gradients_match_numpy_truncated_bptt(k):
    params, x, targets, rnn, head = model_and_data(0)
    N, T = targets.shape
    opt = RecordingOptimizer([*rnn.parameters(), *head.parameters()])
    loss = train_epoch_tbptt(rnn, head, torch.tensor(x), torch.tensor(targets), k, opt, None)
    ref_loss, ref_grads, _ = truncated_bptt_grads(x, np.zeros((N, 4)), targets, params, k)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    assert len(opt.steps) == -(-T // k)
    # The parameters never moved, so the chunk-length-weighted sum of the chunk gradients is the
    # truncated gradient. torch keeps two biases with the same gradient (b_h = their sum).
    lengths = [min(s + k, T) - s for s in range(0, T, k)]
    total = [sum(L / T * g[i] for L, g in zip(lengths, opt.steps, strict=True)) for i in range(6)]
    w_ih, w_hh, b_ih, b_hh, w_hy, b_y = (t.numpy() for t in total)
    np.testing.assert_allclose(b_ih, b_hh, rtol=1e-12)
    got = {"W_xh": w_ih, "W_hh": w_hh, "b_h": b_ih, "W_hy": w_hy, "b_y": b_y}
    for key, g in got.items():
        np.testing.assert_allclose(g, ref_grads[key], rtol=1e-9, atol=1e-12, err_msg=key)


def test_tbptt_with_k_at_least_T_is_one_full_bptt_step():
    params, x, targets, rnn, head = model_and_data(1)
    opt = torch.optim.SGD([*rnn.parameters(), *head.parameters()], lr=0.1)
    train_epoch_tbptt(rnn, head, torch.tensor(x), torch.tensor(targets), 50, opt, None)
    _, grads, _ = rnn_loss_and_grads(x, np.zeros((3, 4)), targets, params)
    np.testing.assert_allclose(
        rnn.weight_hh_l0.detach().numpy(), params["W_hh"] - 0.1 * grads["W_hh"], rtol=1e-10
    )
    np.testing.assert_allclose(
        head.weight.detach().numpy(), params["W_hy"] - 0.1 * grads["W_hy"], rtol=1e-10
    )


def test_tbptt_clips_each_update():
    params, x, targets, rnn, head = model_and_data(2)
    opt = RecordingOptimizer([*rnn.parameters(), *head.parameters()])
    train_epoch_tbptt(rnn, head, torch.tensor(x), torch.tensor(targets), 2, opt, 1e-3)
    for grads in opt.steps:
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        assert norm <= 1e-3 * (1 + 1e-9)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_tbptt_trains_gated_models(cls):
    torch.manual_seed(0)
    N, T, V = 8, 24, 3
    # Predict the input token of two steps ago: needs memory across chunk boundaries.
    tokens = torch.randint(0, V, (N, T))
    x = nn.functional.one_hot(tokens, V).double()
    targets = torch.roll(tokens, 2, dims=1)
    model = cls(V, 16, batch_first=True, dtype=torch.float64)
    head = nn.Linear(16, V, dtype=torch.float64)
    opt = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=0.03)
    losses = [train_epoch_tbptt(model, head, x, targets, 5, opt, 1.0) for _ in range(40)]
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]


def test_tbptt_errors():
    _, x, targets, rnn, head = model_and_data(3)
    opt = RecordingOptimizer(rnn.parameters())
    x, targets = torch.tensor(x), torch.tensor(targets)
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        train_epoch_tbptt(rnn, head, x, targets, 0, opt, 1.0)
    with pytest.raises(ValueError, match="targets must have shape"):
        train_epoch_tbptt(rnn, head, x, targets[:, :3], 2, opt, 1.0)
    with pytest.raises(ValueError, match="max_norm must be positive"):
        train_epoch_tbptt(rnn, head, x, targets, 2, opt, 0.0)


# ---------------------------------------------------------------------------------------------
# Teacher forcing and free running
# ---------------------------------------------------------------------------------------------


class SpyEmbedding(nn.Embedding):
    """An embedding that records the token ids it is fed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fed = []

    def forward(self, ids):
        self.fed.append(ids.clone())
        return super().forward(ids)


def decoder(cell_cls=nn.GRUCell, V=5, E=3, H=6, seed=0):
    torch.manual_seed(seed)
    return (
        cell_cls(E, H, dtype=torch.float64),
        nn.Linear(H, V, dtype=torch.float64),
        SpyEmbedding(V, E, dtype=torch.float64),
    )


def test_teacher_forcing_feeds_gold_tokens_and_free_running_its_own():
    cell, head, embed = decoder()
    targets = torch.tensor([[1, 2, 3, 4], [4, 3, 2, 1]])
    h0 = torch.randn(2, 6, dtype=torch.float64)
    logits, preds = teacher_forcing_decode(cell, head, embed, h0, targets, 1.0, start_token=0)
    assert logits.shape == (2, 4, 5) and preds.shape == (2, 4) and preds.dtype == torch.long
    fed = torch.stack(embed.fed, 1)
    assert torch.equal(fed, torch.tensor([[0, 1, 2, 3], [0, 4, 3, 2]]))
    assert torch.equal(preds, logits.argmax(-1))
    # A manual loop gives the same logits.
    h, ref = h0, []
    for t in range(4):
        h = cell(embed.weight[fed[:, t]], h)
        ref.append(head(h))
    torch.testing.assert_close(logits, torch.stack(ref, 1), rtol=1e-12, atol=1e-12)

    embed.fed.clear()
    logits, preds = teacher_forcing_decode(cell, head, embed, h0, targets, 0.0, start_token=2)
    fed = torch.stack(embed.fed, 1)
    assert torch.equal(fed[:, 0], torch.tensor([2, 2])) and torch.equal(fed[:, 1:], preds[:, :-1])
    assert torch.equal(greedy_decode(cell, head, embed, h0, 4, start_token=2), preds)


def test_scheduled_sampling_mixes_per_sequence_and_step_reproducibly():
    cell, head, embed = decoder(V=7)
    N, T = 64, 6
    targets = torch.randint(0, 7, (N, T))
    h0 = torch.zeros(N, 6, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    _, preds = teacher_forcing_decode(cell, head, embed, h0, targets, 0.5, g)
    fed = torch.stack(embed.fed, 1)
    g2 = torch.Generator().manual_seed(3)
    coins = torch.stack([torch.rand(N, generator=g2) for _ in range(T - 1)], 1)
    expected = torch.where(coins < 0.5, targets[:, :-1], preds[:, :-1])
    assert torch.equal(fed[:, 1:], expected)
    assert 0.3 < (coins < 0.5).double().mean() < 0.7


def test_teacher_forcing_gradients_reach_all_modules_with_lstm_cell():
    cell, head, embed = decoder(nn.LSTMCell)
    targets = torch.tensor([[1, 2, 3]])
    h0 = (torch.zeros(1, 6, dtype=torch.float64), torch.zeros(1, 6, dtype=torch.float64))
    logits, _ = teacher_forcing_decode(cell, head, embed, h0, targets, 1.0)
    nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten()).backward()
    for m in (cell, head, embed):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())
    assert greedy_decode(cell, head, embed, h0, 5).shape == (1, 5)


def test_decode_errors():
    cell, head, embed = decoder()
    h0 = torch.zeros(1, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"teacher_forcing_ratio must be in \[0, 1\]"):
        teacher_forcing_decode(cell, head, embed, h0, torch.zeros(1, 2, dtype=torch.long), 1.5)
    with pytest.raises(ValueError, match=r"targets must be \(N, T\)"):
        teacher_forcing_decode(cell, head, embed, h0, torch.zeros(2, dtype=torch.long), 1.0)
    with pytest.raises(ValueError, match="T must be an integer >= 1"):
        greedy_decode(cell, head, embed, h0, 0)


# ---------------------------------------------------------------------------------------------
# Variational dropout
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_variational_dropout_one_mask_per_sequence(p):
    drop = VariationalDropout(p, generator=torch.Generator().manual_seed(0))
    x = torch.rand(16, 9, 12, dtype=torch.float64) + 0.5  # no zeros, so y / x is the mask
    y = drop(x)
    mask = y / x
    assert torch.allclose(mask, mask[:, :1].expand_as(mask), rtol=0, atol=1e-12)
    is_zero, is_kept = mask == 0, torch.isclose(mask, torch.tensor(1 / (1 - p)).double())
    assert torch.all(is_zero | is_kept) and is_zero.any() and is_kept.any()
    # Different sequences get different masks.
    assert not torch.equal(mask[0, 0], mask[1, 0])


def test_variational_dropout_is_unbiased_eval_identity_and_has_mask_gradient():
    drop = VariationalDropout(0.3, generator=torch.Generator().manual_seed(1))
    x = torch.ones(4000, 2, 50)
    assert abs(drop(x).mean().item() - 1.0) < 0.02
    x = torch.randn(3, 4, 5, requires_grad=True)
    y = drop(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y / x).detach())
    drop.eval()
    assert drop(x) is x
    assert VariationalDropout(0.0)(x) is x
    assert repr(drop) == "VariationalDropout(p=0.3)"


@pytest.mark.parametrize("p", [1.0, -0.1, float("nan")])
def test_variational_dropout_errors(p):
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        VariationalDropout(p)


def test_variational_dropout_rejects_2d_input():
    with pytest.raises(ValueError, match=r"x must be \(N, T, F\)"):
        VariationalDropout(0.5)(torch.zeros(3, 4))


@pytest.mark.cuda
def test_training_helpers_on_cuda():
    dev = torch.device("cuda")
    drop = VariationalDropout(0.5, generator=torch.Generator(device=dev).manual_seed(0))
    y = drop(torch.ones(2, 3, 4, device=dev))
    assert y.device.type == "cuda" and torch.all(y == y[:, :1])
    cell, head, embed = (m.to(dev) for m in decoder())
    targets = torch.randint(0, 5, (4, 3), device=dev)
    h0 = torch.zeros(4, 6, dtype=torch.float64, device=dev)
    g = torch.Generator(device=dev).manual_seed(0)
    logits, _ = teacher_forcing_decode(cell, head, embed, h0, targets, 0.5, g)
    assert logits.device.type == "cuda"
    _, x, tg, rnn, lin = model_and_data(0)
    rnn, lin = rnn.to(dev), lin.to(dev)
    opt = torch.optim.SGD([*rnn.parameters(), *lin.parameters()], lr=0.1)
    loss = train_epoch_tbptt(
        rnn, lin, torch.tensor(x, device=dev), torch.tensor(tg, device=dev), 3, opt, 1.0
    )
    assert np.isfinite(loss)
