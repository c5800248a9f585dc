"""Every relative link and anchor in README.md, docs/*.md and benchmarks/*.md resolves, so
that moving text between them cannot leave a dead link behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "benchmarks").glob("*.md")),
]
# Written on another branch of issue 24; drop this once it is merged.

FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(text: str) -> list[str]:
    """The lines outside fenced and indented code blocks, inline code blanked out."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and not line.startswith("    "):
            lines.append(re.sub(r"`[^`]*`", "``", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor: markup and punctuation other than - and _ dropped, lower case, spaces
    to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"[`*]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in _headings(page):
        base = slug(line)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def _headings(page: Path) -> list[str]:
    lines, fenced = [], False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            lines.append(match.group(2))
    return lines


def links(page: Path) -> list[str]:
    return [
        target
        for line in prose(page.read_text())
        for target in LINK.findall(line)
        if not re.match(r"[a-z][a-z+.-]*:", target)  # https:, mailto:
    ]


def test_slugs_follow_githubs_rules() -> None:
    assert slug("Use a trained model") == "use-a-trained-model"
    assert slug("Many machines: a sharded sweep, a shared run-cache, one gathered report") == (
        "many-machines-a-sharded-sweep-a-shared-run-cache-one-gathered-report"
    )
    assert slug("Subject-independent results (leave-one-subject-out)") == (
        "subject-independent-results-leave-one-subject-out"
    )
    assert slug("`harfusion predict` and ONNX") == "harfusion-predict-and-onnx"


def test_a_dead_link_is_found(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Top\n\n[here](#top) [gone](#nowhere) [file](missing.md)\n```\n# no\n```\n")
    assert anchors(page) == {"top"}
    assert links(page) == ["#top", "#nowhere", "missing.md"]
    assert dead(page) == ["#nowhere", "missing.md"]


def dead(page: Path) -> list[str]:
    wrong = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and (file.suffix != ".md" or anchor not in anchors(file))):
            wrong.append(target)
    return wrong


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert dead(page) == []
