"""An assignment as the grader needs it: the instructor's source notebook (solutions and hidden
tests), the released notebook (the stubs), allowed data files, and the limits."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .sandbox import Limits

NOTEBOOK_LIMIT_BYTES = 20 * 2**20  # a submitted notebook larger than this is not graded


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def grade_id(cell) -> str | None:
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def is_test(cell) -> bool:
    """An autograded test cell: graded, locked code, not an answer."""
    m = nbgrader_meta(cell)
    return bool(m.get("grade")) and not m.get("solution") and cell.get("cell_type") == "code"


def is_answer(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_locked(cell) -> bool:
    m = nbgrader_meta(cell)
    return bool(m.get("locked")) or (bool(m.get("grade")) and not m.get("solution"))


@dataclass(frozen=True)
class Assignment:
    """Everything needed to grade one submission, picklable for worker processes."""

    id: str
    source: str  # the source notebook (JSON)
    release: str  # the released notebook (JSON)
    files: dict[str, bytes] = field(default_factory=dict)  # other released files, by name
    limits: Limits = field(default_factory=Limits)
    deny_packages: tuple[str, ...] = ("torch",)

    @classmethod
    def load(cls, course_dir: Path, assignment_id: str, limits: Limits | None = None) -> Assignment:
        course_dir = Path(course_dir)
        src = course_dir / "solutions" / assignment_id / f"{assignment_id}.ipynb"
        rel_dir = course_dir / "exercises" / assignment_id
        rel = rel_dir / f"{assignment_id}.ipynb"
        if not src.is_file():
            raise FileNotFoundError(
                f"no source notebook {src} (is {assignment_id!r} an assignment?)"
            )
        if not rel.is_file():
            raise FileNotFoundError(f"no released notebook {rel}: run `make exercises` first")
        files = {
            p.name: p.read_bytes()
            for p in sorted(rel_dir.iterdir())
            if p.is_file() and p.name != rel.name and not p.name.startswith(".")
        }
        source = src.read_text(encoding="utf-8")
        meta = json.loads(source).get("metadata", {}).get("rnn_course", {})
        allowed = set(meta.get("allow_packages", []))
        deny = tuple(p for p in ("torch",) if p not in allowed)
        return cls(
            assignment_id, source, rel.read_text(encoding="utf-8"), files, limits or Limits(), deny
        )

    def source_nb(self):
        return nbformat.reads(self.source, as_version=4)

    def release_nb(self):
        return nbformat.reads(self.release, as_version=4)

    def points(self) -> dict[str, float]:
        """Max points of every grade cell, in notebook order."""
        return {
            grade_id(c): float(nbgrader_meta(c).get("points", 0))
            for c in self.source_nb().cells
            if nbgrader_meta(c).get("grade") and grade_id(c)
        }

    def student_function_names(self) -> list[str]:
        """Names the answer cells define (``def`` or ``class`` at top level), e.g.
        ``rnn_forward``, ``EarlyStopping``."""
        names = []
        for c in self.source_nb().cells:
            if is_answer(c) and c.cell_type == "code":
                try:
                    tree = ast.parse(c.source)
                except SyntaxError:
                    continue
                names += [
                    n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)
                ]
        return names
