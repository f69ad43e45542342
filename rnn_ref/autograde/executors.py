"""Where ``grade_submission`` runs: a local process pool (default) or a Dask cluster.

Both call the same pure function on picklable inputs, one submission per worker process at a
time (the worker reaps its kernel's processes by killing all its own descendants, so a Dask
worker must have one thread). A worker that fails (not a student's code: that is contained in
its kernel) costs only that submission, reported as not graded, and nothing is recorded for it.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Callable, Sequence

from .assignment import Assignment
from .submissions import Submission
from .worker import Result, grade_submission


def _failed(sub: Submission, assignment: Assignment, error: BaseException) -> Result:
    points = assignment.points()
    return Result(
        sub.student,
        f"not graded: the grader failed ({type(error).__name__}: {error})",
        {g: None for g in points},
        points,
        internal_error=True,
    )


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def grade_local(
    subs: Sequence[Submission],
    assignment: Assignment,
    jobs: int,
    on_result: Callable[[Result], None] = lambda r: None,
) -> list[Result]:
    """Grade in ``jobs`` worker processes; a crashed pool is rebuilt and its work retried once."""
    results: dict[str, Result] = {}
    pending = list(subs)
    for attempt in range(2):
        if not pending:
            break
        ctx = multiprocessing.get_context("forkserver")
        # No max_tasks_per_child: with it, CPython 3.11's pool can hang when it replaces a
        # worker; each grading closes what it opened instead.
        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = {pool.submit(grade_submission, s, assignment): s for s in pending}
            retry = []
            for fut in cf.as_completed(futures):
                sub = futures[fut]
                try:
                    r = fut.result()
                except cf.process.BrokenProcessPool as e:
                    if attempt == 0:
                        retry.append(sub)
                        continue
                    r = _failed(sub, assignment, e)
                except Exception as e:
                    r = _failed(sub, assignment, e)
                results[sub.student] = r
                on_result(r)
        pending = retry
    return [results[s.student] for s in subs if s.student in results]


def grade_dask(
    subs: Sequence[Submission],
    assignment: Assignment,
    client,
    on_result: Callable[[Result], None] = lambda r: None,
) -> list[Result]:
    """Grade on a Dask cluster through ``client`` (a ``distributed.Client``).

    Start the workers with one thread each (``dask worker --nthreads 1 SCHEDULER``, or
    ``LocalCluster(threads_per_worker=1)``), in an environment with this package installed.
    """
    from distributed import as_completed

    shared = client.scatter(assignment, broadcast=True)
    futures = {
        client.submit(
            grade_submission, s, shared, pure=False, key=f"grade-{assignment.id}-{s.student}"
        ): s
        for s in subs
    }
    results: dict[str, Result] = {}
    for fut in as_completed(futures):
        sub = futures[fut]
        try:
            r = fut.result()
        except Exception as e:
            r = _failed(sub, assignment, e)
        results[sub.student] = r
        on_result(r)
    return [results[s.student] for s in subs]
