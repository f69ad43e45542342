"""rnn_ref.torch.multimodal: fusion of a spoken and a written digit (CPU only).

- the torch gated multimodal unit equals rnn_ref.numpy's gated_fusion_forward, and its autograd
  gradients equal gated_fusion_backward, in float64 (hypothesis over shapes);
- every fusion's shapes; the modality weights are a distribution over the two modalities;
- packing: a padded batch gives the same logits as each example alone, whatever the padding's
  amount and value (even NaN), for every fusion and for early fusion's two alignments;
- early fusion's collate is the concatenation of pool_to_length(audio) and the image rows
  (or of the audio and repeat_to_length(rows, lengths));
- attention masks a dropped modality exactly (weight 0); modality dropout is off in eval mode;
- late-fusion weights chosen on validation pick the informative model; noise_sweep counts right;
- training is reproducible with a seed, restores the best validation epoch, and learns a toy
  task far above chance;
- bad input gets clear errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rnn_ref.numpy.multimodal import (
    gated_fusion_backward,
    gated_fusion_forward,
    late_fusion,
    pool_to_length,
    repeat_to_length,
)
from rnn_ref.torch.multimodal import (
    FUSIONS,
    EarlyFusionClassifier,
    GatedMultimodalUnit,
    MultimodalClassifier,
    choose_late_weights,
    gated_fusion,
    modality_weights,
    multimodal_accuracy,
    multimodal_log_proba,
    noise_sweep,
    train_multimodal,
)


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


D_A = 4
SMALL = dict(audio_size=D_A, audio_hidden=5, image_hidden=6, fusion_size=7, num_classes=3)


def _model(fusion, seed=0, **kw):
    torch.manual_seed(seed)
    return MultimodalClassifier(fusion, **{**SMALL, **kw}).double().eval()


def _pairs(lengths, seed=0, D=D_A):
    rng = np.random.default_rng(seed)
    audio = [rng.normal(size=(T, D)) for T in lengths]
    images = rng.uniform(size=(len(lengths), 8, 8))
    return audio, images


# --- the gated unit against NumPy ------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    N=st.integers(1, 4),
    Da=st.integers(1, 5),
    Dv=st.integers(1, 5),
    H=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_gated_fusion_matches_numpy_forward_and_backward(N, Da, Dv, H, seed):
    rng = np.random.default_rng(seed)
    a, v = rng.normal(size=(N, Da)), rng.normal(size=(N, Dv))
    params = {
        "W_a": rng.normal(size=(H, Da)),
        "b_a": rng.normal(size=H),
        "W_v": rng.normal(size=(H, Dv)),
        "b_v": rng.normal(size=H),
        "W_z": rng.normal(size=(H, Da + Dv)),
        "b_z": rng.normal(size=H),
    }
    df = rng.normal(size=(N, H))
    f_np, cache = gated_fusion_forward(a, v, params)
    da_np, dv_np, grads_np = gated_fusion_backward(df, cache)

    t = {k: torch.tensor(p, requires_grad=True) for k, p in params.items()}
    a_t, v_t = torch.tensor(a, requires_grad=True), torch.tensor(v, requires_grad=True)
    f, z = gated_fusion(a_t, v_t, t)
    np.testing.assert_allclose(f.detach().numpy(), f_np, rtol=1e-12, atol=1e-12)
    assert z.shape == (N, H) and bool(((z > 0) & (z < 1)).all())
    (f * torch.tensor(df)).sum().backward()
    np.testing.assert_allclose(a_t.grad.numpy(), da_np, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(v_t.grad.numpy(), dv_np, rtol=1e-10, atol=1e-12)
    for k in params:
        np.testing.assert_allclose(t[k].grad.numpy(), grads_np[k], rtol=1e-10, atol=1e-12)


def test_gated_unit_module_is_the_function_with_its_parameters():
    torch.manual_seed(0)
    gmu = GatedMultimodalUnit(3, 2, 4).double()
    a, v = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    f, z = gmu(a, v)
    p = {k: t.detach().numpy() for k, t in gmu.params().items()}
    f_np, _ = gated_fusion_forward(a.numpy(), v.numpy(), p)
    np.testing.assert_allclose(f.detach().numpy(), f_np, rtol=1e-12)
    assert {k: tuple(t.shape) for k, t in gmu.params().items()} == {
        "W_a": (4, 3),
        "b_a": (4,),
        "W_v": (4, 2),
        "b_v": (4,),
        "W_z": (4, 5),
        "b_z": (4,),
    }
    # z -> 1 picks the audio branch, z -> 0 the image branch
    with torch.no_grad():
        gmu.b_z.fill_(50.0)
    f1, _ = gmu(a, v)
    np.testing.assert_allclose(
        f1.detach().numpy(), np.tanh(a.numpy() @ p["W_a"].T + p["b_a"]), atol=1e-12
    )


# --- shapes, weights, packing ----------------------------------------------------------------


@pytest.mark.parametrize("fusion", FUSIONS)
def test_shapes_and_modality_weights(fusion):
    model = _model(fusion)
    audio, images = _pairs([7, 2, 5])
    batch = model.collate(audio, images, torch.float64)
    with torch.no_grad():
        logits = model(**batch)
        f, w = model.fused(**batch)
    assert logits.shape == (3, 3)
    lp = multimodal_log_proba(model, audio, images)
    assert lp.shape == (3, 3) and lp.dtype == np.float64
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, rtol=1e-12)
    if fusion in ("gated", "attention"):
        assert f.shape == (3, 7)
        mw = modality_weights(model, audio, images)
        assert mw.shape == (3, 2) and np.all(mw > 0)
        np.testing.assert_allclose(mw.sum(1), 1.0, rtol=1e-12)
    else:
        assert w is None
        with pytest.raises(ValueError, match="gated or attention"):
            modality_weights(model, audio, images)


def test_attention_starts_uniform_and_is_a_convex_combination():
    model = _model("attention")
    audio, images = _pairs([4, 6])
    batch = model.collate(audio, images, torch.float64)
    with torch.no_grad():
        f, alpha = model.fused(**batch)
        a = model.audio.features(batch["audio"], batch["lengths"])
        v = model.image(batch["images"])
        m_a, m_v = torch.tanh(model.proj_a(a)), torch.tanh(model.proj_v(v))
    np.testing.assert_allclose(alpha.numpy(), 0.5, rtol=1e-12)  # the query starts at zero
    np.testing.assert_allclose(f.numpy(), (0.5 * m_a + 0.5 * m_v).numpy(), rtol=1e-12)


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("pad_value", [0.0, 7.0, float("nan")])
def test_padding_does_not_change_outputs(fusion, pad_value):
    model = _model(fusion)
    lengths = [9, 1, 4, 9, 6]
    audio, images = _pairs(lengths, seed=1)
    alone = np.concatenate(
        [multimodal_log_proba(model, [a], im[None]) for a, im in zip(audio, images, strict=True)]
    )
    # a batch padded to 12 frames with pad_value (longer than any utterance)
    x = torch.full((5, 12, D_A), pad_value, dtype=torch.float64)
    for n, a in enumerate(audio):
        x[n, : len(a)] = torch.tensor(a)
    with torch.no_grad():
        lp = torch.log_softmax(model(x, torch.tensor(lengths), torch.tensor(images)), -1)
    np.testing.assert_allclose(lp.numpy(), alone, rtol=1e-10, atol=1e-12)
    # and the batch size of the prediction changes nothing
    np.testing.assert_allclose(
        multimodal_log_proba(model, audio, images, batch_size=2), alone, rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize("align", ["pool", "repeat"])
def test_early_fusion_collate_and_packing(align):
    torch.manual_seed(0)
    model = EarlyFusionClassifier(align, audio_size=D_A, num_classes=3, hidden_size=5).double()
    model.eval()
    lengths = [11, 3, 8, 16]
    audio, images = _pairs(lengths, seed=2)
    batch = model.collate(audio, images, torch.float64)
    x = np.zeros((4, 16, D_A))
    for n, a in enumerate(audio):
        x[n, : len(a)] = a
    if align == "pool":
        want = np.concatenate([pool_to_length(x, np.array(lengths), 8), images], axis=2)
        assert batch["lengths"].tolist() == [8] * 4
    else:
        rows = np.zeros((4, 16, 8))
        for n, L in enumerate(lengths):
            rows[n, :L] = repeat_to_length(images[n : n + 1], L)[0]
        want = np.concatenate([x, rows], axis=2)
        assert batch["lengths"].tolist() == lengths
        # frame t of an utterance of L frames is paired with image row floor(8 t / L)
        L = lengths[1]
        for t in range(L):
            np.testing.assert_array_equal(batch["x"][1, t, D_A:].numpy(), images[1, (t * 8) // L])
    T = batch["x"].shape[1]
    valid = np.arange(T)[None, :] < batch["lengths"].numpy()[:, None]
    np.testing.assert_allclose(batch["x"].numpy()[valid], want[:, :T][valid], rtol=1e-12)
    alone = np.concatenate(
        [multimodal_log_proba(model, [a], im[None]) for a, im in zip(audio, images, strict=True)]
    )
    np.testing.assert_allclose(
        multimodal_log_proba(model, audio, images), alone, rtol=1e-10, atol=1e-12
    )


# --- modality dropout ------------------------------------------------------------------------


def test_modality_dropout_masks_attention_exactly_and_is_off_in_eval():
    model = _model("attention", modality_dropout=0.9)
    audio, images = _pairs([5] * 64, seed=3)
    batch = model.collate(audio, images, torch.float64)
    with torch.no_grad():
        eval_f = model.fused(**batch)[0]
        np.testing.assert_array_equal(model.fused(**batch)[0].numpy(), eval_f.numpy())
        model.train()
        torch.manual_seed(1)
        _, alpha = model.fused(**batch)
    one_hot = (alpha == 1.0).any(1)
    assert 30 < int(one_hot.sum()) < 64  # about 90% of the rows lose one modality
    assert bool(((alpha == 0.0).sum(1) == one_hot.long()).all())  # the other gets weight 0
    assert bool((alpha[~one_hot] == 0.5).all())  # untouched rows: the uniform start


def test_modality_dropout_zeroes_a_vector_for_concat():
    model = _model("concat", modality_dropout=0.9)
    model.train()
    audio, images = _pairs([5] * 64, seed=4)
    torch.manual_seed(2)
    with torch.no_grad():
        f, _ = model.fused(**model.collate(audio, images, torch.float64))
    a_zero = (f[:, :10] == 0).all(1)
    v_zero = (f[:, 10:] == 0).all(1)
    assert int(a_zero.sum()) > 10 and int(v_zero.sum()) > 10
    assert not bool((a_zero & v_zero).any())  # never both


# --- late fusion weights, noise sweep --------------------------------------------------------


def test_choose_late_weights_trusts_the_informative_model():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=200)
    good = np.log(np.full((200, 4), 0.1))
    good[np.arange(200), y] = np.log(0.7)
    noise = np.log(rng.dirichlet(np.ones(4), size=200))
    w, scores = choose_late_weights([good, noise], y)
    np.testing.assert_allclose(w, [1.0, 0.0])
    assert scores.shape == (21,) and scores.argmax() == 20
    w2, scores2 = choose_late_weights([noise, good], y)
    np.testing.assert_allclose(w2, [0.0, 1.0])
    np.testing.assert_allclose(scores2, scores[::-1])
    fused = late_fusion([noise, good], w2)
    np.testing.assert_allclose(fused, good, rtol=1e-12)


def test_noise_sweep_counts_correct_predictions():
    y = np.array([0, 1, 2, 1])
    images = np.zeros((4, 8, 8))

    def corrupt(level):
        return None, images + level  # level = how many of the 4 an oracle gets wrong

    def oracle(audio, imgs):
        wrong = int(imgs[0, 0, 0])
        pred = y.copy()
        pred[:wrong] = (pred[:wrong] + 1) % 3
        return np.log(np.eye(3)[pred] * 0.98 + 0.01)

    acc = noise_sweep(
        {"oracle": oracle, "chance": lambda a, i: np.zeros((4, 3))}, corrupt, [0, 1, 4], y
    )
    np.testing.assert_allclose(acc["oracle"], [1.0, 0.75, 0.0])
    np.testing.assert_allclose(acc["chance"], [0.25, 0.25, 0.25])  # argmax of ties: class 0
    with pytest.raises(ValueError, match="levels is empty"):
        noise_sweep({"o": oracle}, corrupt, [], y)
    with pytest.raises(ValueError, match="predictors is empty"):
        noise_sweep({}, corrupt, [0], y)


# --- training --------------------------------------------------------------------------------


def _toy(n, seed):
    """Class c: audio frames around c in every feature, an image whose row c is bright; audio of
    half the examples and images of the other half are pure noise (so only fusion is right on
    both halves)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    lengths = rng.integers(3, 9, size=n)
    audio = [rng.normal(size=(T, D_A)) * 0.3 + y[i] for i, T in enumerate(lengths)]
    images = rng.uniform(0, 0.2, size=(n, 8, 8))
    images[np.arange(n), 2 * y] += 0.8
    noisy = rng.uniform(size=n) < 0.5
    for i in np.flatnonzero(noisy):
        audio[i] = rng.normal(size=audio[i].shape) * 0.3 + rng.integers(0, 3)
    images[~noisy] = rng.uniform(0, 1, size=(int((~noisy).sum()), 8, 8))
    return audio, images, y


