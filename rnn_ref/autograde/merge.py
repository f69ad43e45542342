"""The notebook that is run: the instructor's locked cells with the student's answers.

Every locked cell (tests, set-up, read-only instructions) comes from the source notebook,
whatever the student did to it: edited, deleted, duplicated, re-typed as Markdown or moved.
Every answer cell comes from the student, matched by its ``grade_id``; a missing or re-typed
answer gets the released stub (so it scores 0). Cells the student added (helpers, scratch work)
stay where they were, after the locked or answer cell they followed. What was odd is reported.
"""

from __future__ import annotations

import copy

import nbformat

from .assignment import grade_id, is_answer, is_locked, nbgrader_meta


def _text(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def merge(source, release, student) -> tuple[nbformat.NotebookNode, list[str]]:
    """Return (notebook to run, notes in words). Arguments are NotebookNodes."""
    notes: list[str] = []
    anchors = {grade_id(c): c for c in source.cells if grade_id(c)}
    stubs = {grade_id(c): c for c in release.cells if grade_id(c)}

    # The student's cells, grouped after the anchor (a known grade_id) they follow.
    first: dict[str, object] = {}
    following: dict[str | None, list] = {None: []}
    current = None
    for cell in student.cells:
        gid = grade_id(cell)
        if gid in anchors:
            if gid in first:
                notes.append(f"cell {gid!r} appeared more than once; only the first was used")
                continue
            first[gid] = cell
            current = gid
            following.setdefault(gid, [])
            continue
        added = copy.deepcopy(cell)
        if "nbgrader" in added.get("metadata", {}):
            del added.metadata["nbgrader"]  # an added cell cannot pose as a graded one
        following[current].append(added)

    out = list(following[None])
    for gid, src in anchors.items():
        mine = first.get(gid)
        if is_answer(src):
            if mine is None:
                notes.append(f"answer cell {gid!r} was missing; the released stub was used")
                cell = copy.deepcopy(stubs.get(gid, src))
            elif mine.get("cell_type") != src.cell_type:
                notes.append(
                    f"answer cell {gid!r} was changed to {mine.get('cell_type')}; "
                    "the released stub was used"
                )
                cell = copy.deepcopy(stubs.get(gid, src))
            else:
                cell = copy.deepcopy(src)
                cell.source = _text(mine)
        else:
            if is_locked(src) and mine is None:
                notes.append(f"locked cell {gid!r} was missing; it was put back")
            elif is_locked(src) and (
                _text(mine) not in (_text(stubs.get(gid, src)), _text(src))
                or mine.get("cell_type") != src.cell_type
            ):
                notes.append(f"locked cell {gid!r} was edited; the original was used")
            cell = copy.deepcopy(src)
        if cell.get("cell_type") == "code":
            cell.outputs, cell.execution_count = [], None
        # The release's metadata carries the checksum that tells an untouched stub.
        meta_from = stubs.get(gid, src) if is_answer(src) else src
        cell.metadata["nbgrader"] = copy.deepcopy(nbgrader_meta(meta_from))
        out.append(cell)
        out.extend(following.get(gid, []))
    for cell in out:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb = nbformat.v4.new_notebook(metadata=copy.deepcopy(source.metadata))
    nb.cells = [nbformat.from_dict(c) for c in out]
    for i, cell in enumerate(nb.cells):  # ids must be unique; added cells may repeat them
        cell["id"] = f"c{i:04d}"
    return nb, notes
