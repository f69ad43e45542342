"""`rnn-course grade` refuses bad input with a clear message and exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from grading_course import ROOT

CLI = str(Path(sys.executable).parent / "rnn-course")


def grade(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CLI, "grade", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_unknown_assignment(tmp_path):
    r = grade("ch99_nothing", str(tmp_path))
    assert r.returncode == 2
    assert "no source notebook" in r.stderr and "ch99_nothing" in r.stderr


def test_missing_submissions_folder(tmp_path):
    r = grade("ch02_rnn", str(tmp_path / "nowhere"))
    assert r.returncode == 2
    assert "neither a folder nor a zip file" in r.stderr


def test_folder_without_notebooks(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    r = grade("ch02_rnn", str(tmp_path))
    assert r.returncode == 2
    assert "no submissions found" in r.stderr


def test_zip_that_is_not_a_zip(tmp_path):
    bad = tmp_path / "class.zip"
    bad.write_bytes(b"PK but not really")
    r = grade("ch02_rnn", str(bad))
    assert r.returncode == 2
    assert "neither a folder nor a zip file" in r.stderr


@pytest.mark.parametrize("args", [[], ["ch02_rnn"]])
def test_usage(args):
    r = grade(*args)
    assert r.returncode == 2 and "usage: rnn-course grade" in r.stderr


def test_make_grade_needs_its_arguments():
    r = subprocess.run(
        ["make", "-s", "grade"], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert r.returncode != 0 and "usage: make grade A=ch02_rnn S=submitted" in r.stdout + r.stderr
