"""Class-scale grading (`rnn-course grade`): one batch of correct, partial, blank and hostile
ch02_rnn submissions, graded in parallel sandboxed kernels; each outcome is asserted exactly,
and every other grade and the gradebook stay intact."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import psutil
import pytest
from grading_course import ROOT, class_grade, nbgrader, read, with_replaced, with_source
from test_grading_ch02_rnn import DELEGATE_TORCH

from rnn_ref.autograde.sandbox import enforced

pytestmark = pytest.mark.slow

A = "ch02_rnn"
FULL = 14
STEP, SEQ, OUT, LOSS = 3, 4, 3, 4  # points per function (visible + hidden)
LANDLOCK = bool(enforced().get("landlock"))
TEST_IDS = [
    "test_rnn_step_forward_visible",
    "test_rnn_step_forward_hidden",
    "test_rnn_forward_visible",
    "test_rnn_forward_hidden",
    "test_temporal_affine_forward_visible",
    "test_temporal_affine_forward_hidden",
    "test_softmax_loss_forward_visible",
    "test_softmax_loss_forward_hidden",
]

SOLUTION = read(ROOT / "solutions" / A / f"{A}.ipynb")
RELEASE = read(ROOT / "exercises" / A / f"{A}.ipynb")
ZEROS_OUTPUT = """def temporal_affine_forward(hs, params):
    return np.zeros((hs.shape[0], hs.shape[1], params["W_hy"].shape[0])), None"""


def added(nb, after: str, source: str):
    """``nb`` with a new code cell after cell ``after`` (a student's added cell)."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    idx = next(
        i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == after
    )
    nb.cells.insert(idx + 1, nbformat.v4.new_code_cell(source))
    return nb


def without_tests(nb):
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.cells = [
        c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in TEST_IDS
    ]
    return nb


def with_all_tests(nb, transform):
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") in TEST_IDS:
            transform(c)
    return nb


def _pass_only(c):
    c.source = "print('Visible tests passed.')"


def _retype(c):
    c.cell_type = "markdown"
    c.pop("outputs", None)
    c.pop("execution_count", None)


def _duplicate_tests(nb):
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    out = []
    for c in nb.cells:
        out.append(c)
        if c.metadata.get("nbgrader", {}).get("grade_id") in TEST_IDS:
            copy = nbformat.from_dict(json.loads(json.dumps(c)))
            copy["id"] = f"{c['id']}-again"  # same grade_id (the point), distinct cell id
            out.append(copy)
    nb.cells = out
    return nb


