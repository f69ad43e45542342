"""rnn_ref.torch.seq2seq: parity with the NumPy reference, the encoder's packing, the decoder,
translation and training.

- functional attention (dot and additive) equals rnn_ref.numpy's in float64, outputs and
  gradients (autograd against the NumPy backward), with masks, N = 1, S = 1, H_q != H_k;
  masked weights exactly 0; an all-masked row raises;
- the decoder step: rnn_ref.numpy.decoder_step, the functional torch decoder_step and
  AttentionDecoder.step (torch.nn.GRUCell) agree on the same weights; the NumPy
  decoder_step_backward equals autograd; AttentionDecoder.forward equals looping step;
- Encoder: each example of a padded batch gets exactly what it gets alone (no padding leaks
  through the packing), keys are 0 at padding, the final state is [forward last; backward first];
- Seq2Seq with teacher forcing is causal (logits at step t ignore later inputs) and ignores
  extra padding; batched greedy, translate(beam_width=1) and greedy_decode agree;
- train_seq2seq is reproducible, lowers the loss, and (slow) reaches > 90% exact match on
  toy_dates in well under 60 s of CPU;
- on CUDA (skipped without a GPU): the same parity in float64.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from parity import assert_close

import rnn_ref.numpy.seq2seq as ref
from rnn_ref.datasets import date_vocab, toy_dates
from rnn_ref.numpy import beam_search, greedy_decode
from rnn_ref.torch.seq2seq import (
    AttentionDecoder,
    Encoder,
    Seq2Seq,
    additive_attention,
    decoder_step,
    decoder_step_fn,
    dot_attention,
    exact_match,
    masked_softmax,
    train_seq2seq,
    translate,
)

TOL = 1e-10
D64 = torch.float64


def random_mask(g, N, S):
    mask = torch.rand(N, S, generator=g) < 0.6
    mask[torch.arange(N), torch.randint(0, S, (N,), generator=g)] = True
    return mask


def attention_inputs(seed, N, S, H, H_k, A=3, device="cpu"):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=D64).to(device)

    q, keys = randn(N, H), randn(N, S, H_k)
    params = {"W_q": randn(A, H), "W_k": randn(A, H_k), "v": randn(A)}
    return q, keys, params, random_mask(g, N, S).to(device), randn(N, H_k), randn(N, S)


def np_(t):
    return t.detach().cpu().numpy()


def check_attention_parity(seed, N, S, H, H_k, device="cpu"):
    q, keys, params, mask, dc, dw = attention_inputs(seed, N, S, H, H_k, device=device)
    cases = ["additive"] + (["dot"] if H == H_k else [])
    for kind in cases:
        q_ = q.clone().requires_grad_(True)
        k_ = keys.clone().requires_grad_(True)
        p_ = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        if kind == "dot":
            c, w = dot_attention(q_, k_, mask)
            (c_np, w_np), cache = ref.dot_attention_forward(np_(q), np_(keys), np_(mask))
        else:
            c, w = additive_attention(q_, k_, p_, mask)
            (c_np, w_np), cache = ref.additive_attention_forward(
                np_(q), np_(keys), {k: np_(v) for k, v in params.items()}, np_(mask)
            )
        assert_close(c, c_np, TOL, f"{kind} context")
        assert_close(w, w_np, TOL, f"{kind} weights")
        assert bool((w[~mask] == 0).all()), f"{kind}: a masked weight is not exactly 0"
        ((c * dc).sum() + (w * dw).sum()).backward()
        if kind == "dot":
            dq, dk = ref.dot_attention_backward(np_(dc), cache, dweights=np_(dw))
        else:
            dq, dk, grads = ref.additive_attention_backward(np_(dc), cache, dweights=np_(dw))
            for name in params:
                assert_close(p_[name].grad, grads[name], TOL, f"{kind} d{name}")
        assert_close(q_.grad, dq, TOL, f"{kind} dq")
        assert_close(k_.grad, dk, TOL, f"{kind} dkeys")


@given(
    N=st.integers(1, 3),
    S=st.integers(1, 4),
    H=st.integers(1, 4),
    H_k=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
)
@example(N=1, S=1, H=1, H_k=1, seed=0)
@example(N=2, S=3, H=2, H_k=2, seed=1)
@example(N=1, S=4, H=3, H_k=2, seed=2)
def test_attention_matches_numpy_forward_and_backward(N, S, H, H_k, seed):
    check_attention_parity(seed, N, S, H, H_k)


def test_masked_softmax_errors_and_exact_zeros():
    scores = torch.tensor([[0.0, np.log(2.0), 50.0]], dtype=D64)
    w = masked_softmax(scores, torch.tensor([[True, True, False]]))
    torch.testing.assert_close(w, torch.tensor([[1 / 3, 2 / 3, 0.0]], dtype=D64))
    assert w[0, 2].item() == 0.0
    q, keys = torch.zeros(2, 3), torch.zeros(2, 4, 3)
    mask = torch.ones(2, 4, dtype=torch.bool)
    mask[1] = False
    with pytest.raises(ValueError, match=r"mask row 1 has no True entry"):
        dot_attention(q, keys, mask)
    with pytest.raises(TypeError, match=r"mask must be bool"):
        dot_attention(q, keys, torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"mask must have shape \(N, S\) = \(2, 4\)"):
        dot_attention(q, keys, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"q has H = 2, keys have 3"):
        dot_attention(q[:, :2], keys)


# ------------------------------------------------------------------------------------------
# decoder step
# ------------------------------------------------------------------------------------------


def make_decoder(attention, V=7, M=3, H=4, K=4, A=5, seed=0):
    torch.manual_seed(seed)
    return AttentionDecoder(V, M, H, K, attention=attention, attn_size=A).double()


@pytest.mark.parametrize(
    "attention,N,S,K",
    [("dot", 1, 1, 4), ("dot", 3, 5, 4), ("additive", 1, 1, 4), ("additive", 2, 3, 2)],
)
def test_decoder_step_parity_numpy_functional_module(attention, N, S, K):
    dec = make_decoder(attention, K=K)
    g = torch.Generator().manual_seed(N * 10 + S)
    y = torch.randint(0, 7, (N,), generator=g)
    y[0] = y[-1]  # a repeated token, so dE must add rows
    h_prev = torch.randn(N, 4, generator=g, dtype=D64).requires_grad_(True)
    keys = torch.randn(N, S, K, generator=g, dtype=D64).requires_grad_(True)
    mask = random_mask(g, N, S)
    params = dec.params()

    logits, h, w = dec.step(y, h_prev, keys, mask)
    logits_f, h_f, w_f = decoder_step(y, h_prev, keys, mask, params, attention=attention)
    np_params = {k: np_(v) for k, v in params.items()}
    (logits_np, h_np, w_np), cache = ref.decoder_step(
        np_(y), np_(h_prev), np_(keys), np_(mask), np_params, attention=attention
    )
    for name, a, b in (("logits", logits, logits_np), ("h", h, h_np), ("weights", w, w_np)):
        assert_close(a, b, TOL, f"module {name}")
    for name, a, b in (("logits", logits_f, logits_np), ("h", h_f, h_np), ("w", w_f, w_np)):
        assert_close(a, b, TOL, f"functional {name}")

    # the NumPy backward equals autograd through torch.nn.GRUCell
    dlogits = torch.randn(logits.shape, generator=g, dtype=D64)
    dh = torch.randn(h.shape, generator=g, dtype=D64)
    dec.zero_grad()
    ((logits * dlogits).sum() + (h * dh).sum()).backward()
    dh_prev, dkeys, grads = ref.decoder_step_backward(np_(dlogits), cache, dh=np_(dh))
    assert_close(h_prev.grad, dh_prev, TOL, "dh_prev")
    assert_close(keys.grad, dkeys, TOL, "dkeys")
    assert set(grads) == set(params)
    for name, p in params.items():
        assert_close(p.grad, grads[name], TOL, f"d{name}")


@pytest.mark.parametrize("attention", ["dot", "additive"])
def test_decoder_forward_is_step_by_step_teacher_forcing(attention):
    dec = make_decoder(attention)
    g = torch.Generator().manual_seed(3)
    N, S, T = 3, 5, 4
    y_in = torch.randint(0, 7, (N, T), generator=g)
    h0, keys = (
        torch.randn(N, 4, generator=g, dtype=D64),
        torch.randn(N, S, 4, generator=g, dtype=D64),
    )
    mask = random_mask(g, N, S)
    logits, weights = dec(y_in, h0, keys, mask)
    assert logits.shape == (N, T, 7) and weights.shape == (N, T, S)
    h = h0
    for t in range(T):
        lg, h, w = dec.step(y_in[:, t], h, keys, mask)
        assert_close(logits[:, t], lg, TOL, f"logits step {t}")
        assert_close(weights[:, t], w, TOL, f"weights step {t}")


# ------------------------------------------------------------------------------------------
# encoder and model
# ------------------------------------------------------------------------------------------


def batch(seqs, pad=0):
    S = max(len(s) for s in seqs)
    src = torch.tensor([list(s) + [pad] * (S - len(s)) for s in seqs], dtype=torch.int64)
    return src, torch.tensor([len(s) for s in seqs])


def test_encoder_packing_equals_running_each_example_alone():
    torch.manual_seed(0)
    enc = Encoder(9, 3, 4).double()
    seqs = [[5, 6, 7, 8, 4], [4, 5], [8], [7, 7, 7]]
    src, lengths = batch(seqs)
    keys, h, mask = enc(src, lengths)
    assert keys.shape == (4, 5, 8) and h.shape == (4, 8) and mask.dtype == torch.bool
    torch.testing.assert_close(mask, torch.arange(5) < lengths[:, None])
    assert bool((keys[~mask] == 0).all())
    for i, s in enumerate(seqs):
        x = enc.embedding(torch.tensor([s]))
        out, h_n = enc.rnn(x)  # no padding at all
        assert_close(keys[i, : len(s)], out[0], TOL, f"keys of example {i}")
        assert_close(h[i], torch.cat([h_n[0, 0], h_n[1, 0]]), TOL, f"h of example {i}")
        H = enc.hidden_size
        # h is [forward state at the last real position; backward state at position 0]
        assert_close(h[i, :H], out[0, -1, :H], TOL, "forward final")
        assert_close(h[i, H:], out[0, 0, H:], TOL, "backward final")
    with pytest.raises(ValueError, match=r"1 <= length <= S"):
        enc(src, torch.tensor([5, 2, 0, 3]))


@pytest.mark.parametrize("attention", ["dot", "additive"])
def test_seq2seq_is_causal_and_ignores_extra_padding(attention):
    torch.manual_seed(1)
    model = Seq2Seq(11, 4, 3, attention=attention).double()
    src, lengths = batch([[4, 5, 6], [7, 8], [9, 10, 4, 5]])
    g = torch.Generator().manual_seed(0)
    y_in = torch.randint(0, 11, (3, 5), generator=g)
    logits = model(src, lengths, y_in)
    assert logits.shape == (3, 5, 11)
    y_alt = y_in.clone()
    y_alt[:, 3:] = (y_alt[:, 3:] + 1) % 11
    torch.testing.assert_close(model(src, lengths, y_alt)[:, :3], logits[:, :3], rtol=0, atol=0)
    assert not torch.allclose(model(src, lengths, y_alt)[:, 3:], logits[:, 3:])
    wider = torch.cat([src, torch.zeros(3, 2, dtype=torch.int64)], dim=1)
    logits_w, weights_w = model(wider, lengths, y_in, return_attention=True)
    assert_close(logits_w, logits, TOL, "logits with extra padding")
    assert bool((weights_w[:, :, 4:] == 0).all())


def test_batched_greedy_translate_and_greedy_decode_agree():
    vocab = date_vocab()
    torch.manual_seed(2)
    model = Seq2Seq(len(vocab), 8, 8, attention="additive")
    pairs = toy_dates(6, 0)
    src, lengths = batch([vocab.encode(s) for s, _ in pairs])
    tokens = model.greedy(src, lengths, max_len=11)
    for i, (s, _) in enumerate(pairs):
        text = translate(model, s, vocab, max_len=11)
        assert text == vocab.decode(tokens[i])
        step_fn, h0 = decoder_step_fn(model, vocab.encode(s))
        toks, score = greedy_decode(step_fn, h0, vocab.bos, vocab.eos, 11)
        assert vocab.decode(toks) == text and score <= 0
        # beam search with width 1 is greedy
        assert translate(model, vocab.encode(s), vocab, max_len=11, beam_width=1) == text
        text_b, w = translate(model, s, vocab, max_len=11, beam_width=3, return_attention=True)
        best = beam_search(step_fn, h0, vocab.bos, vocab.eos, 3, 11)[0][0]
        assert text_b == vocab.decode(best) and w.shape == (len(best), len(s))
        np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match=r"the source is empty"):
        translate(model, "", vocab, 5)


def test_train_seq2seq_is_reproducible_and_learns():
    vocab = date_vocab()
    pairs = toy_dates(200, 0)

    def run():
        torch.manual_seed(0)
        model = Seq2Seq(len(vocab), 8, 8)
        return train_seq2seq(
            model, pairs, vocab, steps=30, batch_size=16, lr=1e-2, seed=0, threads=1
        )

    h1, h2 = run(), run()
    assert len(h1) == 30 and all(isinstance(x, float) for x in h1)
    assert h1 == h2
    assert np.mean(h1[-5:]) < 0.75 * np.mean(h1[:5])
    with pytest.raises(ValueError, match=r"at least one pair"):
        train_seq2seq(Seq2Seq(len(vocab)), [], vocab, 1, 1, 1e-3, 0)


@pytest.mark.slow
@pytest.mark.parametrize("attention", ["dot", "additive"])
def test_toy_dates_trains_to_90_percent_exact_match_quickly(attention):
    """The configuration the chapter uses: 300 steps of 64 pairs, default sizes (embedding
    16, encoder 32 per direction, decoder 64), one thread. About 12 s of CPU time."""
    vocab = date_vocab()
    train, test = toy_dates(10000, 0), toy_dates(500, 1)
    torch.manual_seed(0)
    model = Seq2Seq(len(vocab), attention=attention)
    threads = torch.get_num_threads()
    cpu = time.process_time()
    history = train_seq2seq(
        model, train, vocab, steps=300, batch_size=64, lr=1e-2, seed=0, threads=1
    )
    cpu = time.process_time() - cpu
    assert torch.get_num_threads() == threads  # restored
    assert history[-1] < history[0]
    assert cpu < 60, f"training took {cpu:.1f} s of CPU time"
    assert exact_match(model, test, vocab) > 0.9


@pytest.mark.cuda
def test_cuda_parity():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    check_attention_parity(0, 3, 5, 4, 4, device="cuda")
    check_attention_parity(1, 2, 3, 3, 2, device="cuda")
    vocab = date_vocab()
    torch.manual_seed(0)
    model = Seq2Seq(len(vocab), 8, 8).double()
    src, lengths = batch([vocab.encode(s) for s, _ in toy_dates(4, 0)])
    y_in = torch.ones(4, 3, dtype=torch.int64)
    cpu = model(src, lengths, y_in)
    gpu = model.to("cuda")(src.cuda(), lengths, y_in.cuda())
    assert_close(gpu, cpu, 1e-9, "logits on CUDA")
