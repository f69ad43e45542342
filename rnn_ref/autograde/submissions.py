"""Finding the submissions in what an instructor collected.

Three layouts are accepted:

* nbgrader's: ``SUBMISSIONS/<student>/<assignment>/<assignment>.ipynb`` (also with the course
  directory's ``submitted`` folder itself as SUBMISSIONS);
* a flat folder of ``<student>.ipynb`` files, as an LMS download often is;
* a ``.zip`` of either.

A student folder with no notebook, or with several of which none has the assignment's name,
becomes a submission with a problem stated in words (graded 0), never an exception.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .assignment import NOTEBOOK_LIMIT_BYTES

ZIP_LIMIT_BYTES = 2 * 2**30  # total uncompressed size of a zip of submissions
_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


@dataclass(frozen=True)
class Submission:
    student: str
    filename: str = ""  # the notebook's name as submitted
    data: bytes | None = None
    problem: str = ""  # why there is nothing to grade, or what was odd about it

    def __post_init__(self):
        if not _STUDENT_ID.match(self.student):
            raise ValueError(f"not a usable student id: {self.student!r}")


def _choose(student: str, assignment: str, notebooks: dict[str, bytes]) -> Submission:
    """One submission from the notebooks found for one student."""
    expected = f"{assignment}.ipynb"
    if not notebooks:
        return Submission(student, problem=f"no notebook submitted (expected {expected})")
    if expected in notebooks:
        name = expected
        note = ""
    elif len(notebooks) == 1:
        name = next(iter(notebooks))
        note = f"the notebook was named {name!r} instead of {expected!r}; graded anyway"
    else:
        names = ", ".join(sorted(notebooks))
        return Submission(student, problem=f"several notebooks ({names}) and none is {expected}")
    data = notebooks[name]
    if len(data) > NOTEBOOK_LIMIT_BYTES:
        return Submission(
            student,
            name,
            None,
            f"the notebook is {len(data) / 2**20:.0f} MiB, over the "
            f"{NOTEBOOK_LIMIT_BYTES / 2**20:.0f} MiB limit",
        )
    return Submission(student, name, data, note)


def _student_id(raw: str) -> str:
    """A safe id from a folder or file name (LMS names carry spaces and the like)."""
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]+", "_", raw).strip("._-") or "unnamed"
    return cleaned[:128]


def _owner(path: PurePosixPath, assignment: str) -> str:
    """Whose notebook this is, from its path (any leading folders are ignored):

    ``.../<student>/<assignment>/<any>.ipynb`` (nbgrader), ``.../<student>/<assignment>.ipynb``
    (a folder per student), else ``.../<student>.ipynb`` (flat).
    """
    parts = path.parts
    if len(parts) >= 3 and parts[-2] == assignment:
        return parts[-3]
    if len(parts) >= 2 and path.stem == assignment:
        return parts[-2]
    return path.stem


def _from_tree(entries: dict, assignment: str) -> list[Submission]:
    """``entries``: relative path -> loader of its bytes; one submission per owner."""
    by_student: dict[str, dict[str, bytes]] = {}
    for path, load in sorted(entries.items()):
        if path.suffix != ".ipynb" or ".ipynb_checkpoints" in path.parts or path.name[0] == ".":
            continue
        owner = _owner(path, assignment)
        name = path.name if path.stem != owner else f"{assignment}.ipynb"  # flat: <student>.ipynb
        by_student.setdefault(_student_id(owner), {})[name] = load()
    return [_choose(s, assignment, nbs) for s, nbs in by_student.items()]


def discover(path: Path, assignment: str) -> list[Submission]:
    """All submissions under ``path`` (a folder or a zip), sorted by student id.

    Student folders of the nbgrader layout that hold no notebook are reported too.
    """
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            if sum(i.file_size for i in infos) > ZIP_LIMIT_BYTES:
                raise ValueError(f"{path} unpacks to more than {ZIP_LIMIT_BYTES / 2**30:.0f} GiB")
            blobs = {
                PurePosixPath(i.filename): zf.read(i)
                for i in infos
                if i.filename.endswith(".ipynb") and ".." not in PurePosixPath(i.filename).parts
            }
        subs = _from_tree({p: (lambda b=b: b) for p, b in blobs.items()}, assignment)
    elif path.is_dir():
        files = {
            PurePosixPath(p.relative_to(path).as_posix()): (lambda p=p: p.read_bytes())
            for p in path.rglob("*.ipynb")
            if p.is_file()
        }
        subs = _from_tree(files, assignment)
        # nbgrader layout: a student folder with an assignment folder but no notebook in it.
        seen = {s.student for s in subs}
        for folder in sorted(path.glob(f"*/{assignment}")):
            student = _student_id(folder.parent.name)
            if folder.is_dir() and student not in seen:
                subs.append(_choose(student, assignment, {}))
    else:
        raise FileNotFoundError(f"{path} is neither a folder nor a zip file")
    if not subs:
        raise ValueError(f"no submissions found in {path}")
    return sorted(subs, key=lambda s: s.student)
