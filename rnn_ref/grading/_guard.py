"""Guards that keep a student's code from faking a pass while the checks run.

Threat model (in-kernel, as nbgrader runs a notebook). What is defended:

* Rebinding names: ``np.allclose = lambda *a: True``, ``numpy.testing.assert_allclose = ...``,
  ``builtins.abs = ...`` and the like are undone before every check (a snapshot of ``numpy``,
  ``numpy.testing``, ``numpy.linalg`` and ``builtins`` is taken when this module is first
  imported, which the notebook's first cell does before any student cell).
* Rebinding the grading helpers: test cells import them afresh, and the grading modules refuse
  attribute assignment (``rnn_ref.grading.assert_close = ...`` raises).
* Delegation: while a student's function runs under a check, every public function of
  ``rnn_ref.numpy``, ``rnn_ref.torch`` and ``rnn_ref.convert`` and the recurrent modules and
  kernels of ``torch.nn`` raise :class:`DelegationError` instead, whether they are reached
  through a module attribute at run time or through a name bound at import time (the
  function objects' code is swapped, so ``from rnn_ref.numpy import rnn_forward as mine``
  trips too). Optionally autograd too.
  A trip is recorded even if the student's code catches the exception.
* The expected values come from a private copy of ``rnn_ref.numpy`` loaded from its source
  file, not from the ``rnn_ref`` modules the student's code can reach and patch.
* Warnings raised inside a check are recorded, not printed: nbgrader scores any stderr output
  of a test cell as 0, so a harmless RuntimeWarning must not zero a correct answer.

What is *not* defended in-kernel: deliberate surgery on the grading code itself
(``module.__dict__`` edits, replacing ``__code__`` of grading functions, ``ctypes``, ``gc``
walks), patching the import system, or reading files on disk. Those need the grader to check
results outside the student's process; the class-scale grader does that.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import importlib.util
import inspect
import sys
import types
import warnings

import numpy
import numpy.linalg
import numpy.testing

from . import _record

__all__ = [
    "DelegationError",
    "GradingError",
    "guarded_call",
    "recording",
    "replay",
    "replaying",
    "restore_numpy",
    "trusted_reference",
]


class GradingError(AssertionError):
    """A check failed; the message says what is wrong without giving the answer away."""


class DelegationError(GradingError):
    """Student code called a reference implementation or a ``torch.nn`` recurrent module."""


# --- 1. Snapshot of the namespaces student code could rebind --------------------------------
_SNAPSHOT_MODULES = (numpy, numpy.testing, numpy.linalg, builtins)
# IPython's output history (_, __, ___) legitimately changes between cells.
_VOLATILE = {"_", "__", "___"}
_SNAPSHOT = [
    (m, {k: v for k, v in vars(m).items() if k not in _VOLATILE}) for m in _SNAPSHOT_MODULES
]


def restore_numpy() -> list[str]:
    """Undo any rebinding in numpy, numpy.testing, numpy.linalg and builtins; return the names."""
    changed = []
    for module, saved in _SNAPSHOT:
        current = vars(module)
        for name, value in saved.items():
            if current.get(name, _MISSING) is not value:
                changed.append(f"{module.__name__}.{name}")
                setattr(module, name, value)
    return changed


_MISSING = object()


# --- 2. Trusted reference ---------------------------------------------------------------------
_TRUSTED: dict[str, types.ModuleType] = {}


def trusted_reference(package: str = "rnn_ref.numpy") -> types.ModuleType:
    """A private copy of ``package`` loaded from its source files.

    It is not the module object in ``sys.modules``, so nothing a student cell did to
    ``rnn_ref.numpy`` (rebinding its functions, swapping their code) reaches it.
    """
    if package not in _TRUSTED:
        spec = importlib.util.find_spec(package)
        private = "_rnn_ref_trusted_" + package.replace(".", "_")
        pspec = importlib.util.spec_from_file_location(
            private, spec.origin, submodule_search_locations=spec.submodule_search_locations
        )
        module = importlib.util.module_from_spec(pspec)
        sys.modules[private] = module  # needed while its relative imports run
        try:
            pspec.loader.exec_module(module)
        finally:
            for name in [n for n in sys.modules if n == private or n.startswith(private + ".")]:
                del sys.modules[name]
        _TRUSTED[package] = module
    return _TRUSTED[package]


# --- 3. Delegation tripwires ------------------------------------------------------------------
_trips: list[str] = []


def tripped(code) -> None:
    """Called by a tripwire: record the name and raise."""
    name = getattr(code, "co_qualname", code.co_name)
    _trips.append(name)
    raise DelegationError(
        f"your code called {name}; a reference implementation earns no credit while grading. "
        "Write the computation yourself with NumPy."
    )


def _tripwire(*args, **kwargs):
    # Runs with the *target's* globals, so it reaches this module by import, not by name.
    __import__("rnn_ref.grading._guard", fromlist=["_"]).tripped(
        __import__("sys")._getframe().f_code
    )


def _targets(autograd: bool, torch_nn: bool = False):
    """(owner, attribute name, qualified name) of everything student code must not call."""
    out = []
    for pkg in ("rnn_ref.numpy", "rnn_ref.torch", "rnn_ref.convert"):
        try:
            module = importlib.import_module(pkg)
        except (ImportError, OSError):  # no torch, or unreadable in the grading sandbox
            continue
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if isinstance(obj, type):  # a class: forbid constructing it and its methods
                for attr, value in vars(obj).items():
                    public = not attr.startswith("_") or attr in ("__init__", "__call__")
                    if public and callable(getattr(value, "__func__", value)):
                        out.append((obj, attr, f"{pkg}.{name}.{attr}"))
            elif callable(obj):
                owner = sys.modules.get(getattr(obj, "__module__", ""), module)
                out.append((owner, name, f"{pkg}.{name}"))
    torch = sys.modules.get("torch")
    if torch is not None and not torch_nn:
        nn = torch.nn
        for cls in (nn.RNN, nn.LSTM, nn.GRU, nn.RNNCell, nn.LSTMCell, nn.GRUCell):
            out.append((cls, "forward", f"torch.nn.{cls.__name__}.forward"))
        for kernel in (
            "rnn_tanh",
            "rnn_relu",
            "lstm",
            "gru",
            "rnn_tanh_cell",
            "rnn_relu_cell",
            "lstm_cell",
            "gru_cell",
        ):
            out.append((torch._VF, kernel, f"torch._VF.{kernel}"))
            if hasattr(torch, kernel):
                out.append((torch, kernel, f"torch.{kernel}"))
        # What the ch04 exercises ask for (clipping, orthogonal initialisation), ready-made.
        for owner, names, prefix in (
            (nn.utils, ("clip_grad_norm_", "clip_grad_value_"), "torch.nn.utils"),
            (nn.init, ("orthogonal_", "eye_"), "torch.nn.init"),
        ):
            for name in names:
                out.append((owner, name, f"{prefix}.{name}"))
    if torch is not None and autograd:
        out.append((torch.autograd, "backward", "torch.autograd.backward"))
        out.append((torch.autograd, "grad", "torch.autograd.grad"))
        out.append((torch.Tensor, "backward", "torch.Tensor.backward"))
    return out


def _raiser(qualname):
    def forbidden(*args, **kwargs):
        _trips.append(qualname)
        raise DelegationError(
            f"your code called {qualname}; while grading it earns no credit. "
            "Write the computation yourself with NumPy."
        )

    return forbidden


@contextlib.contextmanager
def _no_delegation(autograd: bool, torch_nn: bool = False):
    undo = []
    try:
        for owner, attr, qualname in _targets(autograd, torch_nn):
            obj = getattr(owner, attr, None)
            if obj is None:
                continue
            fn = getattr(obj, "__func__", obj)
            if isinstance(fn, types.FunctionType) and fn.__code__.co_freevars:
                # A decorator's wrapper (a closure) calls the function it wraps: swap that one.
                fn = inspect.unwrap(fn)
            code = getattr(fn, "__code__", None)
            if isinstance(fn, types.FunctionType) and not code.co_freevars:
                # Swapping the code trips every reference to this function object.
                fn.__code__ = _tripwire.__code__.replace(co_name=fn.__name__, co_qualname=qualname)
                undo.append(lambda fn=fn, code=code: setattr(fn, "__code__", code))
            else:
                setattr(owner, attr, _raiser(qualname))
                undo.append(lambda o=owner, a=attr, v=obj: setattr(o, a, v))
        yield
    finally:
        for u in reversed(undo):
            u()


_replay = [None]  # the grader installs a _record.Replay here while it re-runs test cells
_torch_missing = [False]


def replaying() -> bool:
    """True in the grader's process while it re-runs a test cell against recorded results."""
    return _replay[0] is not None


