"""Writing results: nbgrader's gradebook (one writer, in the main process), grades.csv, and
per-student feedback. Workers never touch the database, so nothing is locked or lost."""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .worker import Result


def ensure_assignment(course_dir: Path, assignment_id: str, db_url: str) -> None:
    """Make sure the gradebook knows the assignment's notebooks and cells (what nbgrader's
    ``generate_assignment`` records), without touching the committed release."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            gb.find_notebook(assignment_id, assignment_id)
            return
        except MissingEntry:
            pass
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            str(Path(sys.executable).parent / "nbgrader"),
            "generate_assignment",
            assignment_id,
            "--force",
            f"--CourseDirectory.release_directory={tmp}",
            f"--CourseDirectory.db_url={db_url}",
            "--log-level=ERROR",
        ]
        proc = subprocess.run(
            cmd, cwd=course_dir, env=env, capture_output=True, text=True, check=False
        )
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader could not register {assignment_id}: {proc.stderr[-2000:]}")


def write_gradebook(
    results: Iterable[Result], course_dir: Path, assignment_id: str, db_url: str
) -> None:
    """Record every result as nbgrader's autograde would, plus the graded notebooks in
    ``autograded/<student>/<id>/`` so that formgrader and ``nbgrader export`` work as usual."""
    from nbgrader.api import Gradebook

    ensure_assignment(course_dir, assignment_id, db_url)
    now = dt.datetime.now(dt.UTC)
    with Gradebook(db_url) as gb:
        for r in results:
            gb.update_or_create_student(r.student)
            sub = gb.update_or_create_submission(assignment_id, r.student, timestamp=now)
            for gid, score in r.scores.items():
                grade = gb.find_grade(gid, assignment_id, assignment_id, r.student)
                grade.auto_score = score
                grade.needs_manual_grade = score is None or grade.manual_score is not None
                try:
                    comment = gb.find_comment(gid, assignment_id, assignment_id, r.student)
                    comment.auto_comment = (
                        "No response."
                        if gid in r.messages and r.messages[gid] == "no answer was given"
                        else None
                    )
                except Exception:
                    pass  # only answer cells have comments
            for nb in sub.notebooks:
                nb.flagged = bool(r.problems)
            gb.db.commit()
            if r.notebook:
                folder = course_dir / "autograded" / r.student / assignment_id
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{assignment_id}.ipynb").write_text(r.notebook, encoding="utf-8")


def write_csv(results: list[Result], path: Path) -> None:
    """``student, total, max, status`` then one column per graded cell (its points)."""
    cells = list(results[0].max_scores) if results else []
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student", "total", "max", "status", *cells])
        for r in sorted(results, key=lambda r: r.student):
            scores = ["" if r.scores.get(c) is None else f"{r.scores[c]:g}" for c in cells]
            w.writerow([r.student, f"{r.total:g}", f"{r.max_total:g}", r.status, *scores])


def write_feedback(results: Iterable[Result], out_dir: Path, assignment_id: str) -> None:
    for r in results:
        folder = out_dir / "feedback" / r.student / assignment_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{assignment_id}.html").write_text(
            r.feedback_html or _plain(r), encoding="utf-8"
        )


def _plain(r: Result) -> str:
    from html import escape

    return (
        f"<html><body><h1>Feedback: {escape(r.student)}</h1><p>Score {r.total:g} of "
        f"{r.max_total:g}.</p><p>{escape(r.status)}</p></body></html>"
    )
