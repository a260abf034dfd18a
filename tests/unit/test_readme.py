"""The README is a five-minute read that leads to every reference page, and no link is dead.

The reference lives in docs/; the README only says what the product is, the two commands, what
the demo shows and where each feature is documented. These tests hold it to that: a length cap,
a link to every docs/*.md page, and every relative link (and #anchor) in the README and in docs/
resolving to a file and a heading that exist.
"""

import re
from pathlib import Path

from tests.helpers import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAX_README_LINES = 300

LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*|_(?=\W)|(?<=\W)_", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := HEADING.match(line)):
            found.add(slug(m.group(1)))
    return found


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t) and not t.startswith("<")]


def dead_links(page: Path, root: Path = ROOT) -> list[str]:
    dead = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            dead.append(f"{page.relative_to(root)}: {target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            dead.append(f"{page.relative_to(root)}: {target} (no such heading)")
    return dead


def test_the_readme_is_a_five_minute_read() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; the reference belongs in docs/"


def test_the_readme_starts_with_the_two_commands() -> None:
    head = "\n".join(README.read_text(encoding="utf-8").splitlines()[:40])
    assert "make demo" in head and "make test" in head


def test_the_readme_links_every_docs_page() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in relative_links(README)}
    missing = sorted(p.name for p in DOCS.glob("*.md") if p.resolve() not in linked)
    assert not missing, f"docs pages the README does not link: {missing}"


def test_no_dead_relative_links_in_the_readme_or_docs() -> None:
    dead = [d for page in (README, *sorted(DOCS.glob("*.md"))) for d in dead_links(page)]
    assert not dead, "\n".join(dead)


def test_the_link_checker_catches_a_dead_link(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other page\n\n## A `code` heading, with commas\n", encoding="utf-8")
    page.write_text(
        "[ok](other.md#a-code-heading-with-commas) [bad](other.md#nope) [gone](missing.md) [web](https://x)\n",
        encoding="utf-8",
    )
    assert dead_links(page, tmp_path) == [
        "page.md: other.md#nope (no such heading)",
        "page.md: missing.md (no such file)",
    ]
