"""The case a failed check was running, named in its message; shared by the chapters' modules.

A hidden check runs the student's function on several cases (shapes, seeds, edge cases). When
one fails, the message ends with the case, ``... (case: N=1, T=1)``, so the learner can
reproduce it. A :class:`DelegationError` passes through unchanged: its message is the verdict.
"""

from __future__ import annotations

import contextlib

import numpy as _np

from . import assert_array
from ._guard import DelegationError, GradingError, guarded_call, recording, seal, trusted_reference

__all__ = [
    "named_case",
    "call_in_case",
    "array_in_case",
    "pair",
    "expected",
    "case_rng",
    "case_seed",
]


@contextlib.contextmanager
def named_case(label: str):
    """Within the block, a :class:`GradingError` gets `` (label)`` appended to its message."""
    try:
        yield
    except DelegationError:
        raise
    except GradingError as e:
        raise GradingError(f"{e} ({label})") from None


def call_in_case(name: str, fn, *args, context: str, autograd: bool = False, guard=guarded_call):
    """``guard(name, fn, *args, autograd=autograd)`` (by default :func:`guarded_call`; a
    chapter passes its own when it forbids more libraries), the case named on failure."""
    with named_case(f"case: {context}"):
        return guard(name, fn, *args, autograd=autograd)


def array_in_case(name: str, value, shape, ctx: str, *, prefix: str = "case: "):
    """:func:`assert_array` whose message also names the case (``prefix`` + ``ctx``)."""
    with named_case(f"{prefix}{ctx}"):
        return assert_array(name, value, shape)


def pair(fn_name: str, result, what: str, ctx: str | None = None):
    """``result`` if it is a tuple of two, else a :class:`GradingError` saying that ``fn_name``
    should return ``(what)``, naming the case ``ctx`` if given."""
    if not (isinstance(result, tuple) and len(result) == 2):
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
        case = f" (case: {ctx})" if ctx is not None else ""
        raise GradingError(f"{fn_name} should return ({what}), a tuple of two; got {got}{case}")
    return result


def expected(fn_name: str, *args, **kwargs):
    """The trusted reference's ``rnn_ref.numpy.<fn_name>(*args, **kwargs)``, or None in a
    student's kernel under the class-scale grader, which computes it in its own process when it
    replays the recorded results."""
    if recording():
        return None
    return getattr(trusted_reference("rnn_ref.numpy"), fn_name)(*args, **kwargs)


def case_seed(seeds, k: int) -> int:
    """The seed of case ``k``: the hidden tests' ``seeds`` taken in turn (``(0,)`` if empty)."""
    seeds = tuple(seeds) or (0,)
    return int(seeds[k % len(seeds)])


def case_rng(seeds, k: int):
    """The generator of case ``k``: its seed with the case index mixed in, so equal seeds differ."""
    return _np.random.default_rng([case_seed(seeds, k), k])


seal(__name__)
