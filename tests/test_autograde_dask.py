"""The per-submission grading function on a Dask cluster (a LocalCluster here; a real
cluster is the same call with a scheduler address): same results as the local pool."""

from __future__ import annotations

import pytest
from grading_course import ROOT, read, with_replaced

from rnn_ref.autograde.assignment import Assignment
from rnn_ref.autograde.executors import grade_dask, grade_local
from rnn_ref.autograde.sandbox import Limits
from rnn_ref.autograde.submissions import Submission

pytestmark = pytest.mark.slow

A = "ch02_rnn"


def _subs():
    import nbformat

    sol = read(ROOT / "solutions" / A / f"{A}.ipynb")
    bug = with_replaced(sol, "rnn_forward", "h, caches = h0, []", "h, caches = 0 * h0, []")
    blank = read(ROOT / "exercises" / A / f"{A}.ipynb")
    return [
        Submission("ann", f"{A}.ipynb", nbformat.writes(sol).encode()),
        Submission("ben", f"{A}.ipynb", nbformat.writes(bug).encode()),
        Submission("cat", f"{A}.ipynb", nbformat.writes(blank).encode()),
        Submission("dan", f"{A}.ipynb", b"not a notebook"),
    ]


def test_dask_local_cluster_matches_the_process_pool():
    from distributed import Client, LocalCluster

    assignment = Assignment.load(ROOT, A, Limits(cell_timeout_s=30))
    subs = _subs()
    seen = []
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        on_dask = grade_dask(subs, assignment, client, seen.append)
    local = grade_local(subs, assignment, jobs=2)
    assert [r.student for r in on_dask] == ["ann", "ben", "cat", "dan"]
    assert sorted(r.student for r in seen) == ["ann", "ben", "cat", "dan"]
    assert [r.total for r in on_dask] == [14, 11, 0, 0]
    assert [(r.scores, r.status) for r in on_dask] == [(r.scores, r.status) for r in local]
    assert not any(r.internal_error for r in on_dask)
