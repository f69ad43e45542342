"""Sphinx extension: each page includes each script once.

sphinx-thebe 0.3.1 registers its inline configuration script (``const THEBE_JS_URL = ...``)
every time Sphinx reads the sources, and jupyter-book's build reads them more than once, so
every page declared the same ``const`` twice and the browser raised "Identifier
'THEBE_JS_URL' has already been declared" on every page (tests/test_browser.py). This drops
the repeats from the page's script list, keeping the first of each (same file or same inline
body, same attributes)."""

from __future__ import annotations


def _key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    # An inline script has no file name (None or ""), its text is the attribute "body".
    return (str(getattr(script, "filename", None) or ""), tuple(sorted(attributes.items())))


def unique_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    # In place: handlers that run later (sphinx.ext.mathjax adds MathJax to pages with math)
    # append to this same list.
    scripts[:] = unique


def setup(app):
    # Early: Sphinx stops calling html-page-context handlers at the first that returns a
    # template name, and the repeats are in the page's list before any handler runs.
    app.connect("html-page-context", unique_scripts, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
