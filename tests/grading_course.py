"""Build a temporary nbgrader course from this repository's solutions/, submit notebooks, and
read back per-cell scores; the grading round trip (RoundTrip) that every
tests/test_grading_<assignment>.py runs, and the helpers their chapter-specific tests share
(the class-scale grader, a top-to-bottom run of the solution); toc_files for _toc.yml."""

from __future__ import annotations

import copy
import csv
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import nbformat
import pytest

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


def failure_excerpt(output: str, log: Path, limit: int = 6000) -> str:
    """What to show when ``nbgrader autograde`` fails: the output from its first error or
    traceback on (nbgrader logs the cause long before its closing summary, so the tail alone
    often misses it) and the tail; the whole output is written to ``log``."""
    log.write_text(output)
    starts = [i for i in (output.find("[ERROR]"), output.find("Traceback")) if i >= 0]
    head = output[max(0, min(starts) - 500) :][:limit] if starts else ""
    return f"(full output in {log})\n{head}\n...\n{output[-2000:]}"


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


def toc_files(node):
    """Every ``file:`` entry of a parsed ``_toc.yml`` (nested chapters and sections included)."""
    if isinstance(node, dict):
        if "file" in node:
            yield node["file"]
        for value in node.values():
            yield from toc_files(value)
    elif isinstance(node, list):
        for item in node:
            yield from toc_files(item)


# --- The grading round trip shared by tests/test_grading_<assignment>.py ----------------------
#
# Each of those files describes its assignment with a RoundTrip (autograded cells and points,
# written cells, planted bugs, delegations) and installs the shared tests with
# ``globals().update(RT.tests())``; what remains in the file is specific to its chapter.


class Bug(NamedTuple):
    """A planted bug: replace ``old`` (which must occur exactly ``times`` times; all are
    replaced) by ``new`` in answer cell ``cell``, then each further ``(old, new)`` of ``also``
    (once each) in the same cell. The test cells in ``zero`` must score 0; those in ``full``
    keep their full points (None: every other autograded cell; a list leaves the cells in
    neither unchecked)."""

    cell: str
    old: str
    new: str
    zero: list[str]
    full: list[str] | None = None
    also: tuple[tuple[str, str], ...] = ()
    times: int = 1


class Delegation(NamedTuple):
    """Answer cell ``cell`` replaced by ``source``, which hands the work to a library; the test
    cells in ``zero`` must score 0 and every other autograded cell its full points."""

    cell: str
    source: str
    zero: list[str]


def with_bug(nb, bug: Bug):
    """A copy of ``nb`` with ``bug`` planted (see Bug for how often each text must occur)."""
    edits = [(bug.old, bug.new, bug.times)] + [(old, new, 1) for old, new in bug.also]
    for old, new, times in edits:
        assert cell(nb, bug.cell).source.count(old) == times, (bug.cell, old, times)
        nb = with_replaced(nb, bug.cell, old, new)
    return nb


def total(cells: dict, auto: dict[str, int]) -> float:
    """The sum of the autograded cells' scores (an ungraded cell, None, counts 0)."""
    return sum(cells[g] or 0 for g in auto)


def assert_scores(got: dict, auto: dict[str, int], zero: list[str], full=None) -> None:
    """Cells ``zero`` score 0 and cells ``full`` (default: every other autograded cell) score
    their full points in ``got`` ({grade_id: score})."""
    full = [g for g in auto if g not in zero] if full is None else full
    assert {g: got[g] for g in zero} == {g: 0 for g in zero}, got
    assert {g: got[g] for g in full} == {g: auto[g] for g in full}, got


def class_grade(
    assignment: str, folder: Path, out: Path, *, cwd: Path = ROOT, timeout: int = 900
) -> dict[str, dict[str, str]]:
    """Run the class-scale grader, ``rnn-course grade <assignment> <folder> --out <out>
    --no-gradebook`` (sandboxed kernels that only record, verdicts replayed in the grader's
    process), from ``cwd``; assert it succeeds and return grades.csv as {student: row}."""
    cmd = [
        str(BIN / "rnn-course"),
        "grade",
        assignment,
        str(folder),
        "--jobs",
        "2",
        "--out",
        str(out),
        "--no-gradebook",  # run from the repository root: leave its gradebook alone
        "--quiet",
    ]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}