def recording() -> bool:
    """True in a student's kernel run by the class-scale grader: only record, never judge."""
    return _replay[0] is None and _record.record_dir() is not None


@contextlib.contextmanager
def replay(records: list[dict], missing: str):
    """Make :func:`guarded_call` return ``records`` in order (grader side)."""
    _replay[0] = _record.Replay(records, missing)
    try:
        yield _replay[0]
    finally:
        _replay[0] = None


def _snapshot(value):
    if isinstance(value, numpy.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: v.copy() for k, v in value.items() if isinstance(v, numpy.ndarray)}
    return None


def _changed(before, value) -> str | None:
    """The first part of an input that differs from its snapshot, '' for the whole, or None."""
    same = numpy.array_equal
    if isinstance(before, numpy.ndarray):
        ok = isinstance(value, numpy.ndarray) and value.shape == before.shape
        return None if ok and same(before, value, equal_nan=True) else ""
    if isinstance(before, dict):
        for k, v in before.items():
            now = value.get(k) if isinstance(value, dict) else None
            if not (
                isinstance(now, numpy.ndarray)
                and now.shape == v.shape
                and same(v, now, equal_nan=True)
            ):
                return f"[{k!r}]"
    return None


def _arg_names(fn, n: int) -> list[str]:
    try:
        names = [p.name for p in inspect.signature(fn).parameters.values()]
    except (TypeError, ValueError):
        names = []
    return [names[i] if i < len(names) else f"argument {i + 1}" for i in range(n)]


