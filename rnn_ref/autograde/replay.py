"""The verdict on each test cell, computed in the grader's own process.

A test cell's source (the instructor's, from the source notebook) is executed here, with the
notebook's set-up cells run first, placeholders standing for the student's functions, and
``guarded_call`` returning what the student's functions returned in the kernel (the records).
Every comparison therefore runs on this process's numpy against expected values computed here.

Contract for test cells (the contributor's guide repeats it): the values a test compares with
must come from the cell itself (literals, or inputs it draws from its own seeded generator) or
from ``rnn_ref.grading``; never from other notebook state, which the student controls.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

from rnn_ref.grading import GradingError
from rnn_ref.grading._guard import replay


@dataclass
class Verdict:
    passed: bool
    message: str = ""  # why not, in words; shown to the student (no hidden source or values)


class StudentFunction:
    """Stands for a student's function at replay; it is never called (guarded_call replays)."""

    def __init__(self, name: str):
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        raise GradingError(f"{self.__name__} was called outside the grading helpers")


def base_namespace(setup_sources: list[str], student_functions: list[str]) -> dict:
    ns: dict = {"__name__": "__main__"}
    with _quiet():
        for src in setup_sources:
            exec(compile(src, "<set-up cell>", "exec"), ns)  # noqa: S102 (instructor's code)
    for name in student_functions:
        ns[name] = StudentFunction(name)
    return ns


@contextlib.contextmanager
def _quiet():
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        yield


def judge(source: str, label: str, base: dict, records: list[dict], missing: str) -> Verdict:
    """Run one test cell's ``source`` against ``records``; pass if it raises nothing."""
    ns = dict(base)
    try:
        with _quiet(), replay(records, missing):
            exec(compile(source, f"<{label}>", "exec"), ns)  # noqa: S102 (instructor's code)
    except GradingError as e:  # includes DelegationError
        return Verdict(False, str(e))
    except AssertionError as e:
        return Verdict(False, f"a check failed: {e}" if str(e) else "a check failed")
    except Exception as e:
        return Verdict(False, f"{type(e).__name__}: {e}")
    return Verdict(True)
