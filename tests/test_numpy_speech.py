"""rnn_ref.numpy.speech: the MFCC pipeline, deltas, CMVN, pooled statistics and DTW of chapter
ch13_speech.

- parity with ``python_speech_features`` (float64, matched settings) on synthesised vowel-like
  signals (a glottal pulse train through formant resonators, plus noise): ``framesig``,
  ``preemphasis``, ``powspec``, ``get_filterbanks`` (our ``snap_to_bins=True``), ``mfcc(...,
  ceplifter=0, appendEnergy=False, winfunc=np.hamming)`` and ``delta``;
- the exact filterbank (default) against a transcription of librosa's ``htk=True, norm=None``
  construction (librosa is not installed), and its properties: triangles with corners equally
  spaced in mel, peak 1 at the centre (a centre placed on a bin), a partition of unity between
  the first and the last centre;
- framing: the frame count formula, every sample covered, short signals, hop > frame length;
- DCT-II orthonormal equals the written-out cosine sum; a channel gain is a constant shift of
  c_0 only, removed by CMVN;
- CMVN: mean 0 / std 1, constant features and T = 1 give zeros (no division by ~0);
- DTW against a plain O(Ta Tb) Python reference on hypothesis-drawn sequences; symmetry,
  identity 0, time-warp invariance (repeated frames cost 0), the path's costs sum to the
  distance, the band (never lower, r >= |Ta - Tb| widening, wide band = no band, inf never
  returned), the vectorised matrix equals the pairwise distances (with and without band);
- clear errors on bad input.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from python_speech_features import base as psf
from python_speech_features import sigproc
from scipy import fft as sfft
from scipy import signal as ssig

from rnn_ref.numpy import speech as sp

SR = 8000


def vowel(rng, seconds=0.5, f0=120.0, formants=(700.0, 1200.0, 2600.0), noise=0.01, sr=SR):
    """A vowel-like signal: a glottal pulse train at f0 (with jitter) through formant
    resonators (second-order IIR filters), an amplitude envelope, plus white noise."""
    n = int(seconds * sr)
    src = np.zeros(n)
    t = 0.0
    while t < n:
        src[int(t)] = 1.0
        t += sr / (f0 * (1 + 0.02 * rng.standard_normal()))
    y = src
    for f in formants:
        r = np.exp(-np.pi * 80.0 / sr)
        y = ssig.lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / sr), r * r], y)
    env = np.sin(np.pi * np.arange(n) / n) ** 0.5
    y = y * env
    y = y / np.max(np.abs(y))
    return 0.8 * y + noise * rng.standard_normal(n)


@pytest.fixture(scope="module")
def signals():
    rng = np.random.default_rng(13)
    out = [
        vowel(rng),
        vowel(rng, seconds=0.31, f0=210.0, formants=(300.0, 2300.0, 3000.0)),
        vowel(rng, seconds=0.0251, f0=95.0),  # one frame and a bit
        vowel(rng, seconds=0.01, f0=150.0),  # shorter than a frame
    ]
    return out


# --- framing and pre-emphasis --------------------------------------------------------------------


@pytest.mark.parametrize("L", [1, 5, 199, 200, 201, 279, 280, 281, 4000])
@pytest.mark.parametrize("frame_length,hop", [(200, 80), (7, 3), (5, 9), (1, 1), (4, 4)])
def test_frame_signal_matches_framesig(L, frame_length, hop):
    x = np.random.default_rng(L).standard_normal(L)
    ours = sp.frame_signal(x, frame_length, hop)
    np.testing.assert_array_equal(ours, sigproc.framesig(x, frame_length, hop))
    F = 1 if L <= frame_length else 1 + int(np.ceil((L - frame_length) / hop))
    assert ours.shape == (F, frame_length) == (sp.num_frames(L, frame_length, hop), frame_length)


def test_frame_signal_layout_and_padding():
    x = np.arange(1.0, 11.0)  # 10 samples
    fr = sp.frame_signal(x, 4, 3)  # F = 1 + ceil(6 / 3) = 3
    np.testing.assert_array_equal(fr, [[1, 2, 3, 4], [4, 5, 6, 7], [7, 8, 9, 10]])
    fr = sp.frame_signal(x, 4, 4)  # F = 1 + ceil(6 / 4) = 3, last frame padded with 2 zeros
    np.testing.assert_array_equal(fr[-1], [9, 10, 0, 0])
    fr = sp.frame_signal(x[:3], 4, 2)  # shorter than a frame: one zero-padded frame
    np.testing.assert_array_equal(fr, [[1, 2, 3, 0]])
    fr[0, 0] = 99.0  # a copy, not a view
    assert x[0] == 1.0


@given(L=st.integers(1, 300), n=st.integers(1, 50), h=st.integers(1, 60))
def test_frames_cover_every_sample_and_no_spare_frame(L, n, h):
    F = sp.num_frames(L, n, h)
    fr = sp.frame_signal(np.arange(1.0, L + 1), n, h)
    covered = set(fr[fr > 0].astype(int).tolist())
    if h <= n:
        assert covered == set(range(1, L + 1))
    assert (F - 1) * h < max(L - n, 0) + h or F == 1  # the last frame starts before it is needed
    assert (F - 1) * h + n >= L  # ... and reaches the end


def test_pre_emphasis_matches_psf(signals):
    for x in signals:
        for a in (0.0, 0.95, 0.97):
            np.testing.assert_allclose(sp.pre_emphasis(x, a), sigproc.preemphasis(x, a), 0, 1e-15)
    np.testing.assert_array_equal(sp.pre_emphasis([2.0, 3.0, 5.0], 0.5), [2.0, 2.0, 3.5])


# --- window and power spectrum ----------------------------------------------------------------


def test_window_and_power_spectrum_match_psf(signals):
    for x in signals:
        for n_fft in (256, 512):
            ours = sp.power_spectrum(sp.window_frames(sp.frame_signal(x, 200, 80)), n_fft)
            ref = sigproc.powspec(sigproc.framesig(x, 200, 80, np.hamming), n_fft)
            assert ours.shape == ref.shape == (sp.num_frames(len(x), 200, 80), n_fft // 2 + 1)
            np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-14 * ref.max())


def test_windows():
    np.testing.assert_array_equal(sp.get_window("hamming", 9), np.hamming(9))
    np.testing.assert_array_equal(sp.get_window("hann", 9), np.hanning(9))
    np.testing.assert_array_equal(sp.get_window(None, 4), np.ones(4))
    np.testing.assert_array_equal(sp.get_window(np.bartlett, 5), np.bartlett(5))
    fr = np.ones((2, 5))
    np.testing.assert_array_equal(sp.window_frames(fr, np.arange(5.0)), [np.arange(5.0)] * 2)
    w = sp.get_window("hamming", 200)
    assert w[0] == pytest.approx(0.08) and w[-1] == pytest.approx(0.08)


def test_parseval():
    x = np.random.default_rng(0).standard_normal((3, 64))
    P = sp.power_spectrum(x, 64)
    # one-sided: the bins 1..31 stand for two bins each
    total = (P[:, 0] + 2 * P[:, 1:-1].sum(1) + P[:, -1]) * 64 / 64
    np.testing.assert_allclose(total, (x**2).sum(1), rtol=1e-12)


# --- mel scale and filterbank ---------------------------------------------------------------


def test_mel_scale():
    assert sp.hz_to_mel(0.0) == 0.0
    assert sp.hz_to_mel(700.0) == pytest.approx(2595 * np.log10(2))
    assert sp.hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.1)  # ~1000 mel at 1 kHz
    f = np.linspace(0, 8000, 17)
    np.testing.assert_allclose(sp.mel_to_hz(sp.hz_to_mel(f)), f, atol=1e-9)
    np.testing.assert_allclose(sp.hz_to_mel(f), psf.hz2mel(f), rtol=1e-14)


@pytest.mark.parametrize(
    "n_mels,n_fft,sr,f_min,f_max",
    [(26, 256, 8000, 0, None), (26, 512, 16000, 0, None), (40, 512, 8000, 100, 3800),
     (10, 64, 8000, 300, 4000), (80, 1024, 22050, 0, 8000)],
)  # fmt: skip
def test_snapped_filterbank_equals_psf(n_mels, n_fft, sr, f_min, f_max):
    ours = sp.mel_filterbank(n_mels, n_fft, sr, f_min, f_max, snap_to_bins=True)
    ref = psf.get_filterbanks(n_mels, n_fft, sr, f_min, f_max)
    assert ours.shape == ref.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-15)


def librosa_htk_mel(n_mels, n_fft, sr, fmin, fmax):
    """A transcription of librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=True,
    norm=None) (librosa 0.10; not installed here): ramps on the difference of Hz points."""
    weights = np.zeros((n_mels, 1 + n_fft // 2))
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = sp.mel_to_hz(np.linspace(sp.hz_to_mel(fmin), sp.hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    return weights


@pytest.mark.parametrize("n_mels,n_fft,sr,fmax", [(26, 256, 8000, 4000), (40, 512, 16000, 7600)])
def test_exact_filterbank_equals_librosa_htk(n_mels, n_fft, sr, fmax):
    ours = sp.mel_filterbank(n_mels, n_fft, sr, 20.0, fmax)
    np.testing.assert_allclose(ours, librosa_htk_mel(n_mels, n_fft, sr, 20.0, fmax), atol=1e-12)


def test_filterbank_triangles():
    n_mels, n_fft, sr = 20, 1024, 8000
    H = sp.mel_filterbank(n_mels, n_fft, sr)
    corners = sp.mel_to_hz(np.linspace(0, sp.hz_to_mel(sr / 2), n_mels + 2))
    np.testing.assert_allclose(np.diff(sp.hz_to_mel(corners)), sp.hz_to_mel(sr / 2) / 21)
    phi = np.arange(n_fft // 2 + 1) * sr / n_fft
    assert H.min() >= 0 and H.max() <= 1
    for m in range(n_mels):
        lo, c, hi = corners[m : m + 3]
        row = H[m]
        assert np.all(row[(phi <= lo) | (phi >= hi)] == 0), f"filter {m} leaks outside its band"
        up, down = (phi > lo) & (phi <= c), (phi >= c) & (phi < hi)
        np.testing.assert_allclose(row[up], (phi[up] - lo) / (c - lo), atol=1e-12)
        np.testing.assert_allclose(row[down], (hi - phi[down]) / (hi - c), atol=1e-12)
        assert abs(phi[np.argmax(row)] - c) < sr / n_fft  # the peak is a bin next to the centre
    # neighbouring triangles sum to 1 between the first and the last centre
    inside = (phi >= corners[1]) & (phi <= corners[-2])
    np.testing.assert_allclose(H.sum(0)[inside], 1.0, atol=1e-12)


def test_filterbank_peak_is_one_when_centre_on_a_bin():
    # f_max chosen so that the single filter's centre is exactly bin 10 (625 Hz at 8 kHz, 128)
    c = 625.0
    f_max = float(sp.mel_to_hz(2 * sp.hz_to_mel(c)))
    H = sp.mel_filterbank(1, 128, 8000, 0.0, f_max)
    assert H[0, 10] == pytest.approx(1.0, abs=1e-12)
    assert np.argmax(H[0]) == 10


def test_snapped_and_exact_differ_by_at_most_one_bin_shift():
    exact = sp.mel_filterbank(26, 256, SR)
    snapped = sp.mel_filterbank(26, 256, SR, snap_to_bins=True)
    assert np.abs(exact - snapped).max() > 0.05  # really different ...
    # ... but the centres (argmax) agree within one bin
    assert np.abs(exact.argmax(1) - snapped.argmax(1)).max() <= 1
    np.testing.assert_allclose(snapped.max(1), 1.0)  # snapped peaks are exactly 1


# --- MFCC ----------------------------------------------------------------------------------------


def test_mfcc_matches_psf(signals):
    worst = 0.0
    for x in signals:
        for n_mels, n_fft, ncep in ((26, 256, 13), (40, 512, 20)):
            ours = sp.mfcc(x, SR, n_mfcc=ncep, n_mels=n_mels, n_fft=n_fft, snap_to_bins=True)
            ref = psf.mfcc(
                x, SR, winlen=0.025, winstep=0.01, numcep=ncep, nfilt=n_mels, nfft=n_fft,
                ceplifter=0, appendEnergy=False, winfunc=np.hamming,
            )  # fmt: skip
            assert ours.shape == ref.shape
            worst = max(worst, np.abs(ours - ref).max())
    assert worst < 1e-11, worst


def test_mfcc_defaults_and_sixteen_khz():
    rng = np.random.default_rng(1)
    x = vowel(rng, seconds=0.4, sr=16000)
    ours = sp.mfcc(x, 16000, snap_to_bins=True)  # 400-sample frames -> n_fft 512
    ref = psf.mfcc(x, 16000, ceplifter=0, appendEnergy=False, winfunc=np.hamming)
    np.testing.assert_allclose(ours, ref, atol=1e-11)
    assert sp.mfcc(x[::2], 8000).shape == (sp.num_frames(3200, 200, 80), 13)


def test_mfcc_from_power_is_dct_of_log_mel():
    rng = np.random.default_rng(2)
    P = rng.random((5, 129)) + 0.01
    H = sp.mel_filterbank(26, 256, SR)
    c = sp.mfcc_from_power(P, H, 13)
    logE = np.log(P @ H.T)
    M = 26
    m = np.arange(M)
    basis = np.array([np.cos(np.pi * i * (2 * m + 1) / (2 * M)) for i in range(13)])
    scale = np.full(13, np.sqrt(2 / M))
    scale[0] = np.sqrt(1 / M)
    np.testing.assert_allclose(c, (logE @ basis.T) * scale, atol=1e-12)
    np.testing.assert_allclose(c, sfft.dct(logE, norm="ortho")[:, :13], atol=1e-13)
    # a gain g on the signal (g^2 on the power) adds sqrt(M) log g^2 to c_0 and nothing else
    c2 = sp.mfcc_from_power(9.0 * P, H, 13)
    np.testing.assert_allclose(c2[:, 0] - c[:, 0], np.sqrt(M) * np.log(9.0), atol=1e-10)
    np.testing.assert_allclose(c2[:, 1:], c[:, 1:], atol=1e-10)


def test_log_floor_keeps_silence_finite():
    x = np.zeros(1000)
    c = sp.mfcc(x, SR)
    assert np.all(np.isfinite(c))
    np.testing.assert_allclose(c[:, 0], np.sqrt(26) * np.log(1e-10))
    np.testing.assert_allclose(c[:, 1:], 0.0, atol=1e-9)
    logE = sp.log_mel_energies(np.zeros((2, 129)), sp.mel_filterbank(26, 256, SR), 1e-5)
    np.testing.assert_allclose(logE, np.log(1e-5))


def test_deltas_match_psf(signals):
    c = sp.mfcc(signals[0], SR)
    for N in (1, 2, 3):
        np.testing.assert_allclose(sp.deltas(c, N), psf.delta(c, N), atol=1e-12)
    one = sp.deltas(c[:1], 2)
    np.testing.assert_array_equal(one, np.zeros_like(one))
    # a linear ramp has delta = its slope away from the ends
    ramp = np.arange(10.0)[:, None] * np.array([[1.0, -2.0]])
    np.testing.assert_allclose(sp.deltas(ramp, 2)[2:-2], [[1.0, -2.0]] * 6)


# --- CMVN, pooling, padding ----------------------------------------------------------------------


@given(T=st.integers(2, 40), D=st.integers(1, 8), seed=st.integers(0, 2**31))
def test_cmvn_standardises(T, D, seed):
    rng = np.random.default_rng(seed)
    c = rng.normal(5.0, 3.0, (T, D))
    z = sp.cmvn(c)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(0), 1.0, atol=1e-10)
    # invariant to a per-coefficient affine change (a channel gain shifts cepstra)
    np.testing.assert_allclose(sp.cmvn(2.5 * c + rng.normal(size=D)), z, atol=1e-9)
    np.testing.assert_allclose(sp.cmvn(c, variance=False), c - c.mean(0), atol=1e-12)


def test_cmvn_constant_feature_and_single_frame():
    c = np.column_stack([np.full(6, 3.0), np.arange(6.0)])
    z = sp.cmvn(c)
    assert np.all(np.isfinite(z))
    np.testing.assert_array_equal(z[:, 0], 0.0)
    np.testing.assert_allclose(z[:, 1].std(), 1.0)
    z1 = sp.cmvn(np.array([[1.0, -2.0, 7.0]]))
    np.testing.assert_array_equal(z1, np.zeros((1, 3)))
    # a nearly constant column (rounding noise) is only centred, not blown up to +-1
    c = np.full((5, 1), 0.1) + np.array([[0.0], [1e-17], [0.0], [2e-17], [0.0]])
    assert np.abs(sp.cmvn(c)).max() < 1e-15


def test_pooled_statistics():
    rng = np.random.default_rng(3)
    c = rng.normal(size=(30, 4))
    v = sp.pooled_statistics(c)
    np.testing.assert_allclose(v, np.concatenate([c.mean(0), c.std(0)]))
    v4 = sp.pooled_statistics(c, with_deltas=True)
    d = psf.delta(c, 2)
    np.testing.assert_allclose(v4, np.concatenate([c.mean(0), c.std(0), d.mean(0), d.std(0)]))
    assert sp.pooled_statistics(c[:1]).shape == (8,)


def test_pad_features():
    a, b = np.ones((3, 2)), 2 * np.ones((5, 2))
    X, lengths = sp.pad_features([a, b])
    assert X.shape == (2, 5, 2) and lengths.tolist() == [3, 5] and lengths.dtype == np.int64
    np.testing.assert_array_equal(X[0, 3:], 0.0)
    np.testing.assert_array_equal(X[1], b)
    X, _ = sp.pad_features([a, b], pad_value=-1.0)
    np.testing.assert_array_equal(X[0, 3:], -1.0)


# --- DTW -----------------------------------------------------------------------------------------


def dtw_reference(a, b, band=None):
    """The textbook recursion, cell by cell, with an (n + 1) x (m + 1) table and D[0, 0] = 0."""
    Ta, Tb = len(a), len(b)
    r = None if band is None else max(band, abs(Ta - Tb))
    D = np.full((Ta + 1, Tb + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(1, Ta + 1):
        for j in range(1, Tb + 1):
            if r is not None and abs(i - j) > r:
                continue
            cost = np.sqrt(np.sum((a[i - 1] - b[j - 1]) ** 2))
            D[i, j] = cost + min(D[i - 1, j], D[i, j - 1], D[i - 1, j - 1])
    return D[Ta, Tb]


seqs = st.builds(
    lambda T, D, seed: np.random.default_rng(seed).normal(size=(T, D)),
    st.integers(1, 9),
    st.just(3),
    st.integers(0, 2**31),
)


@given(a=seqs, b=seqs, band=st.one_of(st.none(), st.integers(0, 4)))
def test_dtw_against_reference(a, b, band):
    d = sp.dtw_distance(a, b, band=band)
    assert d == pytest.approx(dtw_reference(a, b, band), rel=1e-12, abs=1e-12)
    assert d == pytest.approx(sp.dtw_distance(b, a, band=band), rel=1e-12)  # symmetric
    dist, path = sp.dtw_path(a, b, band=band)
    assert dist == pytest.approx(d, rel=1e-12)
    assert path[0] == (0, 0) and path[-1] == (len(a) - 1, len(b) - 1)
    steps = {(i2 - i1, j2 - j1) for (i1, j1), (i2, j2) in zip(path, path[1:], strict=False)}
    assert steps <= {(1, 0), (0, 1), (1, 1)}
    cost = sum(np.linalg.norm(a[i] - b[j]) for i, j in path)
    assert cost == pytest.approx(d, rel=1e-12, abs=1e-12)
    if band is not None:
        r = max(band, abs(len(a) - len(b)))
        assert all(abs(i - j) <= r for i, j in path)
        assert np.isfinite(d) and d >= sp.dtw_distance(a, b) - 1e-12


@given(a=seqs, reps=st.lists(st.integers(1, 3), min_size=9, max_size=9))
def test_dtw_identity_and_time_warp_invariance(a, reps):
    assert sp.dtw_distance(a, a) == 0.0
    warped = np.repeat(a, reps[: len(a)], axis=0)  # the same sequence, some frames repeated
    assert sp.dtw_distance(a, warped) == 0.0
    assert sp.dtw_distance_matrix([a], [warped])[0, 0] == pytest.approx(0.0, abs=1e-6)


def test_dtw_known_values():
    a = np.array([[0.0], [1.0], [2.0]])
    b = np.array([[0.0], [2.0]])
    assert sp.dtw_distance(a, b) == pytest.approx(1.0)  # 0 + |1 - 0| or |1 - 2| + 0
    assert sp.dtw_distance(np.zeros((1, 2)), np.array([[3.0, 4.0], [0.0, 0.0]])) == 5.0
    d, path = sp.dtw_path(a, a)
    assert d == 0.0 and path == [(0, 0), (1, 1), (2, 2)]


def test_band_restricts_warping():
    # b is a shifted by 3 frames; a tight band forbids the shift and costs more
    t = np.arange(30.0)
    a = np.sin(t / 3)[:, None]
    b = np.sin((t - 3) / 3)[:, None]
    free = sp.dtw_distance(a, b)
    tight = sp.dtw_distance(a, b, band=0)
    assert tight == pytest.approx(np.abs(a - b).sum())  # band 0, equal lengths: the diagonal
    assert free < 0.5 * tight
    assert sp.dtw_distance(a, b, band=30) == free  # a band wider than the grid changes nothing
    # unequal lengths: the band widens to |Ta - Tb|, so the distance stays finite
    assert np.isfinite(sp.dtw_distance(a[:10], b, band=0))
    assert sp.dtw_distance(a[:10], b, band=0) == pytest.approx(dtw_reference(a[:10], b, 0))


def test_matrix_equals_pairwise():
    rng = np.random.default_rng(4)
    A = [rng.normal(size=(rng.integers(1, 25), 5)) for _ in range(11)]
    B = [rng.normal(size=(rng.integers(1, 25), 5)) * 3 for _ in range(23)]
    for band in (None, 0, 3):
        ref = np.array([[sp.dtw_distance(p, q, band=band) for q in B] for p in A])
        for blocks in ((16, 512), (3, 5), (1, 1)):
            M = sp.dtw_distance_matrix(A, B, band=band, block_a=blocks[0], block_b=blocks[1])
            assert M.shape == (11, 23)
            np.testing.assert_allclose(M, ref, rtol=1e-7, atol=1e-7)
    M = sp.dtw_distance_matrix(A, A)
    np.testing.assert_allclose(np.diag(M), 0.0, atol=1e-5)
    np.testing.assert_allclose(M, M.T, rtol=1e-7, atol=1e-7)
    X, lengths = sp.pad_features(A)
    assert sp.dtw_distance_matrix(A, []).shape == (11, 0)
    assert sp.dtw_distance_matrix(list(X), B).shape == (11, 23)


def test_matrix_one_nearest_neighbour_on_mfcc():
    # two "words" (vowel sequences), several "speakers" (f0 and tempo): 1-NN by DTW is right
    rng = np.random.default_rng(5)
    words = [((700, 1200, 2600), (300, 2300, 3000)), ((300, 900, 2400), (600, 1000, 2500))]

    def utter(w, f0, tempo):
        parts = [vowel(rng, seconds=0.15 * tempo, f0=f0, formants=f) for f in words[w]]
        return sp.cmvn(sp.mfcc(np.concatenate(parts), SR))

    train = [utter(w, f0, 1.0) for w in (0, 1) for f0 in (100, 180)]
    test = [utter(w, f0, tempo) for w in (0, 1) for f0, tempo in ((120, 0.8), (160, 1.3))]
    M = sp.dtw_distance_matrix(test, train)
    pred = np.array([0, 0, 1, 1])[np.argmin(M, axis=1)]
    np.testing.assert_array_equal(pred, [0, 0, 1, 1])


def test_matrix_speed():
    """The 1-NN workload of the chapter, scaled down 10x: 30 x 2,700 pairs of 30-50 frames,
    13 coefficients (the full 300 x 2,700 takes about ten times as long)."""
    rng = np.random.default_rng(6)
    A = [rng.normal(size=(rng.integers(30, 50), 13)) for _ in range(30)]
    B = [rng.normal(size=(rng.integers(30, 50), 13)) for _ in range(2700)]
    t0 = time.process_time()
    sp.dtw_distance_matrix(A, B)
    assert time.process_time() - t0 < 10.0


# --- errors --------------------------------------------------------------------------------------


def test_errors():
    x = np.ones(100)
    with pytest.raises(ValueError, match="x must have 1 dimensions"):
        sp.frame_signal(np.ones((2, 50)), 10, 5)
    with pytest.raises(ValueError, match="empty"):
        sp.frame_signal(np.ones(0), 10, 5)
    with pytest.raises(ValueError, match="hop must be >= 1"):
        sp.frame_signal(x, 10, 0)
    with pytest.raises(TypeError, match="frame_length must be an integer"):
        sp.frame_signal(x, 10.5, 5)
    with pytest.raises(ValueError, match="NaN"):
        sp.pre_emphasis(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="n_fft = 128 is shorter"):
        sp.power_spectrum(np.ones((2, 200)), 128)
    with pytest.raises(ValueError, match="window must have shape"):
        sp.window_frames(np.ones((2, 10)), np.ones(9))
    with pytest.raises(ValueError, match="window must be 'hamming'"):
        sp.get_window("kaiser", 10)
    with pytest.raises(ValueError, match="f_max"):
        sp.mel_filterbank(26, 256, 8000, f_max=5000)
    with pytest.raises(ValueError, match="f_min"):
        sp.mel_filterbank(26, 256, 8000, f_min=4000)
    with pytest.raises(ValueError, match="frequency bins"):
        sp.mfcc_from_power(np.ones((3, 129)), sp.mel_filterbank(26, 512, 8000), 13)
    with pytest.raises(ValueError, match="n_mfcc = 30 exceeds"):
        sp.mfcc_from_power(np.ones((3, 129)), sp.mel_filterbank(26, 256, 8000), 30)
    with pytest.raises(ValueError, match="negative"):
        sp.mfcc_from_power(-np.ones((3, 129)), sp.mel_filterbank(26, 256, 8000), 13)
    with pytest.raises(ValueError, match="same D"):
        sp.dtw_distance(np.ones((3, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="no frames"):
        sp.dtw_distance(np.ones((0, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="band must be >= 0"):
        sp.dtw_distance(np.ones((3, 2)), np.ones((3, 2)), band=-1)
    with pytest.raises(ValueError, match=r"B\[1\] has D = 3"):
        sp.dtw_distance_matrix([np.ones((3, 2))], [np.ones((3, 2)), np.ones((4, 3))])
    with pytest.raises(TypeError, match="list"):
        sp.dtw_distance_matrix(np.ones((3, 2)), [np.ones((3, 2))])
    with pytest.raises(ValueError, match=r"features_list\[1\] has D = 3"):
        sp.pad_features([np.ones((3, 2)), np.ones((4, 3))])
    with pytest.raises(ValueError, match="eps"):
        sp.cmvn(np.ones((3, 2)), eps=-1.0)
    with pytest.raises(ValueError, match="width must be >= 1"):
        sp.deltas(np.ones((3, 2)), 0)
