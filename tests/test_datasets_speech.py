"""rnn_ref.datasets.load_spoken_digits: the shipped FSDD copy is exactly upstream's recordings
(counts, split, lengths, samples and hashes recorded from the WAV files), and a user's folder of
WAV files is read, resampled and labelled right, with a clear message for every way it fails."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.io import wavfile

import rnn_ref.datasets as ds
from rnn_ref.datasets import SpokenDigits, load_spoken_digits

FSDD_SPEAKERS = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]

# Recorded from ../shared/data/fsdd/recordings/*.wav (upstream commit 26eb9aa) with
# scipy.io.wavfile: (length, first five int16 samples, min, max, SHA-256 prefix of the samples).
KNOWN = {
    (0, "jackson", 0): (5148, [-369, -431, -475, -543, -571], -21657, 24163, "203db486a8a01b66"),
    (7, "jackson", 32): (4301, [307, -238, 265, -217, 140], -9213, 9673, "f15ed680df0118a0"),
    (9, "theo", 49): (3204, [-22, -13, -8, -6, -6], -1068, 1735, "ba3cf0c65276b1c8"),
    (3, "george", 5): (3034, [-26, -249, -189, 302, 140], -13617, 12379, "237f6a905413332d"),
    (5, "nicolas", 12): (3336, [-512, -512, -768, -256, -512], -7168, 5632, "61a0dcdc9d8faf8d"),
    (1, "lucas", 0): (3022, [-2, -3, 4, 1, 2], -16311, 13626, "1693f95e77107260"),
    (8, "yweweler", 44): (1995, [-4, 0, -4, 2, -4], -3252, 2271, "16afe902732a7aea"),
}
FSDD_SHA256 = "4e0317650d9c876eeda8788b4d4132af747e323d495a3da12c9bce9bc456a45f"


@pytest.fixture(scope="module")
def fsdd():
    return load_spoken_digits("fsdd")


def _int16(x):
    return np.round(np.asarray(x) * 32768.0).astype(np.int16)


def test_fsdd_counts_labels_and_official_split(fsdd):
    assert isinstance(fsdd, SpokenDigits) and len(fsdd) == 3000 and fsdd.sample_rate == 8000
    assert fsdd.speakers == FSDD_SPEAKERS
    assert fsdd.digit.dtype == np.int64 and fsdd.index.dtype == np.int64
    # 6 speakers x 10 digits x 50 takes, each exactly once.
    keys = set(zip(fsdd.speaker.tolist(), fsdd.digit.tolist(), fsdd.index.tolist(), strict=True))
    assert keys == {(s, k, i) for s in FSDD_SPEAKERS for k in range(10) for i in range(50)}
    test = fsdd.official_test()
    assert test.dtype == bool and test.sum() == 300
    assert set(fsdd.index[test].tolist()) == set(range(5))
    np.testing.assert_array_equal(np.bincount(fsdd.digit[test]), np.full(10, 30))
    assert "Jackson" in fsdd.source and "CC BY-SA 4.0" in fsdd.source


def test_fsdd_samples_are_upstreams_exactly(fsdd):
    for (k, s, i), (length, first, lo, hi, sha) in KNOWN.items():
        (j,) = np.flatnonzero((fsdd.digit == k) & (fsdd.speaker == s) & (fsdd.index == i))
        x = fsdd.signals[j]
        assert x.dtype == np.float64 and x.shape == (length,)
        w = _int16(x)
        np.testing.assert_array_equal(x * 32768.0, w)  # exactly int16 / 32768, nothing lost
        assert w[:5].tolist() == first and (w.min(), w.max()) == (lo, hi)
        assert hashlib.sha256(w.astype("<i2").tobytes()).hexdigest()[:16] == sha
    flat = np.concatenate([_int16(x) for x in fsdd.signals]).astype("<i2")
    assert flat.size == 10_498_424
    assert hashlib.sha256(flat.tobytes()).hexdigest() == FSDD_SHA256
    assert max(np.abs(x).max() for x in fsdd.signals) <= 1.0
    d = fsdd.lengths / fsdd.sample_rate
    assert 0.14 < d.min() and d.max() < 2.3 and 0.40 < np.median(d) < 0.44  # seconds


def test_fsdd_loads_fast_and_returns_fresh_copies(fsdd):
    start = time.process_time()
    a = load_spoken_digits("FSDD ")
    assert time.process_time() - start < 1.0  # decoded once per process (cached)
    a.signals[0][:] = 0.0
    a.digit[0] = 9
    b = load_spoken_digits("fsdd")
    assert b.signals[0].any() and b.digit[0] == fsdd.digit[0]  # a caller's edit does not leak


def test_fsdd_resampled_on_request(fsdd):
    d = load_spoken_digits("fsdd", sample_rate=16000)
    assert d.sample_rate == 16000 and len(d) == 3000
    np.testing.assert_array_equal(d.lengths, 2 * fsdd.lengths)
    # Upsampling by 2 with a polyphase filter keeps the original samples up to the filter's
    # ripple: the even samples follow the 8 kHz waveform closely.
    x, y = fsdd.signals[0], d.signals[0]
    assert np.corrcoef(x, y[::2])[0, 1] > 0.99
    assert max(np.abs(s).max() for s in d.signals) <= 1.0


def test_subset_and_speakers(fsdd):
    jackson = fsdd.subset(fsdd.speaker == "jackson")
    assert len(jackson) == 500 and jackson.speakers == ["jackson"]
    assert jackson.sample_rate == 8000 and jackson.source == fsdd.source
    picked = fsdd.subset([2, 0])
    assert (
        picked.signals[1] is fsdd.signals[0]
        and picked.digit.tolist() == fsdd.digit[[2, 0]].tolist()
    )
    assert len(fsdd.subset(np.array([], dtype=np.int64))) == 0
    with pytest.raises(ValueError, match=r"boolean mask must have shape \(3000,\)"):
        fsdd.subset(np.ones(5, dtype=bool))
    with pytest.raises(IndexError, match="out of range for 3000"):
        fsdd.subset([3000])
    with pytest.raises(TypeError, match="boolean mask or 1-D integer indices"):
        fsdd.subset([0.5])
    with pytest.raises(ValueError, match=r"digit must have shape \(1,\)"):
        SpokenDigits([np.zeros(3)], 8000, np.zeros(2, int), np.array(["a"]), np.zeros(1, int))


def test_fsdd_speaker_metadata():
    meta = json.loads((Path(ds.__file__).parent / "data" / "fsdd" / "speakers.json").read_text())
    assert sorted(meta) == FSDD_SPEAKERS
    assert all(m["gender"] == "male" and m["language"] == "english" for m in meta.values())
    assert meta["nicolas"]["accent"] == "BEL/French" and meta["george"]["accent"] == "GRC/Greek"


def test_fsdd_folder_ships_licence_and_attribution():
    folder = Path(ds.__file__).parent / "data" / "fsdd"
    readme = (folder / "README.md").read_text()
    assert "Free Spoken Digit Dataset, Z. Jackson et al., CC BY-SA 4.0" in readme
    assert "26eb9aaf76e81b692f806f9140c2d2777410d7a1" in readme and FSDD_SHA256 in readme
    licence = (folder / "LICENSE").read_text()
    assert "Attribution-ShareAlike 4.0 International Public License" in licence
    assert "https://creativecommons.org/licenses/by-sa/4.0/" in licence


# --- a user's folder of WAV files ------------------------------------------------------------


def _tone(rate, seconds=0.25, freq=440.0, amp=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def test_user_folder_mixed_rates_channels_and_types(tmp_path):
    rng = np.random.default_rng(0)
    pcm = (rng.integers(-20000, 20000, size=2000)).astype(np.int16)
    wavfile.write(tmp_path / "3_alice_0.wav", 8000, pcm)  # 8 kHz int16 mono: read exactly
    stereo = np.stack([_tone(16000), -0.5 * _tone(16000)], axis=1)  # 16 kHz stereo, float64
    wavfile.write(tmp_path / "3_alice_1.wav", 16000, (stereo * 32767).astype(np.int16))
    wavfile.write(tmp_path / "7_bob_0.wav", 8000, _tone(8000, amp=0.25).astype(np.float32))
    (tmp_path / "notes.txt").write_text("not audio: ignored")
    sub = tmp_path / "more"
    sub.mkdir()
    wavfile.write(sub / "0_bob_12.WAV", 44100, (_tone(44100) * 2**31 * 0.9).astype(np.int32))

    d = load_spoken_digits(tmp_path)
    assert len(d) == 4 and d.sample_rate == 8000 and d.speakers == ["alice", "bob"]
    # Ordered by speaker, then digit, then index.
    assert d.speaker.tolist() == ["alice", "alice", "bob", "bob"]
    assert d.digit.tolist() == [3, 3, 0, 7] and d.index.tolist() == [0, 1, 12, 0]
    np.testing.assert_array_equal(d.signals[0], pcm / 32768.0)
    # 16 kHz stereo -> mono (the mean of the channels, 0.25 x tone) at 8 kHz, half the samples.
    assert d.signals[1].shape == (2000,)
    np.testing.assert_allclose(d.signals[1][200:-200], 0.25 * _tone(8000)[200:-200], atol=2e-3)
    # 44.1 kHz int32 -> 8 kHz: 0.25 s is 2000 samples, the tone is kept at 0.45 amplitude.
    assert d.signals[2].shape == (2000,)
    np.testing.assert_allclose(
        d.signals[2][200:-200], 0.45 * _tone(8000, amp=1)[200:-200], atol=2e-3
    )
    np.testing.assert_allclose(d.signals[3], _tone(8000, amp=0.25), atol=1e-7)  # float32 WAV
    assert all(x.dtype == np.float64 and np.abs(x).max() <= 1 for x in d.signals)
    assert d.official_test().tolist() == [True, True, False, True]
    assert str(tmp_path) in d.source

    up = load_spoken_digits(str(tmp_path), sample_rate=16000)
    assert up.sample_rate == 16000 and up.lengths.tolist() == [4000, 4000, 4000, 4000]


def test_unknown_name_and_missing_paths(tmp_path):
    with pytest.raises(ValueError, match=r"unknown spoken-digit set 'fsd'.*Did you mean 'fsdd'"):
        load_spoken_digits("fsd")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_spoken_digits(tmp_path / "nowhere")
    (tmp_path / "a.wav").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="a file, not a folder"):
        load_spoken_digits(tmp_path / "a.wav")
    with pytest.raises(TypeError, match="name or a folder path, got int"):
        load_spoken_digits(3)
    for bad in (0, -8000, 8000.0, True):
        with pytest.raises(ValueError, match="sample_rate must be a positive integer"):
            load_spoken_digits("fsdd", sample_rate=bad)


def test_user_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no audio")
    with pytest.raises(ValueError, match=r"holds no \.wav files"):
        load_spoken_digits(empty)

    misnamed = tmp_path / "misnamed"
    misnamed.mkdir()
    wavfile.write(misnamed / "seven_bob_1.wav", 8000, np.zeros(100, np.int16))
    with pytest.raises(ValueError, match=r"seven_bob_1\.wav: a WAV file must be named"):
        load_spoken_digits(misnamed)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "1_bob_0.wav").write_bytes(b"RIFF\x00\x00not a wav at all")
    with pytest.raises(ValueError, match=r"1_bob_0\.wav: not a readable WAV file"):
        load_spoken_digits(broken)

    silent = tmp_path / "silent"
    silent.mkdir()
    wavfile.write(silent / "1_bob_0.wav", 8000, np.zeros(0, np.int16))
    with pytest.raises(ValueError, match=r"1_bob_0\.wav: holds no samples"):
        load_spoken_digits(silent)

    twice = tmp_path / "twice"
    (twice / "x").mkdir(parents=True)
    wavfile.write(twice / "1_bob_0.wav", 8000, np.ones(10, np.int16))
    wavfile.write(twice / "x" / "1_bob_0.wav", 8000, np.ones(10, np.int16))
    with pytest.raises(ValueError, match=r"same recording \(1, 'bob', 0\)"):
        load_spoken_digits(twice)


def test_corrupt_archive_is_refused(tmp_path):
    good = Path(ds.SPEECH_SETS["fsdd"])
    truncated = tmp_path / "cut.npz.xz"
    truncated.write_bytes(good.read_bytes()[:100_000])
    with pytest.raises(ValueError, match="not a readable spoken-digit archive"):
        ds._unpack_spoken_digits(str(truncated))
    with pytest.raises(FileNotFoundError, match="archive .* is missing"):
        ds._unpack_spoken_digits(str(tmp_path / "gone.npz.xz"))


def test_pack_round_trip_is_lossless(tmp_path):
    rng = np.random.default_rng(1)
    audio = [rng.integers(-32768, 32768, size=n).astype(np.int16) for n in (1, 7, 300)]
    audio[2][:2] = [-32768, 32767]  # extreme jumps wrap around in the differences
    out = tmp_path / "x.npz.xz"
    sha = ds._pack_spoken_digits(out, audio, [1, 2, 3], ["a", "b", "c"], [0, 1, 2], 16000)
    flat, offsets, digit, speaker, index, rate = ds._unpack_spoken_digits(str(out))
    assert rate == 16000 and offsets.tolist() == [0, 1, 8, 308]
    np.testing.assert_array_equal(flat, np.concatenate(audio))
    assert sha == hashlib.sha256(np.concatenate(audio).astype("<i2").tobytes()).hexdigest()
    assert digit.tolist() == [1, 2, 3] and speaker.tolist() == ["a", "b", "c"]
    assert index.tolist() == [0, 1, 2] and not flat.flags.writeable
    with pytest.raises(ValueError, match="non-empty 1-D int16"):
        ds._pack_spoken_digits(out, [np.zeros(3)], [1], ["a"], [0], 8000)


# --- the synthetic set (espeak-ng and flite voices) -------------------------------------------

SYNTH_SHA256 = "3e1d7a04fdd0dfe12399e8b96d930242ab69b368edf5ed38e284502cecba147f"


@pytest.fixture(scope="module")
def synth():
    return load_spoken_digits("synthetic")


def test_synthetic_counts_voices_and_takes(synth):
    assert len(synth) == 1240 and synth.sample_rate == 8000 and len(synth.speakers) == 124
    engines = [v.split(":")[0] for v in synth.speakers]
    assert engines.count("espeak") == 104 and engines.count("flite") == 20
    assert "espeak:en-gb-scotland+f2:s190:p65" in synth.speakers
    assert "flite:slt:d1.15:f192" in synth.speakers
    accents = {v.split(":")[1].split("+")[0] for v in synth.speakers if v.startswith("espeak")}
    assert len(accents) == 8 and {"en-us", "en-gb-scotland", "en-029"} <= accents
    # Every voice says every digit exactly once (one take, index 0).
    for v in synth.speakers:
        assert sorted(synth.digit[synth.speaker == v].tolist()) == list(range(10))
    assert (synth.index == 0).all()
    assert "espeak-ng" in synth.source and "CC0" in synth.source


def test_synthetic_samples_are_the_stored_ones_and_sane(synth, fsdd):
    flat = np.concatenate([_int16(x) for x in synth.signals]).astype("<i2")
    assert hashlib.sha256(flat.tobytes()).hexdigest() == SYNTH_SHA256
    rms = np.array([np.sqrt(np.mean(x**2)) for x in synth.signals])
    peak = np.array([np.abs(x).max() for x in synth.signals])
    assert rms.min() > 1e-3 and peak.max() <= 0.7  # no silent take, nothing near clipping
    # Trimmed like FSDD: durations comparable (median within 10 %, 5 % and 95 % quantiles close).
    d_s, d_f = synth.lengths / 8000, fsdd.lengths / 8000
    assert abs(np.median(d_s) / np.median(d_f) - 1) < 0.1
    assert 0.15 < np.quantile(d_s, 0.05) and np.quantile(d_s, 0.95) < 0.8
    # The per-voice level (one gain per voice) spans the range of FSDD's speakers.
    by_voice = [peak[synth.speaker == v].max() for v in synth.speakers]
    assert min(by_voice) < 0.1 and max(by_voice) > 0.5


def test_synthetic_metadata_and_licence(synth):
    folder = Path(ds.__file__).parent / "data" / "synth_digits"
    info = json.loads((folder / "voices.json").read_text())
    assert info["sha256"] == SYNTH_SHA256 and info["sample_rate"] == 8000
    assert sorted(v["name"] for v in info["voices"]) == synth.speakers
    assert "1.51" in info["versions"]["espeak-ng"] and "2.2" in info["versions"]["flite"]
    readme = (folder / "README.md").read_text()
    assert "python -m rnn_ref.data.synth_digits.generate" in readme and SYNTH_SHA256 in readme
    assert "CC0 1.0 Universal" in (folder / "LICENSE").read_text()
    assert (folder / "generate.py").is_file()


def test_synthetic_generator_reports_a_missing_synthesiser(monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "generate", Path(ds.__file__).parent / "data" / "synth_digits" / "generate.py"
    )
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    monkeypatch.setattr(gen.shutil, "which", lambda tool: None)
    with pytest.raises(SystemExit, match="espeak-ng is not installed.*apt-get install espeak-ng"):
        gen.main()
    # The fixed list of voices is what was stored (same seed -> same names).
    names = sorted(v["name"] for v in gen.voice_list(np.random.default_rng(gen.SEED)))
    info = json.loads((Path(gen.__file__).parent / "voices.json").read_text())
    assert names == sorted(v["name"] for v in info["voices"])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.lists(st.integers(-32768, 32767), min_size=1, max_size=60), min_size=1, max_size=8),
    st.integers(1, 96000),
)
def test_pack_round_trip_property(tmp_path, recordings, rate):
    # Any int16 recordings come back exactly, including a rebuilt file at the same path (the
    # decode cache must notice the new contents).
    audio = [np.array(r, dtype=np.int16) for r in recordings]
    n = len(audio)
    out = tmp_path / "p.npz.xz"
    ds._pack_spoken_digits(out, audio, [i % 10 for i in range(n)], ["s"] * n, list(range(n)), rate)
    flat, offsets, digit, speaker, index, sample_rate = ds._unpack_spoken_digits(str(out))
    assert sample_rate == rate and offsets[-1] == flat.size
    for i, a in enumerate(audio):
        np.testing.assert_array_equal(flat[offsets[i] : offsets[i + 1]], a)
    assert index.tolist() == list(range(n)) and speaker.tolist() == ["s"] * n


def test_fsdd_nicolas_is_8_bit_with_an_offset(fsdd):
    # A property of upstream's files that the README warns about (a speaker cue besides voice).
    for sp in fsdd.speakers:
        w = np.concatenate([_int16(x) for x in fsdd.subset(fsdd.speaker == sp).signals])
        w = w.astype(np.int64)
        if sp == "nicolas":
            assert (w % 256 == 0).all() and np.unique(w).size == 132
            assert -256 < w.mean() < -200
        else:
            assert (w % 256 == 0).mean() < 0.02 and abs(w.mean()) < 5
