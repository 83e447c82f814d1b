"""Each code snippet of docs/hosts/ is the code the tests run: every ``python`` (and ``yaml``)
block of a host page appears verbatim in that host's example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DO_EXAMPLE = ROOT / "examples" / "digitalocean"
PAGES = {
    "tornado.md": {"python": [ROOT / "examples" / "tornado_app.py"]},
    "aws-lambda.md": {"python": [ROOT / "examples" / "lambda_app.py"]},
    "digitalocean.md": {
        "python": [DO_EXAMPLE / "packages" / "shop" / "inngest" / "__main__.py"],
        "yaml": [DO_EXAMPLE / "project.yml"],
    },
}
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_snippets_appear_verbatim_in_the_example(page: str) -> None:
    text = (ROOT / "docs" / "hosts" / page).read_text()
    checked = 0
    for language, code in BLOCK.findall(text):
        sources = PAGES[page].get(language)
        if sources is None:
            continue  # shell commands
        assert any(code in source.read_text() for source in sources), (
            f"this {language} block of docs/hosts/{page} is not in {sources}:\n{code}"
        )
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize("page", sorted(PAGES))
def test_each_page_links_its_example(page: str) -> None:
    text = (ROOT / "docs" / "hosts" / page).read_text()
    for target in re.findall(r"\]\((\.\./\.\./examples/[^)]*)\)", text):
        assert (ROOT / "docs" / "hosts" / target).resolve().exists(), target
    assert "../../examples/" in text
