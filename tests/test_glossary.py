"""The English-Chinese glossary (book/glossary.md) and the {term} links of the chapter pages.

Static checks read the Markdown sources (well under a second): every glossary entry gives a
Chinese term and the chapter that defines it, no term is listed twice, every chapter page links
its first uses of glossary terms, and every {term} link of the book has a target (the build,
with -W -n, would fail on a dangling one; this test says which). If the book has been built
(``make book``), the built chapter pages are checked for links into glossary.html; without a
build that part is skipped, as in tests/test_book.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from grading_course import toc_files

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
GLOSSARY = BOOK / "glossary.md"
BUILT_HTML = ROOT / "_build" / "html"

# The chapter pages whose prose links glossary terms (ch17, the errata, is not one of them).
CHAPTER_PAGES = sorted(p for p in BOOK.glob("ch*.md") if re.match(r"ch(0[1-9]|1[0-6])_", p.name))
# Each chapter page links at least this many distinct glossary terms (the fewest, ch02, has ~20).
MIN_TERM_LINKS = 15

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
TERM_ROLE = re.compile(r"\{term\}`([^`]*)`")
REF_ROLE = re.compile(r"Defined in \{ref\}`([^`<>]+)`")


def _glossary_entries() -> list[tuple[list[str], str]]:
    """(terms, definition) for each entry of the ```{glossary} block."""
    text = GLOSSARY.read_text(encoding="utf-8")
    m = re.search(r"^```\{glossary\}\n(.*?)^```\s*$", text, flags=re.S | re.M)
    assert m, "book/glossary.md has no ```{glossary} block"
    entries: list[tuple[list[str], str]] = []
    terms: list[str] = []
    definition: list[str] = []
    for line in m.group(1).split("\n"):
        if line.startswith(":"):  # directive options (:sorted:)
            continue
        if line.strip() and not line[0].isspace():
            if definition:
                entries.append((terms, "\n".join(definition)))
                terms, definition = [], []
            terms.append(line.strip())
        elif line.strip():
            assert terms, f"definition without a term: {line!r}"
            definition.append(line.strip())
    if terms:
        entries.append((terms, "\n".join(definition)))
    return entries


def _chapter_labels() -> set[str]:
    """The label on the first line of each chapter page, e.g. ch05-lstm."""
    labels = set()
    for page in BOOK.glob("ch*.md"):
        m = re.search(r"^\(([\w-]+)\)=\s*$", page.read_text(encoding="utf-8"), flags=re.M)
        if m:
            labels.add(m.group(1))
    return labels


def _term_target(role_text: str) -> str:
    """The glossary term a {term} role points to: `text <target>` or `target`."""
    m = re.match(r"^(.*?)\s*<([^<>]+)>$", role_text, flags=re.S)
    return (m.group(2) if m else role_text).strip()


ENTRIES = _glossary_entries()
TERMS = {t.lower() for terms, _ in ENTRIES for t in terms}
CHAPTER_LABELS = _chapter_labels()


def test_glossary_is_in_the_toc():
    toc = list(toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text())))
    assert "book/glossary" in toc


def test_glossary_covers_the_course():
    assert len(ENTRIES) >= 120, f"only {len(ENTRIES)} glossary entries"


@pytest.mark.parametrize("terms,definition", ENTRIES, ids=[e[0][0] for e in ENTRIES])
def test_entry_has_chinese_and_a_defining_chapter(terms, definition):
    assert definition, f"{terms}: no definition"
    assert CJK.search(definition), f"{terms}: no Chinese term"
    refs = REF_ROLE.findall(definition)
    assert len(refs) == 1, f"{terms}: needs exactly one 'Defined in {{ref}}`<chapter label>`'"
    assert refs[0] in CHAPTER_LABELS, f"{terms}: {refs[0]} is not a chapter label"


# Terms whose Chinese usage is ambiguous or often wrong (issue 12): their entries must say so.
AMBIGUOUS = [
    "recurrent neural network",  # 递归神经网络 also names the recursive network
    "recursive neural network",
    "vanishing gradient",
    "exploding gradient",
    "gate",  # 门 vs 门控
    "forget gate",
    "teacher forcing",
    "beam search",
    "long short-term memory",
    "gradient clipping",  # 梯度截断 vs truncated BPTT
]


@pytest.mark.parametrize("term", AMBIGUOUS)
def test_ambiguous_chinese_usage_is_noted(term):
    definitions = [d for terms, d in ENTRIES if term in (t.lower() for t in terms)]
    assert definitions, f"{term!r} is not in the glossary"
    assert "*Chinese usage:*" in definitions[0], f"{term!r}: no note on Chinese usage"


def test_recurrent_and_recursive_are_told_apart():
    # Chapter 2: 循环神经网络 is the unambiguous name of the recurrent network.
    (rnn,) = [d for terms, d in ENTRIES if "RNN" in terms]
    assert "循环神经网络" in rnn and "递归神经网络" in rnn


def test_no_duplicate_terms():
    seen: dict[str, str] = {}
    for terms, _ in ENTRIES:
        for term in terms:
            key = term.lower()
            assert key not in seen, f"{term!r} is listed twice"
            seen[key] = term


def test_chapter_pages_are_found():
    names = {p.stem for p in CHAPTER_PAGES}
    assert len(CHAPTER_PAGES) >= 17, names
    assert "ch16_multimodal_captioner" in names


@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=lambda p: p.stem)
def test_chapter_links_its_terms_once(page):
    targets = [_term_target(t).lower() for t in TERM_ROLE.findall(page.read_text("utf-8"))]
    assert len(set(targets)) >= MIN_TERM_LINKS, (
        f"{page.name}: only {len(set(targets))} glossary terms linked"
    )
    # Only the first use of a term in a page is linked (two surface forms, e.g. an abbreviation
    # and the full name, are two glossary terms and may both be linked).
    twice = sorted({t for t in targets if targets.count(t) > 1})
    assert not twice, f"{page.name} links these terms more than once: {twice}"


@pytest.mark.parametrize("page", sorted(BOOK.glob("*.md")), ids=lambda p: p.stem)
def test_every_term_link_has_a_target(page):
    # Sphinx falls back to a case-insensitive match of the term, so compare in lower case.
    targets = {_term_target(t) for t in TERM_ROLE.findall(page.read_text("utf-8"))}
    missing = sorted(t for t in targets if t.lower() not in TERMS)
    assert not missing, f"{page.name}: {{term}} links with no glossary entry: {missing}"


@pytest.mark.skipif(
    not (BUILT_HTML / "book" / "glossary.html").is_file(),
    reason="the book is not built with its glossary (run `make book`)",
)
@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=lambda p: p.stem)
def test_built_chapter_links_to_the_glossary(page):
    html = (BUILT_HTML / "book" / f"{page.stem}.html").read_text(encoding="utf-8")
    n_links = len(re.findall(r'href="glossary\.html#term-', html))
    assert n_links >= MIN_TERM_LINKS, f"{page.stem}.html: {n_links} links to the glossary"
