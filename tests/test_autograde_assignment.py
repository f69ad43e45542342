"""What the grader reads from an assignment's source notebook."""

from __future__ import annotations

import nbformat

from rnn_ref.autograde.assignment import Assignment


def _answer(source: str):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "a", "locked": False}
    return cell


def test_student_names_include_functions_and_classes_at_top_level():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _answer("def train_step(p):\n    def inner():\n        pass\n    return p"),
        _answer("class EarlyStopping:\n    def step(self, v):\n        return False"),
        _answer("def broken(:\n"),  # a syntax error names nothing, and breaks nothing
        nbformat.v4.new_code_cell("def not_an_answer():\n    pass"),
    ]
    a = Assignment(id="x", source=nbformat.writes(nb), release=nbformat.writes(nb))
    assert a.student_function_names() == ["train_step", "EarlyStopping"]
