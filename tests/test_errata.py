"""The errata chapter (ch17_errata): every entry of the per-seed pages is well formed (a label,
where in the seed, one kind from the list, the seed's words in Chinese with an English
translation, executed evidence or a citation, the chapter that treats it), the index table of
book/ch17_errata.md lists every entry exactly once with the same seed, section and kind, and the
chapters' "Where the seeds go wrong" bullets link to their entries.

The index table is written from the entries themselves:
``.venv/bin/python tests/test_errata.py --write-index`` rewrites it in place."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
INDEX = BOOK / "ch17_errata.md"
# In the seeds' order (as in _toc.yml): seed 003's part 1 before its parts 2-5.
PAGES = [
    BOOK / f"ch17_errata_{stem}.md"
    for stem in (
        "seed000_001",
        "seed002",
        "seed003_foundations",
        "seed003_applications",
        "seed004",
    )
]
KINDS = (
    "mathematics",
    "code that cannot run",
    "code that computes the wrong thing",
    "evaluation method",
    "history and citations",
    "claims about libraries",
    "terminology",
)
# Kinds whose claims can be executed: their entries must carry a code cell.
EXECUTABLE = {
    "mathematics",
    "code that cannot run",
    "code that computes the wrong thing",
    "evaluation method",
}
START, END = "<!-- errata-index:start -->", "<!-- errata-index:end -->"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")  # CJK text and punctuation
LABEL = re.compile(r"^\((err-[a-z0-9-]+)\)=$", re.M)
# "**Seed NNN <section>** [a note] · *<kind>* · treated in <chapters>", one paragraph
META = re.compile(
    r"^\*\*Seed (\d{3}),?(?: ([^*]+))?\*\*(?: [^·]*)? · \*([a-z ]+)\* · (?:treated in )?(.+)$"
)
CHAPTER_LABEL = re.compile(r"^\(([a-z0-9-]+)\)=$", re.M)


@dataclass
class Entry:
    label: str
    page: str
    title: str
    seed: str
    section: str
    kind: str
    treated: str
    body: str


def entries() -> list[Entry]:
    out = []
    for page in PAGES:
        text = page.read_text()
        marks = list(LABEL.finditer(text))
        for i, m in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
            body = text[m.end() : end]
            paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body) if p.strip()]
            heading, meta_text = paragraphs[0], paragraphs[1]
            assert heading.startswith("### "), f"{m.group(1)}: no ### heading after the label"
            meta = META.match(meta_text)
            assert meta, f"{m.group(1)}: the paragraph after the heading is not a meta line"
            seed, section, kind, treated = meta.groups()
            out.append(
                Entry(
                    m.group(1),
                    page.stem,
                    heading[4:].strip(),
                    seed,
                    (section or "").strip(),
                    kind,
                    treated.strip(),
                    body,
                )
            )
    return out


def chapter_labels() -> set[str]:
    return {m.group(1) for p in BOOK.glob("*.md") for m in CHAPTER_LABEL.finditer(p.read_text())}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def index_table() -> str:
    """The index: one row per entry, its section linking to it; the error's title as written
    (a link text cannot hold math, a table cell can)."""
    rows = [
        "| Seed | Section | Kind | Error | Treated in |",
        "|---|---|---|---|---|",
    ]
    for e in sorted(entries(), key=lambda e: e.seed):  # stable: page order within a seed
        treated = "—" if "not treated" in e.treated else _cell(e.treated)
        rows.append(
            f"| {e.seed} | {{ref}}`{_cell(e.section)} <{e.label}>` | {e.kind} | {_cell(e.title)} "
            f"| {treated} |"
        )
    return "\n".join(rows)


def write_index() -> None:
    text = INDEX.read_text()
    a, b = text.index(START) + len(START), text.index(END)
    INDEX.write_text(text[:a] + "\n" + index_table() + "\n" + text[b:])


def test_there_are_five_seed_pages_with_entries():
    es = entries()
    assert sorted(PAGES) == sorted(BOOK.glob("ch17_errata_seed*.md"))
    assert {e.seed for e in es} == {"000", "001", "002", "003", "004"}
    assert len(es) >= 100


def test_labels_are_unique_and_name_their_seed():
    es = entries()
    labels = [e.label for e in es]
    assert len(labels) == len(set(labels)), sorted(x for x in labels if labels.count(x) > 1)
    for e in es:
        assert e.label.startswith(f"err-{e.seed}-"), e.label


def test_every_entry_is_complete():
    known = chapter_labels()
    for e in entries():
        assert e.kind in KINDS, f"{e.label}: kind {e.kind!r}"
        assert e.section, f"{e.label}: no section of the seed"
        quotes = [ln for ln in e.body.splitlines() if ln.startswith(">")]
        # The seed's words: Chinese, or (for an error in its code) the code as it stands.
        original = [q for q in quotes if CJK.search(q) or re.search(r"[=(\[]", q)]
        assert original, f"{e.label}: no quotation of the seed (in Chinese, or its code)"
        english = [q for q in quotes if not CJK.search(q) and len(re.findall(r"[A-Za-z]+", q)) >= 3]
        assert english, f"{e.label}: no English translation"
        assert "**What is right.**" in e.body, f"{e.label}: no 'What is right.' paragraph"
        # executed code, or for a reference the real one (a bibliography entry or its address)
        evidence = "```{code-cell}" in e.body or "{cite:" in e.body or "](https://" in e.body
        assert evidence, f"{e.label}: no executed evidence and no citation"
        if e.kind in EXECUTABLE:
            assert "```{code-cell}" in e.body, f"{e.label}: a {e.kind} entry without a code cell"
        if "not treated" not in e.treated:
            refs = re.findall(r"\{ref\}`(?:[^`<]*<)?([a-z0-9-]+)>?`", e.treated)
            assert refs, f"{e.label}: 'treated in' names no chapter: {e.treated}"
            assert set(refs) <= known, f"{e.label}: unknown labels {set(refs) - known}"


def test_the_index_lists_every_entry_once_as_it_is():
    text = INDEX.read_text()
    assert START in text and END in text
    table = text[text.index(START) + len(START) : text.index(END)].strip()
    assert table == index_table(), (
        "book/ch17_errata.md's index is out of date: run "
        "`.venv/bin/python tests/test_errata.py --write-index`"
    )


def _seed_bullets(page: Path) -> list[str]:
    """The top-level bullets of a chapter's 'Where the seeds go wrong' section."""
    text = page.read_text()
    if "## Where the seeds go wrong" not in text:
        return []
    section = text.split("## Where the seeds go wrong", 1)[1]
    section = re.split(r"^#{1,2} ", section, maxsplit=1, flags=re.M)[0]
    return [b for b in re.split(r"^- ", section, flags=re.M)[1:] if b.startswith("**Seed")]


def test_chapter_bullets_link_their_errata_entries():
    labels = {e.label for e in entries()}
    missing = []
    for page in sorted(BOOK.glob("ch[01][0-9]_*.md")):
        for bullet in _seed_bullets(page):
            linked = set(re.findall(r"<(err-[a-z0-9-]+)>|\{ref\}`(err-[a-z0-9-]+)`", bullet))
            linked = {a or b for a, b in linked}
            assert linked <= labels, f"{page.name}: links to unknown entries {linked - labels}"
            if not linked:
                missing.append(f"{page.name}: {bullet[:80]}")
    assert not missing, "bullets without an errata link:\n" + "\n".join(missing)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-index"]:
        write_index()
        print(f"wrote {len(entries())} entries into {INDEX.relative_to(ROOT)}")
    else:
        sys.exit("usage: python tests/test_errata.py --write-index")
