"""The committed exercises/ are exactly what nbgrader generates from solutions/ now, and a
release gives nothing away (no solutions, no hidden tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from grading_course import ROOT, make_course, toc_files

ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())


def test_there_are_assignments():
    assert "ch02_rnn" in ASSIGNMENTS


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_exercises_match_a_fresh_release(tmp_path, assignment):
    course = make_course(tmp_path, assignment)
    fresh = course / "exercises" / assignment
    committed = ROOT / "exercises" / assignment
    fresh_files = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    committed_files = sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file())
    assert committed_files == fresh_files, "run `make exercises` and commit exercises/"
    for rel in fresh_files:
        a, b = (fresh / rel).read_bytes(), (committed / rel).read_bytes()
        if rel.suffix == ".ipynb":
            a, b = json.loads(a), json.loads(b)
        assert a == b, f"exercises/{assignment}/{rel} is stale: run `make exercises` and commit it"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_gives_nothing_away(assignment):
    text = (ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_text()
    for leak in (
        "BEGIN SOLUTION",
        "END SOLUTION",
        "BEGIN HIDDEN TESTS",
        "rnn_ref.grading import ch",
    ):
        assert leak not in text, leak
    source = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    release = json.loads(text)
    stubs = [
        c
        for c in release["cells"]
        if c["cell_type"] == "code" and "raise NotImplementedError()" in "".join(c["source"])
    ]
    solutions = [
        c
        for c in source["cells"]
        if c["cell_type"] == "code" and "### BEGIN SOLUTION" in "".join(c["source"])
    ]
    assert len(stubs) == len(solutions) > 0


def test_notebooks_are_stored_without_outputs():
    for path in [*ROOT.glob("solutions/*/*.ipynb"), *ROOT.glob("exercises/*/*.ipynb")]:
        nb = json.loads(path.read_text())
        executed = [c for c in nb["cells"] if c["cell_type"] == "code" and c.get("outputs")]
        assert not executed, f"{path.relative_to(ROOT)} has outputs; clear them before committing"


def _exists(*parts) -> bool:
    return Path(ROOT, *parts).exists()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_chapter_page_module_and_assignment_share_the_topic(assignment):
    """One chapter: a page, rnn_ref module(s), an assignment and its checks, one topic word."""
    topic = assignment.split("_", 1)[1]
    assert _exists("book", f"{assignment}.md") or _exists("book", f"{assignment}.ipynb")
    # ch10_pytorch's reference code is PyTorch only (rnn_ref/torch/pytorch.py).
    assert _exists("rnn_ref", "numpy", f"{topic}.py") or _exists("rnn_ref", "torch", f"{topic}.py")
    assert _exists("rnn_ref", "grading", f"{assignment}.py")
    assert _exists("tests", f"test_grading_{assignment}.py"), "its grading round-trip test"
    files = set(toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text())))
    assert {f"book/{assignment}", f"exercises/{assignment}/{assignment}"} <= files