def guarded_call(name: str, fn, *args, autograd: bool = False, torch_nn: bool = False):
    """Call a student's ``fn(*args)`` with delegation forbidden and warnings recorded.

    ``torch_nn=True`` lets the student's code use ``torch.nn`` (its recurrent modules and kernels,
    clipping and init), for exercises about PyTorch itself; ``rnn_ref`` stays forbidden.

    Returns the result. Raises :class:`GradingError` that names ``name`` if ``fn`` is not
    callable, is not implemented, raises, delegated (even if it caught the exception) or
    modified one of its inputs in place. Under the class-scale grader the outcome is also
    recorded, and at replay it is read back instead of calling anything (see ``_record``).
    """
    if _replay[0] is not None:
        return _replay[0].next(name)
    try:
        result = _call(name, fn, args, autograd, torch_nn)
    except DelegationError as e:
        _record.write(name, "delegation", str(e))
        raise
    except GradingError as e:
        _record.write(name, "error", str(e))
        raise
    _record.write(name, "ok", result=result)
    return result


def _call(name, fn, args, autograd, torch_nn=False):
    if not callable(fn):
        raise GradingError(
            f"{name} is not a function (it is a {type(fn).__name__}); was it overwritten?"
        )
    if not _torch_missing[0] and (autograd or "torch" not in sys.modules):
        try:
            importlib.import_module("torch")  # so an import inside the student's code is covered
        except (ImportError, OSError):  # not installed, or unreadable in the grading sandbox
            _torch_missing[0] = True
    restore_numpy()
    del _trips[:]
    before = [_snapshot(a) for a in args]
    with warnings.catch_warnings(record=True) as caught, numpy.errstate(all="ignore"):
        warnings.simplefilter("always")
        with _no_delegation(autograd, torch_nn):
            try:
                result = fn(*args)
            except DelegationError:
                raise
            except NotImplementedError:
                raise GradingError(
                    f"{name} is not implemented yet (it raised NotImplementedError)"
                ) from None
            except Exception as e:
                raise GradingError(f"{name} raised {type(e).__name__}: {e}") from e
            except (SystemExit, KeyboardInterrupt) as e:  # sys.exit(), or a time limit's interrupt
                raise GradingError(f"{name} raised {type(e).__name__}; it must return") from e
    if _trips:
        raise DelegationError(
            f"{name} called {_trips[0]}; a reference implementation earns no credit while grading."
        )
    restore_numpy()
    for arg_name, b, a in zip(_arg_names(fn, len(args)), before, args, strict=True):
        part = _changed(b, a)
        if part is not None:
            raise GradingError(
                f"{name} modified its input {arg_name}{part} in place; inputs must not change"
            )
    _last_warnings[:] = [f"{w.category.__name__}: {w.message}" for w in caught]
    return result


_last_warnings: list[str] = []


def last_warnings() -> list[str]:
    """The warnings the last guarded call raised (a failed check mentions them as a hint)."""
    return list(_last_warnings)


class _SealedModule(types.ModuleType):
    """A module whose attributes cannot be rebound, only its own submodules added."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and value.__name__ == f"{self.__name__}.{name}":
            return super().__setattr__(name, value)
        raise AttributeError(f"{self.__name__} is read-only during grading; cannot set {name!r}")

    def __delattr__(self, name):
        raise AttributeError(f"{self.__name__} is read-only during grading; cannot delete {name!r}")


def seal(module_name: str) -> None:
    """Make ``sys.modules[module_name]`` refuse attribute assignment."""
    sys.modules[module_name].__class__ = _SealedModule


seal(__name__)
