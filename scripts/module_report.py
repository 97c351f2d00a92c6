"""The largest modules of `reminders/` and its package import graph, at a git revision.

    .venv/bin/python scripts/module_report.py             # the working tree
    .venv/bin/python scripts/module_report.py main        # any git revision
    .venv/bin/python scripts/module_report.py REV --top 20

A unit of the graph is a top-level module or package of `reminders` (`reminders.store`,
`reminders.schedule`): an edge `api -> store` means some file of `reminders/api/` imports from
`reminders.store`. Cycles between units are listed with the import that makes each edge.
tests/test_layering.py reads imports through the same functions.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "reminders"


@dataclass(frozen=True)
class Site:
    """Where one import stands: file (relative to the repository) and line."""

    path: str
    line: int
    imported: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.imported}"


def module_name(path: str) -> tuple[str, bool]:
    """The dotted module a file defines, and whether it is a package's `__init__`."""
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def unit_of(path: str) -> str | None:
    """The top-level unit (`store`, `schedule`) a file of the package belongs to."""
    parts = path.removesuffix(".py").split("/")
    if len(parts) < 2 or parts[0] != PACKAGE or parts[1] == "__init__":
        return None
    return parts[1]


def imports_of(source: str, path: str) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in one file, relative ones resolved."""
    module, is_package = module_name(path)
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                names = package.split(".")
                base = names[: len(names) - node.level + 1]
                found.append((node.lineno, ".".join([*base, *filter(None, [node.module])])))
            else:
                found.append((node.lineno, node.module or ""))
    return found


def is_checked(path: str) -> bool:
    """Package files whose imports count: Python under reminders/, Alembic's scripts aside."""
    return path.startswith(f"{PACKAGE}/") and path.endswith(".py") and "/migrations/" not in path


Graph = dict[str, dict[str, list[Site]]]


def package_graph(sources: Mapping[str, str]) -> Graph:
    """unit -> unit it imports -> the imports that make the edge (no edge from a unit to
    itself)."""
    graph: Graph = {}
    for path, source in sorted(sources.items()):
        own = unit_of(path)
        if own is None or not is_checked(path):
            continue
        graph.setdefault(own, {})
        for line, imported in imports_of(source, path):
            names = imported.split(".")
            if names[0] != PACKAGE or len(names) < 2 or names[1] == own:
                continue
            graph[own].setdefault(names[1], []).append(Site(path, line, imported))
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The groups of units that import each other, directly or round a loop (strongly
    connected components of more than one unit), each sorted, in name order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(unit: str) -> None:
        index[unit] = low[unit] = len(index)
        stack.append(unit)
        on_stack.add(unit)
        for target in graph.get(unit, ()):
            if target not in index:
                visit(target)
                low[unit] = min(low[unit], low[target])
            elif target in on_stack:
                low[unit] = min(low[unit], index[target])
        if low[unit] == index[unit]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == unit:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for unit in sorted(graph):
        if unit not in index:
            visit(unit)
    return sorted(found)


def _git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=ROOT, check=True, capture_output=True).stdout


def sources_at(revision: str | None) -> dict[str, str]:
    """Every Python file under reminders/ (path -> text): at a git revision, or on disk."""
    if revision is None:
        return {
            path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted((ROOT / PACKAGE).rglob("*.py"))
        }
    listed = _git("ls-tree", "-r", "--name-only", revision, "--", PACKAGE).decode()
    paths = [p for p in listed.splitlines() if p.endswith(".py")]
    batch = "".join(f"{revision}:{p}\n" for p in paths).encode()
    out = subprocess.run(
        ["git", "cat-file", "--batch"], cwd=ROOT, input=batch, check=True, capture_output=True
    ).stdout
    sources, at = {}, 0
    for path in paths:
        header_end = out.index(b"\n", at)
        size = int(out[at:header_end].split()[2])
        sources[path] = out[header_end + 1 : header_end + 1 + size].decode("utf-8")
        at = header_end + 1 + size + 1
    return sources


def line_count(source: str) -> int:
    return len(source.splitlines())


def report(sources: Mapping[str, str], title: str, top: int = 15) -> str:
    """The printed report: size, the largest modules, the graph and its cycles."""
    sizes = sorted(((line_count(s), p) for p, s in sources.items()), key=lambda t: (-t[0], t[1]))
    graph = package_graph(sources)
    edges = sum(len(targets) for targets in graph.values())
    out = [
        title,
        f"{len(sources)} Python files, {sum(n for n, _ in sizes):,} lines",
        "",
        f"Largest modules (lines), top {top}:",
        *(f"  {n:5d}  {path}" for n, path in sizes[:top]),
        f"  modules over 400 lines: {sum(1 for n, _ in sizes if n > 400)}",
        "",
        f"Package import graph: {len(graph)} units, {edges} edges (reminders.X -> reminders.Y)",
        *(
            f"  {unit} -> {', '.join(sorted(targets)) or '(nothing)'}"
            for unit, targets in sorted(graph.items())
        ),
        "",
    ]
    found = cycles({unit: targets.keys() for unit, targets in graph.items()})
    if not found:
        out.append("Cycles: none")
    for group in found:
        out.append(f"CYCLE: {' <-> '.join(group)}")
        for unit in group:
            for target in sorted(set(graph[unit]) & set(group)):
                out.append(f"  {unit} -> {target}: {graph[unit][target][0]}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", nargs="?", help="a git revision (default: the working tree)")
    parser.add_argument("--top", type=int, default=15, help="how many of the largest modules")
    args = parser.parse_args(argv)
    if args.revision is None:
        title = "reminders/ in the working tree"
    else:
        described = _git("log", "-1", "--format=%h %cI %s", args.revision).decode().strip()
        title = f"reminders/ at {described[:90]}"
    print(report(sources_at(args.revision), title, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
