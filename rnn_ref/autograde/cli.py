"""``rnn-course grade ASSIGNMENT SUBMISSIONS [--jobs N] [--out DIR]``: grade a whole class.

Reads the assignment from the course directory (``solutions/<id>`` and ``exercises/<id>``),
grades every submission in its own sandboxed kernel with N worker processes (or on a Dask
cluster), then, in this process only, writes nbgrader's gradebook, ``DIR/grades.csv`` and
``DIR/feedback/<student>/<id>/<id>.html``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .assignment import Assignment
from .sandbox import Limits, enforced
from .submissions import discover


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnn-course", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade a folder or zip of submissions")
    g.add_argument("assignment", help="assignment id, e.g. ch02_rnn")
    g.add_argument(
        "submissions",
        type=Path,
        help="submitted/<student>/<id>/<id>.ipynb, a folder of <student>.ipynb, or a zip",
    )
    g.add_argument("--jobs", "-j", type=int, default=None, help="worker processes (default: cores)")
    g.add_argument("--out", type=Path, default=None, help="output folder (default: graded/<id>)")
    g.add_argument("--course-dir", type=Path, default=Path("."), help="default: current folder")
    g.add_argument("--db", default=None, help="gradebook URL (default: COURSE_DIR/gradebook.db)")
    g.add_argument("--no-gradebook", action="store_true", help="write only the CSV and feedback")
    g.add_argument(
        "--dask",
        metavar="SCHEDULER",
        default=None,
        help="grade on a Dask cluster (scheduler address, e.g. tcp://host:8786)",
    )
    g.add_argument("--cell-timeout", type=int, default=Limits.cell_timeout_s, help="seconds")
    g.add_argument("--notebook-timeout", type=int, default=Limits.wall_s, help="seconds")
    g.add_argument("--memory", type=int, default=Limits.memory_bytes // 2**20, help="MiB")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # nbgrader's gradebook runs `alembic` by name: make this environment's tools findable.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return grade_command(args)


def grade_command(args) -> int:
    from tqdm import tqdm

    from .executors import default_jobs, grade_dask, grade_local
    from .gradebook import write_csv, write_feedback, write_gradebook

    t0 = time.monotonic()
    course = args.course_dir.resolve()
    limits = Limits(
        cell_timeout_s=args.cell_timeout,
        wall_s=args.notebook_timeout,
        cpu_s=args.notebook_timeout,
        memory_bytes=args.memory * 2**20,
    )
    try:
        assignment = Assignment.load(course, args.assignment, limits)
        subs = discover(args.submissions, args.assignment)
    except (OSError, ValueError) as e:
        print(f"rnn-course: {e}", file=sys.stderr)
        return 2
    out = (args.out or course / "graded" / args.assignment).resolve()
    jobs = args.jobs or default_jobs()
    sandbox = enforced()
    if not sandbox.get("landlock"):
        print(
            "rnn-course: warning: Landlock is unavailable here, so a student's kernel can read "
            "files outside its sandbox (see rnn_ref/autograde/sandbox.py)",
            file=sys.stderr,
        )

    bar = tqdm(total=len(subs), unit="submission", disable=args.quiet, desc=args.assignment)

    def done(r):
        bar.update(1)
        bar.set_postfix_str(f"{r.student}: {r.total:g}/{r.max_total:g}")

    if args.dask:
        from distributed import Client

        with Client(args.dask) as client:
            results = grade_dask(subs, assignment, client, done)
    else:
        results = grade_local(subs, assignment, jobs, done)
    bar.close()

    write_csv(results, out / "grades.csv")
    write_feedback(results, out, args.assignment)
    if not args.no_gradebook:
        db = args.db or f"sqlite:///{course / 'gradebook.db'}"
        write_gradebook([r for r in results if not r.internal_error], course, args.assignment, db)
    _summary(results, out, time.monotonic() - t0, jobs if not args.dask else None)
    return 1 if any(r.internal_error for r in results) else 0


def _summary(results, out: Path, seconds: float, jobs: int | None) -> None:
    failed = [r for r in results if r.internal_error]
    flagged = [r for r in results if r.problems and not r.internal_error]
    where = f"{jobs} worker process{'es' if jobs != 1 else ''}" if jobs else "Dask"
    print(
        f"\nGraded {len(results) - len(failed)} of {len(results)} submissions in "
        f"{seconds:.1f} s ({where})."
    )
    if flagged:
        print(f"{len(flagged)} with problems (graded, flagged in the gradebook):")
        for r in flagged:
            print(f"  {r.student}: {r.total:g}/{r.max_total:g}: {'; '.join(r.problems)}")
    if failed:
        print(f"{len(failed)} NOT graded (grader errors; nothing recorded for them):")
        for r in failed:
            print(f"  {r.student}: {r.status}")
    print(f"Grades: {out / 'grades.csv'}\nFeedback: {out / 'feedback'}")


if __name__ == "__main__":
    sys.exit(main())