# student -> (notebook or raw bytes, expected total, words expected in the status or None)
def batch():
    sol = SOLUTION
    zeros = with_source(sol, "temporal_affine_forward", ZEROS_OUTPUT)
    cases = {
        "correct": (sol, FULL, None),
        "partial": (
            with_replaced(
                sol, "softmax_loss_forward", "z = ys - ys.max(axis=2, keepdims=True)", "z = ys"
            ),
            FULL - 3,
            None,
        ),
        "blank": (RELEASE, 0, None),
        "infinite_loop": (
            with_replaced(
                sol,
                "rnn_forward",
                "    N, T, _ = x.shape\n",
                "    N, T, _ = x.shape\n    while True:\n        pass\n",
            ),
            FULL - SEQ,
            "time limit",
        ),
        "sys_exit": (
            with_replaced(
                sol, "rnn_step_forward", "    h = np.tanh(a)\n", "    import sys\n    sys.exit(3)\n"
            ),
            FULL - STEP - SEQ,
            None,
        ),
        "os_exit": (
            with_replaced(
                sol,
                "temporal_affine_forward",
                "    ys = hs",
                "    import os\n    os._exit(1)\n    ys = hs",
            ),
            STEP + SEQ,
            "kernel died",
        ),
        "memory_bomb": (
            with_replaced(
                sol,
                "softmax_loss_forward",
                "    N, T, V = ys.shape\n",
                "    N, T, V = ys.shape\n    hog = bytearray(64 * 2**30)\n",
            ),
            FULL - LOSS,
            None,
        ),
        "child_process": (
            added(
                sol,
                "setup",
                "import subprocess\nsubprocess.Popen(['sleep', "
                "'31337'], start_new_session=True)\nprint('started')",
            ),
            FULL,
            None,
        ),
        "huge_output": (
            added(sol, "rnn_forward", "for _ in range(2000):\n    print('x' * 10000)"),
            FULL,
            "truncated",
        ),
        "deleted_tests": (without_tests(sol), FULL, "missing"),
        "duplicated_tests": (_duplicate_tests(sol), FULL, "more than once"),
        "edited_tests": (with_all_tests(zeros, _pass_only), FULL - OUT, "edited"),
        "retyped_tests": (with_all_tests(zeros, _retype), FULL - OUT, "edited"),
        "added_cells": (
            added(
                with_source(
                    sol,
                    "rnn_step_forward",
                    """def rnn_step_forward(x, h_prev, params):
    return my_cell(x, h_prev, params), None""",
                ),
                "setup",
                """def my_cell(x, h_prev, p):
    return np.tanh(x @ p["W_xh"].T + h_prev @ p["W_hh"].T + p["b_h"])""",
            ),
            FULL,
            None,
        ),
        "forged_grade_cell": (_forged(sol), FULL, None),
        "malformed": (b'{"cells": [ this is not json', 0, "not a readable notebook"),
        "truncated": (nbformat.writes(sol).encode()[:3000], 0, "not a readable notebook"),
        "not_utf8": (b"\xff\xfe\x00\x01garbage", 0, "not a notebook"),
        "rebind_allclose": (
            added(
                zeros,
                "setup",
                """import numpy.testing
np.allclose = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
np.abs = lambda a: np.zeros_like(a)""",
            ),
            FULL - OUT,
            None,
        ),
        "rebind_helpers": (
            added(
                zeros,
                "setup",
                """import rnn_ref.grading, rnn_ref.grading._guard as g
rnn_ref.grading.__dict__["assert_close"] = lambda *a, **k: None
rnn_ref.grading.__dict__["assert_array"] = lambda *a, **k: a[1]
g.__dict__["guarded_call"] = lambda name, fn, *args, **k: fn(*args)
rnn_ref.grading.guarded_call.__code__ = (lambda name, fn, *a, **k: fn(*a)).__code__
assert_close = lambda *a, **k: None""",
            ),
            0,
            None,
        ),  # breaking the recorder records nothing
        # Each answer cell loads the instructor's solution of that cell from disk: full marks
        # anywhere the file is readable, 0 in the sandbox.
        "read_solution": (_stealing(RELEASE), 0 if LANDLOCK else FULL, None),
        "delegate_numpy": (
            with_source(
                sol,
                "rnn_forward",
                """def rnn_forward(x, h0, params):
    import rnn_ref.numpy
    return rnn_ref.numpy.rnn_forward(x, h0, params)""",
            ),
            FULL - SEQ,
            None,
        ),
        "delegate_torch": (with_source(sol, "rnn_forward", DELEGATE_TORCH), FULL - SEQ, None),
        "fake_passed": (
            with_source(
                zeros,
                "temporal_affine_forward",
                ZEROS_OUTPUT.replace(
                    "    return",
                    "    print('Visible tests passed.')\n"
                    "    print('All hidden tests passed: 14/14')\n    return",
                ),
            ),
            FULL - OUT,
            None,
        ),
        "warnings": (
            with_replaced(
                sol,
                "rnn_step_forward",
                "    h = np.tanh(a)\n",
                "    import warnings\n    warnings.warn('debug', UserWarning)\n"
                "    np.exp(np.array([1000.0]))\n    h = np.tanh(a)\n",
            ),
            FULL,
            None,
        ),
    }
    return cases


STEAL = """import json
for _c in json.load(open({path!r}))["cells"]:
    if _c.get("metadata", {{}}).get("nbgrader", {{}}).get("grade_id") == {gid!r}:
        exec("".join(_c["source"]))"""


def _stealing(nb):
    path = str(ROOT / "solutions" / A / f"{A}.ipynb")
    for gid in (
        "rnn_step_forward",
        "rnn_forward",
        "temporal_affine_forward",
        "softmax_loss_forward",
    ):
        nb = with_source(nb, gid, STEAL.format(path=path, gid=gid))
    return nb


