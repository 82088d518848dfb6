"""The repository's map (docs/architecture.md) kept true: each part imports only what the
map says it may, and every path the README's newcomer guide names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVICES = sorted(p.name for p in (REPO / "services").iterdir() if (p / "pyproject.toml").is_file())
#: Our own top-level packages (an import of anything else is a third party's).
OURS = {"obskit", "contracts", "obslab", *SERVICES}
SHARED = {
    "obslab.repo",
    "obslab.topology",
    "obslab.errors",
    "obslab.shop",
    "obslab.prometheus",
    "obslab.slo",
}

#: Each part, the modules that make it, and what of ours it may import: the map's table.
PARTS: dict[str, tuple[list[Path], set[str]]] = {
    **{
        f"services/{name}": (
            [REPO / "services" / name / "src"],
            {"obskit", "contracts", name},
        )
        for name in SERVICES
    },
    "obskit": ([REPO / "libs" / "obskit" / "src"], {"obskit"}),
    "contracts": ([REPO / "libs" / "contracts" / "src"], {"contracts", "obskit"}),
    "obslab.native": (
        [REPO / "obslab" / "src" / "obslab" / "native"],
        {"obslab.native", "obslab.repo", "obslab.topology", "obslab.errors"},
    ),
    "obslab.telemetry": (
        [REPO / "obslab" / "src" / "obslab" / "telemetry"],
        {"obslab.telemetry"},
    ),
    "obslab.chaos": (
        [REPO / "obslab" / "src" / "obslab" / "chaos"],
        {"obslab.chaos", "obslab.native", "obslab.telemetry", *SHARED},
    ),
    "obslab.load": (
        [REPO / "obslab" / "src" / "obslab" / "load"],
        {"obslab.load", "obslab.native", "obslab.repo", "obslab.errors", "obslab.slo"},
    ),
    "obslab.labkit": (
        [REPO / "obslab" / "src" / "obslab" / "labkit"],
        {
            "obslab.labkit",
            "obslab.native",
            "obslab.chaos",
            "obslab.telemetry",
            *SHARED,
        },
    ),
    "obslab (shared modules)": (
        [REPO / "obslab" / "src" / "obslab" / f"{m.split('.')[1]}.py" for m in sorted(SHARED)],
        {"obslab.errors", "obslab.repo"},
    ),
    "labs": (
        [REPO / "labs"],
        {
            "obslab.labkit",
            "obslab.native",
            "obslab.chaos",
            "obslab.load",
            "obslab.telemetry",
            *SHARED,
        },
    ),
}


def _modules(paths: list[Path]) -> list[Path]:
    return sorted(f for p in paths for f in ([p] if p.is_file() else p.rglob("*.py")))


def _imports(path: Path) -> set[str]:
    """Every module of ours that ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] in OURS}
    return found


def _allowed(name: str, allowed: set[str]) -> bool:
    """``obslab.native.lab`` is allowed by ``obslab.native``; ``obslab`` alone by any."""
    return any(name == a or name.startswith(f"{a}.") for a in allowed) or name == "obslab"


@pytest.mark.parametrize("part", sorted(PARTS))
def test_each_part_imports_only_what_the_map_allows(part: str) -> None:
    """A module of each part imports of ours only what docs/architecture.md allows it."""
    paths, allowed = PARTS[part]
    modules = _modules(paths)
    assert modules, f"{part}: no modules at {paths}"
    wrong = {
        f"{m.relative_to(REPO)}: {name}"
        for m in modules
        for name in _imports(m)
        if not _allowed(name, allowed)
    }
    assert not wrong, sorted(wrong)


def test_nothing_imports_the_command_line() -> None:
    """obslab.cli is the top: no other part, lab, test helper or bench imports it."""
    everything = _modules([REPO / "obslab", REPO / "labs", REPO / "libs", REPO / "services"])
    cli = REPO / "obslab" / "src" / "obslab" / "cli"
    wrong = [
        str(m.relative_to(REPO))
        for m in everything
        if not m.is_relative_to(cli)
        and any(n == "obslab.cli" or n.startswith("obslab.cli.") for n in _imports(m))
    ]
    assert not wrong


def test_the_map_names_every_part_the_test_checks() -> None:
    """docs/architecture.md's table names each folder whose imports are checked here."""
    table = (REPO / "docs" / "architecture.md").read_text()
    for folder in (
        "services/<name>/",
        "libs/obskit/",
        "libs/contracts/",
        "obslab/src/obslab/native/",
        "obslab/src/obslab/telemetry/",
        "obslab/src/obslab/chaos/",
        "obslab/src/obslab/load/",
        "obslab/src/obslab/labkit/",
        "obslab/src/obslab/cli/",
        "labs/NN-name/",
    ):
        assert f"`{folder}`" in table, folder


def _guide() -> str:
    readme = (REPO / "README.md").read_text()
    return readme[readme.index("## The code\n") : readme.index("## Performance\n")]


def test_every_path_the_newcomer_guide_names_exists() -> None:
    """Each `path` in the README's "The code" section exists (a pattern, as labs/NN-*/, matches)."""
    paths = re.findall(r"`((?:[\w.<>*-]+/)+[\w.<>*-]*)`", _guide())
    assert len(paths) >= 8
    for path in paths:
        pattern = re.sub(r"<[^>]+>|NN", "*", path).rstrip("/")
        assert list(REPO.glob(pattern)), f"README names {path}, which is not there"


def test_every_lab_is_one_folder_with_a_readme_and_a_check() -> None:
    """Each labs/NN-name/ holds its README.md and check.py: to change lab N, open one folder."""
    folders = sorted(p for p in (REPO / "labs").iterdir() if re.match(r"\d\d-", p.name))
    assert folders
    for folder in folders:
        assert (folder / "README.md").is_file() and (folder / "check.py").is_file(), folder