@pytest.mark.parametrize("fusion", ["audio", "image", "gated", "early"])
def test_training_learns_reproducibly_and_restores_the_best_epoch(fusion):
    audio, images, y = _toy(240, seed=0)
    val = _toy(90, seed=1)

    def run():
        torch.manual_seed(0)
        if fusion == "early":
            m = EarlyFusionClassifier(audio_size=D_A, num_classes=3, hidden_size=8)
        else:
            m = MultimodalClassifier(
                fusion,
                audio_size=D_A,
                num_classes=3,
                audio_hidden=8,
                image_hidden=8,
                fusion_size=8,
                frame_stack=1,
            )
        h = train_multimodal(
            m, audio, images, y, val, epochs=8, batch_size=32, lr=1e-2, patience=None, seed=0
        )
        return m, h

    m1, h1 = run()
    m2, h2 = run()
    assert h1["loss"] == h2["loss"] and h1["val_loss"] == h2["val_loss"]
    assert h1["epochs"] == 8 and h1["best_epoch"] == int(np.argmin(h1["val_loss"])) + 1
    # the restored weights are the best epoch's: their validation accuracy is that epoch's
    acc = multimodal_accuracy(m1, *val)
    assert acc == pytest.approx(h1["val_acc"][h1["best_epoch"] - 1])
    test = _toy(150, seed=2)
    acc_test = multimodal_accuracy(m1, *test)
    # chance is 1/3; one modality alone is clean on half the examples (at best 1/2 + 1/2 * 1/3
    # = 0.67); fusion always has one clean modality (at best 1)
    floor = 0.8 if fusion in ("gated", "early") else 0.5
    assert acc_test > floor, (fusion, acc_test)