def run_top_to_bottom(nb, path: Path, seconds: float = 60):
    """Execute ``nb`` in place (kernel cwd ``path``) and return it: it raises on the first cell
    that fails, takes under ``seconds``, and shows no error output."""
    from nbclient import NotebookClient

    t0 = time.monotonic()
    NotebookClient(
        nb, timeout=seconds, kernel_name="python3", resources={"metadata": {"path": str(path)}}
    ).execute()
    took = time.monotonic() - t0
    assert took < seconds, f"the solution notebook took {took:.1f} s"
    errors = [o for c in code_cells(nb) for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    return nb


def code_cells(nb, graded_only: bool = False) -> list:
    """The code cells of ``nb`` (only those nbgrader grades, if ``graded_only``)."""
    return [
        c
        for c in nb.cells
        if c.cell_type == "code"
        and (not graded_only or c.metadata.get("nbgrader", {}).get("grade"))
    ]


def stderr_outputs(cells) -> list:
    """(metadata, text) of every stderr stream output of ``cells`` (a cell nbgrader grades
    scores 0 when it writes to stderr)."""
    return [
        (c.metadata, o.get("text")) for c in cells for o in c.outputs if o.get("name") == "stderr"
    ]


def _stream(outputs, name: str | None = None) -> str:
    """The text of the stream outputs (of stream ``name`` if given), in order.

    The kernel may split one cell's printing into several stream outputs (it flushes on a
    timer), so never read only ``outputs[0]``; and ipykernel 7.4 sometimes sends a cell's last
    writes a second time in a new output (nbclient records both; the built book shows them once,
    e.g. ch12's "700 updates" line): an output that only repeats the end of what came before is
    dropped, so that counting printed lines counts what the cell printed."""
    text = ""
    for o in outputs:
        if o.get("output_type") != "stream" or (name is not None and o.get("name") != name):
            continue
        chunk = o.get("text", "")
        if text and chunk.endswith("\n") and text.endswith(chunk):
            continue
        text += chunk
    return text


def stdout_text(cell) -> str:
    """Everything ``cell`` printed to stdout (see _stream)."""
    return _stream(cell.outputs, "stdout")


def printed(nb) -> str:
    """Everything the code cells of ``nb`` printed (see _stream), cell by cell."""
    return "".join(_stream(c.outputs) for c in code_cells(nb))


@dataclass
class Graded:
    """The result of one autograde run: the course, {student: {grade_id: score}}, the process."""

    assignment: str
    course: Path
    scores: dict[str, dict[str, float | None]]
    result: subprocess.CompletedProcess
    where: dict[str, Path] = field(default_factory=dict)  # student -> course, if not ``course``
    # bug -> the union of the zero cells of the bugs graded in the same notebook (see
    # RoundTrip.packs); a bug graded alone is absent
    packed_zero: dict[str, set[str]] = field(default_factory=dict)
    # bug -> the name its shared notebook was submitted under
    alias: dict[str, str] = field(default_factory=dict)

    def autograded(self, student: str) -> Path:
        """The autograded notebook of ``student``."""
        a = self.assignment
        name = self.alias.get(student, student)
        return self.where.get(student, self.course) / "autograded" / name / a / f"{a}.ipynb"

    def errors(self, student: str, grade_id: str) -> list:
        return [
            o
            for o in cell(read(self.autograded(student)), grade_id).outputs
            if o.output_type == "error"
        ]

    def error(self, student: str, grade_id: str):
        """The first error output of the cell, which must show one."""
        errors = self.errors(student, grade_id)
        assert errors, f"{student}: {grade_id} shows no error"
        return errors[0]


@dataclass
class RoundTrip:
    """One assignment's grading round trip.

    ``auto``: the autograded test cells and their points, summing to ``full_marks``;
    ``written``: the cells graded by hand and their points; ``bugs`` and ``delegations``:
    submissions built from the solution, each with the cells it must zero; ``others``: further
    submissions {student: build(solution, released)}, checked by the chapter's own tests;
    ``release_listed``: also test that the committed release is the one nbgrader generates, with
    exactly these graded cells and none of the ``release_excludes`` texts; ``together``: the
    submissions that must share the solution's gradebook (see ``grade``)."""

    assignment: str
    auto: dict[str, int]
    full_marks: int
    written: dict[str, int] = field(default_factory=dict)
    bugs: dict[str, Bug] = field(default_factory=dict)
    delegations: dict[str, Delegation] = field(default_factory=dict)
    others: dict[str, Callable] = field(default_factory=dict)
    release_listed: bool = False
    release_excludes: tuple[str, ...] = ()
    together: tuple[str, ...] = ()
    pack: bool = True

    def packs(self) -> list[list[str]]:
        """The planted bugs, grouped into notebooks graded together (each group is one
        submission, so the round trip runs fewer notebooks). Bugs share a notebook only if
        they edit different answer cells and their ``zero`` cells are disjoint: each bug's
        ``zero`` lists every test cell it can fail, so in the shared notebook every cell still
        scores what it scores with that bug alone. Bugs with a ``full`` list (some cells left
        unchecked) and those in ``together`` are graded alone."""
        if not self.pack:
            return [[n] for n in sorted(self.bugs)]
        groups: list[list[str]] = []
        for name in sorted(self.bugs):
            bug = self.bugs[name]
            if bug.full is not None or name in self.together:
                groups.append([name])
                continue
            for group in groups:
                others = [self.bugs[m] for m in group]
                if all(self.bugs[m].full is None and m not in self.together for m in group) and all(
                    o.cell != bug.cell and not set(o.zero) & set(bug.zero) for o in others
                ):
                    group.append(name)
                    break
            else:
                groups.append([name])
        return groups

    @property
    def full(self) -> int:
        return sum(self.auto.values())

    @property
    def written_points(self) -> int:
        return sum(self.written.values())

    def solution(self):
        """A fresh copy of the solution notebook."""
        return read(ROOT / "solutions" / self.assignment / f"{self.assignment}.ipynb")

    def release(self):
        """A fresh copy of the committed release (exercises/)."""
        return read(ROOT / "exercises" / self.assignment / f"{self.assignment}.ipynb")

    def total(self, cells: dict) -> float:
        return total(cells, self.auto)

    def students(self) -> set[str]:
        return {"solution", "released", *self.bugs, *self.delegations, *self.others}

    def submissions(self, released) -> dict:
        """{student: notebook}: the solution, ``released``, every bug, delegation and other."""
        solution = self.solution()
        subs = {"solution": solution, "released": released}
        for i, group in enumerate(self.packs()):
            nb = solution
            for name in group:
                nb = with_bug(nb, self.bugs[name])
            subs[group[0] if len(group) == 1 else f"packed_bugs_{i:02d}"] = nb
        subs.update(
            {name: with_source(solution, d.cell, d.source) for name, d in self.delegations.items()}
        )
        subs.update({name: build(solution, released) for name, build in self.others.items()})
        return subs

    def grade(self, tmp: Path) -> Graded:
        """Build a course in ``tmp``, submit the solution, the release, every bug, delegation
        and other submission, and autograde them all (which must succeed).

        The submissions are split between two identical courses autograded at the same time
        (nbgrader grades one notebook after another, one kernel at a time, so two processes use
        both cores and halve the wall time). ``Graded.course`` is the first, whose gradebook
        holds the solution, the release and ``together``; ``Graded.autograded(student)`` finds
        any student's autograded notebook."""
        a = self.assignment
        first = make_course(tmp / "part0", a)
        second = tmp / "part1" / "course"
        shutil.copytree(first, second)
        subs = self.submissions(read(first / "exercises" / a / f"{a}.ipynb"))
        pinned = ["solution", "released", *self.together]
        rest = [s for s in subs if s not in pinned]
        # Balance the two halves: the pinned ones count against the first.
        split = max(0, (len(subs) + 1) // 2 - len(pinned))
        parts = {first: [*pinned, *rest[:split]], second: rest[split:]}
        for course, students in parts.items():
            for student in students:
                submit(course, a, student, subs[student])
        procs = {
            course: subprocess.Popen(
                [str(BIN / "nbgrader"), "autograde", a, "--force"],
                cwd=course,
                env=env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for course, students in parts.items()
            if students
        }
        outputs = {course: proc.communicate(timeout=1800)[0] for course, proc in procs.items()}
        for course, proc in procs.items():
            assert proc.returncode == 0, failure_excerpt(outputs[course], tmp / "autograde.log")
        got = {}
        for course in procs:
            got.update(scores(course, a))
        result = subprocess.CompletedProcess(
            args="nbgrader autograde", returncode=0, stdout="\n".join(outputs.values()), stderr=""
        )
        where = {student: course for course, students in parts.items() for student in students}
        # Each bug of a shared notebook gets that notebook's scores and autograded file.
        packed_zero, alias = {}, {}
        for i, group in enumerate(self.packs()):
            if len(group) > 1:
                student = f"packed_bugs_{i:02d}"
                union = {g for name in group for g in self.bugs[name].zero}
                for name in group:
                    got[name], where[name], packed_zero[name] = got[student], where[student], union
                    alias[name] = student
                del got[student]
        return Graded(a, first, got, result, where, packed_zero, alias)

    def grade_class(
        self, tmp: Path, replayed=(), extra: dict | None = None, timeout: int = 900
    ) -> dict[str, dict]:
        """Grade the solution, the committed release, the ``replayed`` bugs and the ``extra``
        notebooks ({student: notebook}) with the class-scale grader (see class_grade), from
        ``tmp/subs/<student>.ipynb`` into ``tmp/out``. Check that every student has a row, the
        solution's and the release's rows (assert_class_basics), and that each replayed bug
        loses exactly its cells' points (assert_class_row); return the rows."""
        batch = {"solution": self.solution(), "released": self.release()}
        for bug in replayed:
            batch[bug] = with_bug(self.solution(), self.bugs[bug])
        batch.update(extra or {})
        subs = tmp / "subs"
        subs.mkdir()
        for student, nb in batch.items():
            nbformat.write(nb, subs / f"{student}.ipynb")
        rows = class_grade(self.assignment, subs, tmp / "out", timeout=timeout)
        assert set(rows) == set(batch)
        self.assert_class_basics(rows)
        for bug in replayed:
            self.assert_class_row(rows[bug], self.bugs[bug].zero, self.bugs[bug].full)
        return rows

    def run_solution(self, path: Path):
        """The solution notebook, executed top to bottom in ``path`` (see run_top_to_bottom)."""
        return run_top_to_bottom(self.solution(), path)

    def assert_class_basics(self, rows: dict) -> None:
        """The class-scale grader's rows: the solution graded with full marks out of the
        autograded and written points, the release 0."""
        sol = rows["solution"]
        assert float(sol["total"]) == self.full, sol
        assert float(sol["max"]) == self.full + self.written_points, sol
        assert sol["status"] == "graded", sol
        assert all(float(sol[g]) == self.auto[g] for g in self.auto), sol
        assert float(rows["released"]["total"]) == 0, rows["released"]

    def assert_class_row(self, row: dict, zero: list[str], full=None) -> None:
        """A class-scale grader row: exactly the ``zero`` cells' points lost."""
        assert_scores({g: float(row[g]) for g in self.auto}, self.auto, zero, full)
        if full is None:
            assert float(row["total"]) == self.full - sum(self.auto[g] for g in zero), row

    def tests(self) -> dict:
        """The shared fixture ``graded`` and tests, to install in the chapter's module with
        ``globals().update(RT.tests())``."""
        rt, a = self, self.assignment

        @pytest.fixture(scope="module")
        def graded(tmp_path_factory) -> Graded:
            return rt.grade(tmp_path_factory.mktemp("grading"))

        def test_every_submission_is_graded(graded):
            assert set(graded.scores) == rt.students()

        def test_solution_scores_full_marks(graded):
            s = graded.scores["solution"]
            assert {g: s[g] for g in rt.auto} == rt.auto
            assert rt.total(s) == rt.full == rt.full_marks

        def test_released_notebook_scores_zero(graded):
            s = graded.scores["released"]
            assert rt.total(s) == 0
            assert {g: s[g] for g in rt.auto} == {g: 0 for g in rt.auto}
            assert graded.autograded("released").exists()

        @pytest.mark.parametrize("bug", sorted(rt.bugs))
        def test_planted_bug_zeroes_exactly_its_cells(graded, bug):
            b = rt.bugs[bug]
            assert b.zero and len(set(b.zero)) == len(b.zero) and set(b.zero) <= set(rt.auto)
            got = graded.scores[bug]
            assert rt.total(got) < rt.full
            full = b.full
            if bug in graded.packed_zero:  # the cells no bug of its notebook may fail
                full = [g for g in rt.auto if g not in graded.packed_zero[bug]]
            assert_scores(got, rt.auto, b.zero, full)

        @pytest.mark.parametrize("who", sorted(rt.delegations))
        def test_delegation_earns_nothing(graded, who):
            assert_scores(graded.scores[who], rt.auto, rt.delegations[who].zero)

        def test_the_committed_release_is_current_and_the_cells_are_as_listed(graded):
            fresh = read(graded.course / "exercises" / a / f"{a}.ipynb")
            assert fresh == rt.release(), f"regenerate exercises/{a}"
            points = {
                c.metadata.nbgrader.grade_id: c.metadata.nbgrader.points
                for c in fresh.cells
                if c.metadata.get("nbgrader", {}).get("grade")
            }
            assert points == {**rt.auto, **rt.written}
            text = nbformat.writes(fresh)
            for marker in rt.release_excludes:
                assert marker not in text, marker

        out = {
            "graded": graded,
            "test_every_submission_is_graded": test_every_submission_is_graded,
            "test_solution_scores_full_marks": test_solution_scores_full_marks,
            "test_released_notebook_scores_zero": test_released_notebook_scores_zero,
        }
        if self.release_listed:
            out[test_the_committed_release_is_current_and_the_cells_are_as_listed.__name__] = (
                test_the_committed_release_is_current_and_the_cells_are_as_listed
            )
        if self.bugs:
            out["test_planted_bug_zeroes_exactly_its_cells"] = (
                test_planted_bug_zeroes_exactly_its_cells
            )
        if self.delegations:
            out["test_delegation_earns_nothing"] = test_delegation_earns_nothing
        return out