def _forged(nb):
    nb = added(nb, "setup", "print('I award myself points')")
    for c in nb.cells:
        if c.source.startswith("print('I award"):
            c.metadata["nbgrader"] = {
                "grade": True,
                "grade_id": "bonus",
                "points": 100,
                "locked": False,
                "solution": False,
                "schema_version": 3,
            }
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("class")
    course = tmp / "course"
    for d in ("solutions", "exercises"):
        (course / d).mkdir(parents=True)
        (course / d / A).symlink_to(ROOT / d / A)
    (course / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    submitted = course / "submitted"
    expected = {}
    for student, (nb, total, words) in batch().items():
        folder = submitted / student / A
        folder.mkdir(parents=True)
        data = nb if isinstance(nb, bytes) else nbformat.writes(nb).encode()
        (folder / f"{A}.ipynb").write_bytes(data)
        expected[student] = (total, words)
    # A wrong file name, and a student folder with nothing in it.
    (submitted / "wrong_name" / A).mkdir(parents=True)
    (submitted / "wrong_name" / A / "Untitled.ipynb").write_text(nbformat.writes(SOLUTION))
    expected["wrong_name"] = (FULL, "instead of")
    (submitted / "empty" / A).mkdir(parents=True)
    expected["empty"] = (0, "no notebook")

    before = {p.pid for p in psutil.process_iter()}
    t0 = time.monotonic()
    cmd = [
        str(Path(sys.executable).parent / "rnn-course"),
        "grade",
        A,
        str(submitted),
        "--jobs",
        "2",
        "--out",
        str(tmp / "out"),
        "--cell-timeout",
        "10",
        "--quiet",
    ]
    proc = subprocess.run(cmd, cwd=course, capture_output=True, text=True, timeout=1500)
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    rows = {r["student"]: r for r in csv.DictReader((tmp / "out" / "grades.csv").open())}
    return course, tmp / "out", rows, expected, proc, before, seconds


def test_every_student_gets_the_expected_outcome(graded):
    _, _, rows, expected, proc, _, _ = graded
    assert set(rows) == set(expected), proc.stdout
    wrong = {}
    for student, (total, words) in expected.items():
        row = rows[student]
        if float(row["total"]) != total or (words and words not in row["status"]):
            wrong[student] = (row["total"], row["status"], "expected", total, words)
    assert not wrong, wrong


def test_csv_has_the_promised_columns(graded):
    _, out, rows, _, _, _, _ = graded
    header = next(csv.reader((out / "grades.csv").open()))
    assert header[:4] == ["student", "total", "max", "status"]
    assert header[4:] == [*TEST_IDS[:8], "written_parameter_sharing"] or set(TEST_IDS) <= set(
        header
    )
    assert rows["correct"]["max"] == "16"
    assert rows["correct"]["written_parameter_sharing"] == ""  # to be graded by hand
    assert rows["blank"]["written_parameter_sharing"] == "0"  # untouched stub


def test_no_process_is_left_behind(graded):
    *_, before, _ = graded
    left = [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.pid not in before and "31337" in " ".join(p.info["cmdline"] or [])
    ]
    assert not left


def test_feedback_shows_no_hidden_tests_and_no_fake_pass(graded):
    _, out, _, _, _, _, _ = graded
    for student in ("correct", "partial", "blank", "fake_passed"):
        html = (out / "feedback" / student / A / f"{A}.html").read_text()
        assert "check_forward" not in html and "BEGIN HIDDEN" not in html
        assert "seeds=(201" not in html
        assert "their source is not shown" in html
    fake = (out / "feedback" / "fake_passed" / A / f"{A}.html").read_text()
    assert "ys is wrong" in fake
    partial = (out / "feedback" / "partial" / A / f"{A}.html").read_text()
    assert "loss contains NaN or infinity" in partial


def test_feedback_stays_small_when_a_student_prints_gigabytes(graded):
    _, out, _, _, _, _, _ = graded
    assert (out / "feedback" / "huge_output" / A / f"{A}.html").stat().st_size < 3 * 2**20


def test_gradebook_holds_every_grade(graded):
    course, out, rows, _, _, _, _ = graded
    r = nbgrader(course, "export", "--to", str(out / "export.csv"))
    assert r.returncode == 0, r.stderr[-2000:]
    exported = {e["student_id"]: e for e in csv.DictReader((out / "export.csv").open())}
    assert set(exported) == set(rows)
    for student, row in rows.items():
        assert float(exported[student]["raw_score"]) == float(row["total"]), student


def test_grading_again_gives_the_same_scores(graded, tmp_path):
    course, _, rows, _, _, _, _ = graded
    subs = tmp_path / "again"
    for student in ("partial", "rebind_helpers", "wrong_name"):
        src = course / "submitted" / student / A
        dst = subs / student / A
        dst.mkdir(parents=True)
        for f in src.iterdir():
            (dst / f.name).write_bytes(f.read_bytes())
    again = class_grade(A, subs, tmp_path / "out", cwd=course, timeout=600)
    for student, row in again.items():
        assert row == rows[student]


def test_flat_folder_and_zip_layouts(tmp_path):
    from rnn_ref.autograde.submissions import discover

    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "alice.ipynb").write_text(nbformat.writes(SOLUTION))
    (flat / "bob smith.ipynb").write_text(nbformat.writes(RELEASE))
    subs = discover(flat, A)
    assert [s.student for s in subs] == ["alice", "bob_smith"]
    assert all(s.data and not s.problem for s in subs)
    zpath = tmp_path / "class.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("download/carol/ch02_rnn.ipynb", nbformat.writes(SOLUTION))
        zf.writestr("download/dave.ipynb", nbformat.writes(SOLUTION))
        zf.writestr("submitted/erin/ch02_rnn/ch02_rnn.ipynb", nbformat.writes(SOLUTION))
        zf.writestr("../evil.ipynb", "{}")
    assert [s.student for s in discover(zpath, A)] == ["carol", "dave", "erin"]


def test_summary_reports_in_words(graded):
    *_, proc, _, seconds = graded
    assert "Graded 27 of 27 submissions" in proc.stdout
    assert "os_exit" in proc.stdout and "kernel died" in proc.stdout
    print(f"graded the batch in {seconds:.0f} s")