def test_training_stops_early():
    audio, images, y = _toy(120, seed=0)
    torch.manual_seed(0)
    m = MultimodalClassifier("image", audio_size=D_A, num_classes=3, image_hidden=4)
    # lr so large that the validation loss cannot keep improving
    h = train_multimodal(m, audio, images, y, _toy(60, 1), epochs=40, lr=0.5, patience=2)
    assert h["epochs"] < 40
    assert h["epochs"] - h["best_epoch"] == 2


# --- errors ----------------------------------------------------------------------------------


def test_errors():
    with pytest.raises(ValueError, match="fusion must be one of"):
        MultimodalClassifier("sum")
    with pytest.raises(ValueError, match="needs two modalities"):
        MultimodalClassifier("audio", modality_dropout=0.5)
    with pytest.raises(ValueError, match="align must be"):
        EarlyFusionClassifier("attend")
    model = _model("gated")
    audio, images = _pairs([3, 4])
    with pytest.raises(ValueError, match="images has 3 examples, audio has 2"):
        model.collate(audio, np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match="images must be"):
        model.collate(audio, np.zeros((2, 64)))
    with pytest.raises(ValueError, match="D_a = 4"):
        model.collate(_pairs([3, 4], D=5)[0], images)
    with pytest.raises(TypeError, match="list of"):
        model.collate(np.zeros((2, 3, 4)), images)
    with pytest.raises(ValueError, match="params\\['W_z'\\] must be"):
        p = {k: t.detach() for k, t in GatedMultimodalUnit(2, 3, 4).params().items()}
        p["W_z"] = torch.zeros(4, 4)
        gated_fusion(torch.zeros(1, 2), torch.zeros(1, 3), p)
    with pytest.raises(ValueError, match="same N"):
        gated_fusion(torch.zeros(2, 2), torch.zeros(1, 3), GatedMultimodalUnit(2, 3, 4).params())
    with pytest.raises(ValueError, match="val must be"):
        train_multimodal(model, audio, images, [0, 1], val=(audio, images))
    with pytest.raises(ValueError, match="labels must be in"):
        train_multimodal(model, audio, images, [0, 5], val=(audio, images, [0, 1]))
    with pytest.raises(ValueError, match="combines 2 models"):
        choose_late_weights([np.zeros((2, 3))], [0, 1])
    with pytest.raises(ValueError, match="two \\(N, C\\) arrays"):
        choose_late_weights([np.zeros((2, 3)), np.zeros((2, 4))], [0, 1])
