"""The framework and server pages show the code the end-to-end tests run.

Every fenced block in docs/frameworks/ and docs/servers/ is preceded by
``<!-- from: <file> [<file> ...] -->``. With one file, the block must appear in it verbatim;
with several (a server page listing one command per example), each line of the block must
appear verbatim in one of them, and each of them must supply a line. The examples are what
tests/test_e2e_frameworks.py starts, so a page cannot drift from what is tested.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import ROOT

DOCS = ROOT / "docs"
PAGES = {
    "frameworks": ["django", "fastapi", "flask", "litestar", "quart", "starlette"],
    "servers": ["gunicorn", "hypercorn", "uvicorn"],
}
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SOURCE = re.compile(r"<!-- from: ([^>]+?) -->\n$")


def page_paths() -> list[Path]:
    return [DOCS / folder / f"{name}.md" for folder, names in PAGES.items() for name in names]


def snippets(page: Path) -> list[tuple[list[str], str]]:
    """(source files, code) for each fenced block of ``page``; fails on a block with no source."""
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        source = SOURCE.search(text, 0, match.start())  # ends right where the block starts
        assert source is not None, (
            f"{page.relative_to(ROOT)}: a code block without a `<!-- from: ... -->` line before it:"
            f"\n{match.group(1)}"
        )
        found.append((source.group(1).split(), match.group(1)))
    return found


def test_every_page_exists_and_is_linked_from_serving() -> None:
    serving = (DOCS / "serving.md").read_text()
    for page in page_paths():
        assert page.is_file(), page
        assert str(page.relative_to(DOCS)) in serving, f"serving.md does not link {page.name}"


@pytest.mark.parametrize("page", page_paths(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_snippets_are_copied_from_the_examples(page: Path) -> None:
    found = snippets(page)
    assert found, f"{page.relative_to(ROOT)} shows no example code"
    for sources, code in found:
        texts = {source: (ROOT / source).read_text() for source in sources}
        if len(sources) == 1:
            assert code in texts[sources[0]], f"{page.name}: this block is not in {sources[0]}"
            continue
        used = set()
        for line in filter(None, code.splitlines()):
            owners = [s for s in sources if re.search(rf"^\s*{re.escape(line)}$", texts[s], re.M)]
            assert owners, f"{page.name}: {line!r} is in none of {sources}"
            used.update(owners)
        assert used == set(sources), f"{page.name}: no line from {set(sources) - used}"
