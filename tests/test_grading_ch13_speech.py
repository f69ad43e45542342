"""Grading round trip for ch13_speech in a temporary nbgrader course: the solution scores full
marks, the release scores 0 without breaking the grader, each planted bug zeroes exactly the test
cells it should (a band that is not widened only the hidden DTW test, which has the case), the
delegations (python_speech_features, the course's reference) earn nothing, the feedback names
what is wrong, the solution runs top to bottom in under 60 s and its template recogniser shows
what the written answer discusses, and the class-scale grader agrees.

The shared tests come from grading_course.RoundTrip; this file holds what is ch13's own."""

from __future__ import annotations

import re

import pytest
from grading_course import (
    Bug,
    Delegation,
    RoundTrip,
    code_cells,
    printed,
    stderr_outputs,
)

pytestmark = pytest.mark.slow

A = "ch13_speech"
AUTO = {  # autograded test cells and their points
    "test_frame_signal_visible": 1,
    "test_frame_signal_hidden": 3,
    "test_mel_filterbank_visible": 1,
    "test_mel_filterbank_hidden": 3,
    "test_mfcc_from_power_visible": 1,
    "test_mfcc_from_power_hidden": 3,
    "test_dtw_distance_visible": 1,
    "test_dtw_distance_hidden": 4,
    "test_cmvn_visible": 1,
    "test_cmvn_hidden": 2,
}
FR = ["test_frame_signal_visible", "test_frame_signal_hidden"]
MEL = ["test_mel_filterbank_visible", "test_mel_filterbank_hidden"]
MF = ["test_mfcc_from_power_visible", "test_mfcc_from_power_hidden"]
DTW = ["test_dtw_distance_visible", "test_dtw_distance_hidden"]
CM = ["test_cmvn_visible", "test_cmvn_hidden"]

SQRT_COST = "C = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))"

# name -> Bug(cell, old, new, the test cells that must score 0); every other test cell keeps
# full marks
BUGS = {
    # floor instead of ceil: the last partial frame is dropped.
    "bug_frame_drops_partial_frame": Bug(
        "frame_signal",
        "(L - frame_length + hop - 1) // hop",
        "(L - frame_length) // hop",
        FR,
        also=(("padded[:L] = x", "padded[: min(L, len(padded))] = x[: len(padded)]"),),
    ),
    "bug_frame_windowed": Bug(
        "frame_signal",
        "frames = padded[idx]",
        "frames = padded[idx] * np.hamming(frame_length)",
        FR,
    ),
    "bug_mel_corners_in_hz": Bug(
        "mel_filterbank",
        "corners = mel_to_hz(mels)",
        "corners = np.linspace(f_min, f_max, n_mels + 2)",
        MEL,
    ),
    "bug_mel_f_max_is_sample_rate": Bug(
        "mel_filterbank", "f_max = sample_rate / 2", "f_max = sample_rate", MEL
    ),
    "bug_mfcc_dct_not_orthonormal": Bug("mfcc_from_power", ', norm="ortho")', ")", MF),
    "bug_mfcc_log10": Bug("mfcc_from_power", "np.log(np.maximum", "np.log10(np.maximum", MF),
    "bug_mfcc_no_log_floor": Bug(
        "mfcc_from_power", "np.log(np.maximum(E, log_floor))", "np.log(E)", MF
    ),
    "bug_dtw_squared_cost": Bug(
        "dtw_distance", SQRT_COST, "C = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)", DTW
    ),
    "bug_dtw_no_diagonal_step": Bug(
        "dtw_distance",
        "min(D[i - 1, j], D[i, j - 1], D[i - 1, j - 1])",
        "min(D[i - 1, j], D[i, j - 1])",
        DTW,
    ),
    # Right on the visible test (equal lengths); the hidden case with |Ta - Tb| > band gives inf.
    "bug_dtw_band_not_widened": Bug(
        "dtw_distance", "r = max(band, abs(Ta - Tb))", "r = band", ["test_dtw_distance_hidden"]
    ),
    "bug_cmvn_ddof_1": Bug("cmvn", "sigma = c.std(axis=0)", "sigma = c.std(axis=0, ddof=1)", CM),
    "bug_cmvn_divides_by_zero": Bug("cmvn", "/ np.where(sigma > eps, sigma, 1.0)", "/ sigma", CM),
    "bug_cmvn_per_frame": Bug(
        "cmvn",
        "mu = c.mean(axis=0)",
        "mu = c.mean(axis=1, keepdims=True)",
        CM,
        also=(("sigma = c.std(axis=0)", "sigma = c.std(axis=1, keepdims=True)"),),
    ),
}

