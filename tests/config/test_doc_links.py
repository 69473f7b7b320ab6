"""Every reference to a repository file resolves inside the repository.

Code comments, docstrings, docs, scripts and manifests name files of this repository
(``docs/ipam.md``, ``terway/ipam/pool.py``, ``tests/e2e_node/``); a reference to a file that
moved, or to one that was never here (``FACTS.md §3``), leaves the reader nowhere. Three kinds
of reference are checked, each chosen to give no false positives:

- a path starting with a top-level directory of this repository (``terway/…``, ``docs/…``),
  not part of a longer path or URL, with no glob or placeholder in it;
- a bare upper-case Markdown name (``README.md``), or an upper-case name with a section sign
  (``FACTS §2``): it must exist at the root or beside the file naming it;
- in Markdown, a relative link target (``[ipam.md](ipam.md#time)``), resolved from the page,
  and its anchor, which must be a heading of the target page (GitHub's slug).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED_DIRS = ("terway", "emulator", "simulator", "docs", "scripts", "deploy")
SCANNED_FILES = ("README.md", "CONTRIBUTING.md")
SUFFIXES = {".py", ".md", ".sh", ".yaml", ".yml"}
TOP_DIRS = ("terway", "emulator", "simulator", "docs", "scripts", "deploy", "tests", "bench",
            "demo", "scenarios", "worlds", "kind-config")

# a repo path: not preceded by a path or word character (so not inside a URL or /abs/path)
REPO_PATH = re.compile(rf"(?<![\w./~$-])((?:{'|'.join(map(re.escape, TOP_DIRS))})/[\w./-]*)")
# what after a path makes it a pattern, not a file: a glob, a placeholder, a format field
NOT_A_FILE = re.compile(r"[*<{$\[]")
UPPER_MD = re.compile(r"(?<![\w./-])([A-Z][A-Z0-9_-]+\.md)\b")
UPPER_SECTION = re.compile(r"(?<![\w./-])([A-Z][A-Z0-9_-]{2,}) §")
MD_LINK = re.compile(r"\]\(([^)\s#]+(?:#[^)\s]*)?)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)


def scanned(root: Path) -> Iterator[Path]:
    for name in SCANNED_FILES:
        if (root / name).is_file():
            yield root / name
    for top in SCANNED_DIRS:
        for path in sorted((root / top).rglob("*")):
            if (path.suffix in SUFFIXES and path.is_file()
                    and not any(p.startswith(".") or p == "__pycache__"
                                for p in path.relative_to(root).parts)):
                yield path


def references(text: str, markdown: bool) -> Iterator[tuple[int, str, str]]:
    """(line number, reference as written, kind) for each reference in ``text``."""
    for no, line in enumerate(text.splitlines(), 1):
        for m in REPO_PATH.finditer(line):
            if NOT_A_FILE.match(line, m.end()):
                continue
            ref = m.group(1).rstrip(".")
            yield no, ref, "repo"
        for m in UPPER_MD.finditer(line):
            yield no, m.group(1), "upper"
        for m in UPPER_SECTION.finditer(line):
            yield no, m.group(1) + ".md", "upper"
        if markdown:
            for m in MD_LINK.finditer(line):
                target = m.group(1)
                if not re.match(r"[a-z][a-z0-9+.-]*:", target):      # not http:, mailto:
                    yield no, target, "relative"


def slugs(page: Path) -> set[str]:
    """GitHub's anchors of a Markdown page's headings (a repeated one also gets -1, -2...)."""
    found: set[str] = set()
    for heading in HEADING.findall(page.read_text(encoding="utf-8")):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = 1
        base = slug
        while slug in found:
            slug = f"{base}-{n}"
            n += 1
        found.add(slug)
    return found


def resolves(root: Path, source: Path, ref: str, kind: str) -> bool:
    if kind == "repo":
        return (root / ref).exists()
    if kind == "upper":
        return (root / ref).is_file() or (source.parent / ref).is_file()
    target, _, anchor = ref.partition("#")
    page = source.parent / target
    if not page.exists():
        return False
    return not anchor or page.suffix != ".md" or anchor in slugs(page)


def broken(root: Path) -> list[str]:
    found = []
    for path in scanned(root):
        text = path.read_text(encoding="utf-8", errors="replace")
        for no, ref, kind in references(text, path.suffix == ".md"):
            if not resolves(root, path, ref, kind):
                found.append(f"{path.relative_to(root)}:{no}: {ref}")
    return sorted(found)


def test_every_repository_reference_resolves() -> None:
    assert broken(ROOT) == []


def test_a_broken_reference_is_named(tmp_path: Path) -> None:
    """The scan can fail: each kind of dangling reference is reported with file and line."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "terway").mkdir()
    (tmp_path / "README.md").write_text("See [ipam](docs/ipam.md) and docs/gone.md.\n")
    (tmp_path / "docs" / "ipam.md").write_text(
        "# IPAM\n\n## Time (`clock.py`)\n\n"
        "As FACTS §3 says; see [cli](cli.md#exit), terway/ipam/*.py,\n"
        "https://example.com/docs/remote.md and CONTRIBUTING.md.\n"
        "[here](ipam.md#time-clockpy), [there](ipam.md#timing).\n")
    (tmp_path / "terway" / "limits.py").write_text(
        '"""Upstream (ARCHITECTURE.md §6), docs/ipam.md, terway/limits.py."""\n')
    assert broken(tmp_path) == [
        "README.md:1: docs/gone.md",
        "docs/ipam.md:5: FACTS.md",
        "docs/ipam.md:5: cli.md#exit",
        "docs/ipam.md:6: CONTRIBUTING.md",
        "docs/ipam.md:7: ipam.md#timing",
        "terway/limits.py:1: ARCHITECTURE.md",
    ]
