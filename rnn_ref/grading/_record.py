"""Record and replay of the calls that checks make to a student's functions.

When the class-scale grader runs a notebook, the student's kernel is not trusted to judge
itself. There, :func:`guarded_call` only *records* what each student function returned (to
``$RNN_COURSE_RECORD_DIR``), and checks skip every comparison with a reference (the reference
code is not even readable from the sandboxed kernel). Afterwards the grader, in its own process,
re-runs each test cell's source with :class:`Replay` installed: ``guarded_call`` then returns
the recorded results in order instead of calling anything, and the checks compare them with
expected values the grader computes itself. So rebinding numpy, the helpers or anything else in
the kernel cannot change a verdict, and the kernel never holds a hidden test's expected values.

A record is JSON (structure, scalars, messages) plus ``.npy`` files for arrays, read back with
``allow_pickle=False`` and size limits: nothing in a record can run code in the grader.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy

RECORD_DIR_ENV = "RNN_COURSE_RECORD_DIR"
MAX_ARRAY_BYTES = 32 * 2**20  # per call; beyond it arrays are recorded as opaque
MAX_JSON_BYTES = 4 * 2**20


class Opaque:
    """Stands in, at replay, for a value that was not recorded (e.g. a cache object)."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name} (not recorded)>"


def record_dir() -> Path | None:
    value = os.environ.get(RECORD_DIR_ENV)
    return Path(value) if value else None


_seq = [0]


def _encode(obj, arrays: list, budget: list, depth: int = 0):
    if type(obj).__name__ == "Tensor" and hasattr(obj, "detach"):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, numpy.ndarray | numpy.generic) and not isinstance(obj, numpy.object_):
        arr = numpy.asarray(obj)
        if arr.dtype.hasobject or arr.nbytes > budget[0]:
            return {"opaque": f"array of {arr.dtype} {arr.shape}"}
        budget[0] -= arr.nbytes
        arrays.append(arr)
        return {"array": len(arrays) - 1}
    if obj is None or isinstance(obj, bool | int | str):
        return {"value": obj}
    if isinstance(obj, float):
        return {"float": repr(obj)}  # repr keeps nan/inf and every bit of precision
    if isinstance(obj, tuple | list) and depth < 4:
        return {
            "seq": [_encode(o, arrays, budget, depth + 1) for o in obj],
            "tuple": isinstance(obj, tuple),
        }
    if isinstance(obj, dict) and depth < 4 and all(isinstance(k, str) for k in obj):
        return {"dict": {k: _encode(v, arrays, budget, depth + 1) for k, v in obj.items()}}
    return {"opaque": type(obj).__name__}


def write(name: str, status: str, message: str = "", result=None) -> None:
    """Append one record (kernel side). ``status`` is ``ok``, ``error`` or ``delegation``."""
    folder = record_dir()
    if folder is None:
        return
    seq = _seq[0]
    _seq[0] += 1
    arrays: list = []
    entry = {"seq": seq, "name": name, "status": status, "message": message}
    if status == "ok":
        entry["result"] = _encode(result, arrays, [MAX_ARRAY_BYTES])
    for k, arr in enumerate(arrays):
        numpy.save(folder / f"{seq:06d}-{k}.npy", arr, allow_pickle=False)
    # The JSON last: its presence says the record is complete.
    (folder / f"{seq:06d}.json").write_text(json.dumps(entry))


def _decode(node, arrays: dict):
    if not isinstance(node, dict) or len(node) == 0:
        raise ValueError("malformed record")
    if "array" in node:
        return arrays[int(node["array"])]
    if "value" in node:
        value = node["value"]
        if value is not None and not isinstance(value, bool | int | str):
            raise ValueError("malformed record value")
        return value
    if "float" in node:
        return float(node["float"])
    if "seq" in node:
        items = [_decode(n, arrays) for n in node["seq"]]
        return tuple(items) if node.get("tuple") else items
    if "dict" in node:
        return {str(k): _decode(v, arrays) for k, v in node["dict"].items()}
    if "opaque" in node:
        return Opaque(str(node["opaque"]))
    raise ValueError("malformed record")


def read(folder: Path, names: list[str]) -> list[dict]:
    """Read the records whose JSON files are ``names`` (grader side), defensively."""
    out = []
    for fname in names:
        path = folder / fname
        try:
            if path.stat().st_size > MAX_JSON_BYTES:
                raise ValueError("record too large")
            entry = json.loads(path.read_text())
            seq = int(entry["seq"])
            arrays = {}
            for npy in sorted(folder.glob(f"{seq:06d}-*.npy")):
                k = int(npy.stem.rsplit("-", 1)[1])
                if npy.stat().st_size > MAX_ARRAY_BYTES + 4096:
                    raise ValueError("array too large")
                arrays[k] = numpy.load(npy, allow_pickle=False)
            result = _decode(entry["result"], arrays) if entry.get("status") == "ok" else None
            out.append(
                {
                    "name": str(entry["name"]),
                    "status": str(entry["status"]),
                    "message": str(entry.get("message", ""))[:2000],
                    "result": result,
                }
            )
        except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
            out.append(
                {
                    "name": "?",
                    "status": "error",
                    "result": None,
                    "message": f"a result could not be read back ({type(e).__name__})",
                }
            )
    return out


class Replay:
    """Feeds recorded results to ``guarded_call`` in the grader, in order."""

    def __init__(self, records: list[dict], missing: str):
        self.records = list(records)
        self.missing = missing  # why a call may have no record (timeout, crash, ...)
        self.used = 0

    def next(self, name: str):
        from ._guard import DelegationError, GradingError

        if self.used >= len(self.records):
            raise GradingError(f"{name} produced no result while the notebook ran ({self.missing})")
        rec = self.records[self.used]
        self.used += 1
        if rec["name"] != name:
            raise GradingError(
                f"{name}: the recorded results are out of order; the notebook "
                "must run top to bottom without changing the test cells"
            )
        if rec["status"] == "delegation":
            raise DelegationError(rec["message"])
        if rec["status"] != "ok":
            raise GradingError(rec["message"] or f"{name} failed")
        return rec["result"]