DELEGATE_FRAMESIG = """from python_speech_features import sigproc

def frame_signal(x, frame_length, hop):
    return sigproc.framesig(x, frame_length, hop)"""

DELEGATE_FILTERBANK = """def mel_filterbank(n_mels, n_fft, sample_rate, f_min=0.0, f_max=None):
    import python_speech_features
    return python_speech_features.get_filterbanks(n_mels, n_fft, sample_rate, f_min, f_max)"""

DELEGATE_DTW = """from rnn_ref.numpy.speech import dtw_distance as _reference_dtw

def dtw_distance(a, b, band=None):
    return _reference_dtw(a, b, band)"""

DELEGATE_CMVN = """def cmvn(features, eps=1e-8):
    import rnn_ref.numpy
    return rnn_ref.numpy.cmvn(features, eps)"""

# student -> Delegation(answer cell, its new source, the test cells that must score 0)
DELEGATIONS = {
    "delegate_psf_framesig": Delegation("frame_signal", DELEGATE_FRAMESIG, FR),
    "delegate_psf_filterbank": Delegation("mel_filterbank", DELEGATE_FILTERBANK, MEL),
    "delegate_reference_dtw": Delegation("dtw_distance", DELEGATE_DTW, DTW),
    "delegate_reference_cmvn": Delegation("cmvn", DELEGATE_CMVN, CM),
}

RT = RoundTrip(
    A,
    AUTO,
    full_marks=20,
    written={"written_cmvn_speakers": 2},
    bugs=BUGS,
    delegations=DELEGATIONS,
    release_listed=True,
    release_excludes=(
        "BEGIN SOLUTION",
        "HIDDEN TESTS",
        "check_",
        "np.where(sigma",
        "padded[idx]",
    ),
)
globals().update(RT.tests())  # graded, and the tests every round trip shares


def test_feedback_names_what_is_wrong(graded):
    err = graded.error("bug_frame_drops_partial_frame", "test_frame_signal_hidden")
    assert err.ename == "GradingError" and "one too few" in err.evalue
    err = graded.error("bug_frame_windowed", "test_frame_signal_hidden")
    assert "windowed" in err.evalue
    err = graded.error("bug_mel_corners_in_hz", "test_mel_filterbank_hidden")
    assert "equally spaced in Hz" in err.evalue
    err = graded.error("bug_mel_f_max_is_sample_rate", "test_mel_filterbank_hidden")
    assert "Nyquist" in err.evalue
    err = graded.error("bug_mfcc_dct_not_orthonormal", "test_mfcc_from_power_hidden")
    assert "not orthonormal" in err.evalue
    err = graded.error("bug_mfcc_log10", "test_mfcc_from_power_hidden")
    assert "base 10" in err.evalue
    err = graded.error("bug_mfcc_no_log_floor", "test_mfcc_from_power_hidden")
    assert "NaN or infinity" in err.evalue and "frame f=" in err.evalue
    err = graded.error("bug_dtw_squared_cost", "test_dtw_distance_hidden")
    assert "squared distance" in err.evalue
    err = graded.error("bug_dtw_band_not_widened", "test_dtw_distance_hidden")
    assert "max(band, |Ta - Tb|)" in err.evalue
    err = graded.error("bug_cmvn_ddof_1", "test_cmvn_hidden")
    assert "ddof=1" in err.evalue
    err = graded.error("bug_cmvn_divides_by_zero", "test_cmvn_hidden")
    assert "std 0" in err.evalue
    err = graded.error("bug_cmvn_per_frame", "test_cmvn_hidden")
    assert "each frame is normalised" in err.evalue
    for who, cell, name in (
        ("delegate_psf_framesig", "test_frame_signal_hidden", "python_speech_features.framesig"),
        (
            "delegate_psf_filterbank",
            "test_mel_filterbank_hidden",
            "python_speech_features.get_filterbanks",
        ),
        ("delegate_reference_dtw", "test_dtw_distance_hidden", "rnn_ref.numpy.dtw_distance"),
        ("delegate_reference_cmvn", "test_cmvn_hidden", "rnn_ref.numpy.cmvn"),
    ):
        err = graded.error(who, cell)
        assert err.ename == "DelegationError" and name in err.evalue, (who, err.evalue)


