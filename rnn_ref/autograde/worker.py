"""Grading one submission: ``grade_submission(submission, assignment) -> Result``.

A pure function of its inputs (the same submission always gets the same result), with no
shared state: it can run in a local process pool or on a Dask cluster. One call at a time per
process: the kernel's leftovers are reaped by killing every descendant of the process.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.utils import compute_checksum

from .assignment import Assignment, grade_id, is_answer, is_test, nbgrader_meta
from .merge import merge
from .replay import base_namespace, judge
from .runner import run
from .sandbox import become_subreaper, enforced
from .submissions import Submission

HIDDEN = "### BEGIN HIDDEN TESTS"


@dataclass
class Result:
    student: str
    status: str  # in words: "graded", or what went wrong
    scores: dict[str, float | None]  # grade_id -> points (None: to be graded by hand)
    max_scores: dict[str, float]
    problems: list[str] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)  # grade_id -> why points were lost
    notebook: str = ""  # the graded notebook (JSON), full, for the instructor
    feedback_html: str = ""  # for the student: no hidden test source, no expected values
    seconds: float = 0.0
    internal_error: bool = False  # the grader failed, not the student: nothing is recorded

    @property
    def total(self) -> float:
        return float(sum(v for v in self.scores.values() if v is not None))

    @property
    def max_total(self) -> float:
        return float(sum(self.max_scores.values()))


def _zero(assignment: Assignment, sub: Submission, status: str, t0: float) -> Result:
    points = assignment.points()
    return Result(
        sub.student,
        status,
        {g: 0.0 for g in points},
        points,
        [status],
        seconds=time.monotonic() - t0,
    )


def _read(sub: Submission):
    if sub.data is None:
        raise ValueError(sub.problem or "nothing was submitted")
    try:
        text = sub.data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the file is not a notebook (not UTF-8 text)") from None
    try:
        with warnings.catch_warnings():  # nbformat warns about what merge() repairs anyway
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4)
    except Exception as e:
        raise ValueError(
            f"the file is not a readable notebook ({type(e).__name__}: {str(e)[:200]})"
        ) from None
    if not isinstance(nb.get("cells"), list):
        raise ValueError("the notebook has no cells")
    return nb


def grade_submission(sub: Submission, assignment: Assignment, workdir: str | None = None) -> Result:
    """Grade one submission. Never raises for anything the student did."""
    t0 = time.monotonic()
    become_subreaper()
    try:
        student_nb = _read(sub)
    except ValueError as e:
        return _zero(assignment, sub, f"0 points: {e}", t0)
    source, release = assignment.source_nb(), assignment.release_nb()
    nb, notes = merge(source, release, student_nb)
    problems = ([sub.problem] if sub.problem else []) + notes

    tests = {i for i, c in enumerate(nb.cells) if is_test(c)}
    sandbox = Path(tempfile.mkdtemp(prefix=f"grade-{sub.student}-", dir=workdir))
    try:
        for name, data in assignment.files.items():
            (sandbox / name).write_bytes(data)
        outcome = run(nb, sandbox, assignment.limits, assignment.deny_packages, tests)
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)
    for i, cell_run in sorted(outcome.cells.items()):
        if cell_run.status == "timeout":
            where = grade_id(nb.cells[i]) or f"cell {i}"
            problems.append(f"{where} ran past its {assignment.limits.cell_timeout_s} s time limit")
    if outcome.stopped:
        problems.append(outcome.stopped)
    if outcome.truncated:
        problems.append("the notebook's output was truncated (too much printed)")

    sources = {grade_id(c): c.source for c in source.cells if grade_id(c)}
    setup = [
        c.source
        for c in source.cells
        if c.cell_type == "code"
        and nbgrader_meta(c).get("locked")
        and not is_test(c)
        and not is_answer(c)
    ]
    base = base_namespace(setup, assignment.student_function_names())
    points = assignment.points()
    scores: dict[str, float | None] = {}
    messages: dict[str, str] = {}
    for i, cell in enumerate(nb.cells):
        gid = grade_id(cell)
        if gid not in points:
            continue
        if is_test(cell):
            run_i = outcome.cells.get(i)
            why = (
                run_i.error if run_i and run_i.error else outcome.stopped
            ) or "the notebook stopped before this cell"
            verdict = judge(sources[gid], gid, base, run_i.records if run_i else [], why)
            scores[gid] = points[gid] if verdict.passed else 0.0
            if not verdict.passed:
                messages[gid] = verdict.message
            _show_verdict(cell, verdict.passed, verdict.message)
        elif is_answer(cell):
            untouched = nbgrader_meta(cell).get("checksum") == compute_checksum(cell)
            scores[gid] = 0.0 if untouched else None  # None: graded by hand
            if untouched:
                messages[gid] = "no answer was given"
    status = "graded" if not problems else "graded with problems: " + "; ".join(problems)
    result = Result(
        sub.student,
        status,
        scores,
        points,
        problems,
        messages,
        nbformat.writes(nb),
        "",
        time.monotonic() - t0,
    )
    result.feedback_html = feedback_html(nb, result, assignment.id)
    return result


def _show_verdict(cell, passed: bool, message: str) -> None:
    """Replace a test cell's kernel outputs by the grader's verdict (kernel output is untrusted:
    a student can print "all tests passed")."""
    if passed:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="Passed.\n")]
    else:
        cell.outputs = [
            nbformat.v4.new_output(
                "error",
                ename="GradingError",
                evalue=message,
                traceback=[f"GradingError: {message}"],
            )
        ]


_REMOVED = nbformat.v4.new_output(
    "stream", name="stdout", text="[output removed from feedback: it showed hidden test code]\n"
)


def _shows(output, hidden_lines: set[str]) -> bool:
    text = (
        str(output.get("text", ""))
        + str(output.get("data", ""))
        + str(output.get("evalue", ""))
        + str(output.get("traceback", ""))
    )
    return any(line in text for line in hidden_lines)


def feedback_notebook(nb, result: Result):
    """The student's copy: hidden tests' source removed, a summary on top."""
    fb = copy.deepcopy(nb)
    hidden_lines = set()
    for cell in fb.cells:
        if is_test(cell) and HIDDEN in cell.source:
            hidden_lines |= {ln.strip() for ln in cell.source.splitlines() if len(ln.strip()) >= 8}
            gid = grade_id(cell)
            pts = result.max_scores.get(gid, 0)
            cell.source = f"# Hidden tests ({pts:g} points): their source is not shown."
    for cell in fb.cells:  # a student cell can print the kernel's history (In, _ih) at grading
        if cell.cell_type == "code" and not is_test(cell):
            cell.outputs = [o if not _shows(o, hidden_lines) else _REMOVED for o in cell.outputs]
    lines = [
        f"# Feedback: {result.student}",
        "",
        f"**Score: {result.total:g} of {result.max_total:g}** "
        "(answers graded by hand are not counted until they are graded).",
        "",
    ]
    if result.problems:
        lines += ["Problems with this submission:", ""] + [f"- {p}" for p in result.problems]
        lines.append("")
    lines += ["| cell | points | note |", "|---|---|---|"]
    for gid, pts in result.max_scores.items():
        got = result.scores.get(gid)
        shown = "to be graded by hand" if got is None else f"{got:g} / {pts:g}"
        note = result.messages.get(gid, "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{gid}` | {shown} | {note} |")
    fb.cells.insert(0, nbformat.v4.new_markdown_cell("\n".join(lines)))
    return fb


def feedback_html(nb, result: Result, assignment_id: str) -> str:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    body, _ = exporter.from_notebook_node(
        feedback_notebook(nb, result), resources={"metadata": {"name": assignment_id}}
    )
    return body


__all__ = ["Result", "grade_submission", "enforced"]
