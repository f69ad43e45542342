"""Grade one class of 100 generated ch02_rnn submissions twice, in the same run: with plain
``nbgrader autograde`` (one submission after another) and with ``rnn-course grade --jobs N``
(sandboxed kernels in N worker processes). Prints both wall-clock times, their ratio, and how
many submissions got the same total from both.

The class: 40 correct, 27 with a planted bug (9 kinds), 13 blank (as released), and 20 hostile
(infinite loop, sys.exit, os._exit, memory bomb, huge output, deleted/edited tests, rebinding
numpy, delegation, a malformed file, ...). Both graders get the same cell time limit.

    .venv/bin/python bench/bench_grading.py [--jobs 2] [--cell-timeout 10] [--n 100]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # reuse the test suite's submission builders

import nbformat  # noqa: E402
from grading_course import read, with_replaced  # noqa: E402
from test_autograde import batch  # noqa: E402
from test_grading_ch02_rnn import BUGS  # noqa: E402

A = "ch02_rnn"
BIN = Path(sys.executable).parent
HOSTILE = [
    "infinite_loop",
    "sys_exit",
    "os_exit",
    "memory_bomb",
    "huge_output",
    "deleted_tests",
    "duplicated_tests",
    "edited_tests",
    "retyped_tests",
    "malformed",
    "truncated",
    "rebind_allclose",
    "rebind_helpers",
    "delegate_numpy",
    "delegate_torch",
    "fake_passed",
    "warnings",
    "added_cells",
    "forged_grade_cell",
    "read_solution",
]


def make_class(n: int) -> dict[str, bytes]:
    solution = read(ROOT / "solutions" / A / f"{A}.ipynb")
    release = read(ROOT / "exercises" / A / f"{A}.ipynb")
    hostile = batch()
    n_correct, n_bug, n_blank = round(0.40 * n), round(0.27 * n), round(0.13 * n)
    n_hostile = n - n_correct - n_bug - n_blank
    subs: dict[str, bytes] = {}
    for i in range(n_correct):
        subs[f"correct{i:03d}"] = nbformat.writes(solution).encode()
    for i, (bug, (gid, old, new, *_)) in zip(range(n_bug), itertools.cycle(BUGS.items())):
        subs[f"bug{i:03d}_{bug}"] = nbformat.writes(with_replaced(solution, gid, old, new)).encode()
    for i in range(n_blank):
        subs[f"blank{i:03d}"] = nbformat.writes(release).encode()
    for i, name in zip(range(n_hostile), itertools.cycle(HOSTILE)):
        nb = hostile[name][0]
        data = nb if isinstance(nb, bytes) else nbformat.writes(nb).encode()
        subs[f"hostile{i:03d}_{name}"] = data
    return subs


def course(tmp: Path, subs: dict[str, bytes], cell_timeout: int) -> Path:
    root = tmp / "course"
    for d in ("solutions", "exercises"):
        shutil.copytree(ROOT / d / A, root / d / A)
    config = (ROOT / "nbgrader_config.py").read_text()
    config += f"\nc.ExecutePreprocessor.timeout = {cell_timeout}\n"
    (root / "nbgrader_config.py").write_text(config)
    for student, data in subs.items():
        folder = root / "submitted" / student / A
        folder.mkdir(parents=True)
        (folder / f"{A}.ipynb").write_bytes(data)
    return root


def run(cmd: list[str], cwd: Path, log: Path) -> float:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    t0 = time.perf_counter()
    with log.open("w") as f:
        subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, check=False)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100, help="submissions in the class")
    p.add_argument("--jobs", type=int, default=2, help="worker processes for rnn-course")
    p.add_argument("--cell-timeout", type=int, default=10, help="seconds, for both graders")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = course(tmp, make_class(args.n), args.cell_timeout)
        env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
        subprocess.run(
            [str(BIN / "nbgrader"), "generate_assignment", A, "--force"],
            cwd=root,
            env=env,
            capture_output=True,
            check=True,
        )
        shutil.copy(root / "gradebook.db", tmp / "ours.db")

        plain = run([str(BIN / "nbgrader"), "autograde", A, "--force"], root, tmp / "nbgrader.log")
        ours = run(
            [
                str(BIN / "rnn-course"),
                "grade",
                A,
                "submitted",
                "--jobs",
                str(args.jobs),
                "--out",
                str(tmp / "out"),
                "--db",
                f"sqlite:///{tmp / 'ours.db'}",
                "--cell-timeout",
                str(args.cell_timeout),
                "--quiet",
            ],
            root,
            tmp / "ours.log",
        )

        subprocess.run(
            [str(BIN / "nbgrader"), "export", "--to", str(tmp / "plain.csv")],
            cwd=root,
            env=env,
            capture_output=True,
            check=False,
        )
        plain_scores = {
            r["student_id"]: float(r["raw_score"])
            for r in csv.DictReader((tmp / "plain.csv").open())
        }
        our_scores = {
            r["student"]: float(r["total"])
            for r in csv.DictReader((tmp / "out" / "grades.csv").open())
        }
        same = sum(plain_scores.get(s) == v for s, v in our_scores.items())
        differ = sorted(s for s, v in our_scores.items() if plain_scores.get(s) != v)

    cpus = len(os.sched_getaffinity(0))
    print(
        f"{args.n} ch02_rnn submissions (40% correct, 27% buggy, 13% blank, 20% hostile), "
        f"cell time limit {args.cell_timeout} s, {cpus} CPUs"
    )
    print(f"  nbgrader autograde (sequential):     {plain:7.1f} s  ({len(plain_scores)} graded)")
    print(
        f"  rnn-course grade --jobs {args.jobs} (sandboxed): {ours:7.1f} s  "
        f"({len(our_scores)} graded)"
    )
    print(f"  ratio nbgrader / rnn-course: {plain / ours:.2f}x")
    print(f"  same total from both: {same} of {len(our_scores)}")
    for student in differ:
        print(
            f"    {student}: nbgrader {plain_scores.get(student, 'no grade')}, "
            f"rnn-course {our_scores[student]:g}"
        )


if __name__ == "__main__":
    main()