def test_solution_runs_top_to_bottom_in_under_a_minute(tmp_path):
    nb = RT.run_solution(tmp_path)
    assert not stderr_outputs(code_cells(nb))
    out = printed(nb)
    rows = {
        m.group(1).strip(): [float(v) for v in m.groups()[1:]]
        for m in re.finditer(r"^(speaker 0[^\d]*|four other speakers)\s+(\d+)%\s+(\d+)%\s+(\d+)%$",
                             out, flags=re.M)
    }  # fmt: skip
    assert set(rows) == {"speaker 0, new recordings", "four other speakers"}, out
    same, other = rows["speaker 0, new recordings"], rows["four other speakers"]
    # raw, CMN, CMVN: the channels hurt raw MFCCs; normalising helps (the written answer's
    # premise), and other speakers are harder than the template's own speaker
    assert same[1] > same[0] + 10 and other[1] > other[0] + 10
    assert same[2] > same[0] and other[2] > other[0]
    assert other[1] <= same[1] and other[2] <= same[2]
    assert any(o.get("output_type") == "display_data" for c in code_cells(nb) for o in c.outputs)


def test_class_scale_grader_agrees(tmp_path):
    """`rnn-course grade` on a flat folder of <student>.ipynb: the kernels (sandboxed: they
    cannot read rnn_ref.numpy) only record, and the grader replays the test cells in its own
    process, where the expected values and the named-mistake diagnoses are computed."""
    replayed = ("bug_frame_drops_partial_frame", "bug_mfcc_dct_not_orthonormal",
                "bug_dtw_band_not_widened", "bug_cmvn_divides_by_zero")  # fmt: skip
    RT.grade_class(tmp_path, replayed)


def test_checks_accept_the_reference_and_refuse_the_libraries():
    """The hidden checks pass the reference itself on many seeds (no fragile case), and refuse
    python_speech_features while leaving it working afterwards."""
    import numpy as np
    import python_speech_features as psf

    from rnn_ref.grading import DelegationError, trusted_reference
    from rnn_ref.grading import ch13_speech as checks

    ref = trusted_reference("rnn_ref.numpy")
    for s in range(5):
        seeds = tuple(range(2000 + 10 * s, 2009 + 10 * s))
        checks.check_frame_signal(ref.frame_signal, seeds=seeds)
        checks.check_mel_filterbank(ref.mel_filterbank, seeds=seeds)
        checks.check_mfcc_from_power(ref.mfcc_from_power, seeds=seeds)
        checks.check_dtw_distance(ref.dtw_distance, seeds=seeds)
        checks.check_cmvn(ref.cmvn, seeds=seeds)

    def via_psf(x, frame_length, hop):
        return psf.sigproc.framesig(x, frame_length, hop)

    with pytest.raises(DelegationError, match="python_speech_features.framesig"):
        checks.check_frame_signal(via_psf)
    assert psf.sigproc.framesig(np.ones(5), 2, 2).shape == (3, 2)  # restored
