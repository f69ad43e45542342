"""Build a temporary nbgrader course from this repository's solutions/, submit notebooks, and
read back per-cell scores. Used by the grading round-trip tests."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"  # nbgrader runs `alembic` by name
    e.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return e


def nbgrader(course: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "nbgrader"), *args],
        cwd=course,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def make_course(tmp: Path, assignment: str) -> Path:
    """A course directory with our nbgrader config, one assignment generated (db + release)."""
    course = tmp / "course"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(ROOT / "solutions" / assignment, course / "solutions" / assignment)
    r = nbgrader(course, "generate_assignment", assignment, "--force")
    assert r.returncode == 0, r.stdout + r.stderr
    return course


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def cell(nb, grade_id: str):
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return c
    raise KeyError(grade_id)


def with_replaced(nb, grade_id: str, old: str, new: str):
    """A copy of ``nb`` with ``old`` (which must occur) replaced by ``new`` in cell ``grade_id``."""
    nb = copy.deepcopy(nb)
    c = cell(nb, grade_id)
    assert old in c.source, f"{old!r} not in cell {grade_id}"
    c.source = c.source.replace(old, new)
    return nb


def with_source(nb, grade_id: str, source: str):
    nb = copy.deepcopy(nb)
    cell(nb, grade_id).source = source
    return nb


def submit(course: Path, assignment: str, student: str, nb=None, raw: bytes | None = None) -> None:
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    if raw is not None:
        path.write_bytes(raw)
    else:
        nbformat.write(nb, path)


def autograde(course: Path, assignment: str) -> subprocess.CompletedProcess:
    return nbgrader(course, "autograde", assignment, "--force")


def scores(course: Path, assignment: str) -> dict[str, dict[str, float | None]]:
    """{student: {grade_id: auto score}} for every submission in the gradebook."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub in gb.assignment_submissions(assignment):
            out[sub.student_id] = {g.name: g.auto_score for nb in sub.notebooks for g in nb.grades}
    return out
