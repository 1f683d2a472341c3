"""The layer rule of the design: cli > shim > daemon > engine > bridge > remote > auth >
store > config/paths, imports pointing down only; and the demo authorization server, a
peer the client is tested against, shares no code with the client (the CLI starts it as
a process), so a bug the two shared could not hide itself.

Read from the source with ast: every import counts, those under TYPE_CHECKING too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mcp_bridge

PACKAGE_DIR = Path(mcp_bridge.__file__).parent

# Top-level packages and modules by layer, highest first. The foundation row is the
# config/paths layer: plain modules every layer may use, which import only each other.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"__main__", "cli", "hosts", "bundle"}),
    frozenset({"shim"}),
    frozenset({"daemon"}),
    frozenset({"engine"}),
    frozenset({"bridge"}),
    frozenset({"remote"}),
    frozenset({"auth"}),
    frozenset({"store"}),
    frozenset(
        {
            "__init__",
            "atomic_file",
            "errors",
            "http_client",
            "jsonrpc",
            "paths",
            "process_lock",
            "process_stdio",
            "protocol",
            "server_config",
            "server_log",
        }
    ),
)
ISLAND = "demo"
RANK = {name: len(LAYERS) - index for index, row in enumerate(LAYERS) for name in row}


def _top_level(path: Path) -> str:
    return path.relative_to(PACKAGE_DIR).with_suffix("").parts[0]


def _part_named(name: str) -> str:
    """The package's part `from mcp_bridge import name` reads: a module, or __init__."""
    is_part = (PACKAGE_DIR / name).is_dir() or (PACKAGE_DIR / f"{name}.py").is_file()
    return name if is_part else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level part of mcp_bridge) for each absolute import of the package."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "mcp_bridge":  # `from mcp_bridge import errors, __version__`
                names = [f"mcp_bridge.{_part_named(alias.name)}" for alias in node.names]
        else:
            continue
        found += [(node.lineno, n.split(".")[1]) for n in names if n.startswith("mcp_bridge.")]
    return found


def _sources() -> list[Path]:
    return sorted(
        path
        for path in PACKAGE_DIR.rglob("*.py")
        if "service_templates" not in path.relative_to(PACKAGE_DIR).parts
    )


def test_every_top_level_part_has_a_layer() -> None:
    unplaced = {_top_level(path) for path in _sources()} - RANK.keys() - {ISLAND}
    assert not unplaced, f"add {sorted(unplaced)} to a row of LAYERS"


def test_imports_point_down_only() -> None:
    upward = [
        f"{path.relative_to(PACKAGE_DIR.parent)}:{line} imports {target} "
        f"(layer {RANK[target]} above {RANK[source]})"
        for path in _sources()
        if (source := _top_level(path)) != ISLAND
        for line, target in _imports(path)
        if target != ISLAND and RANK[target] > RANK[source]
    ]
    assert not upward, "\n".join(upward)


def test_the_demo_server_and_the_client_share_no_code() -> None:
    crossings = [
        f"{path.relative_to(PACKAGE_DIR.parent)}:{line} imports {target}"
        for path in _sources()
        for line, target in _imports(path)
        if (_top_level(path) == ISLAND) != (target == ISLAND)
    ]
    assert not crossings, "\n".join(crossings)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The rule above is only as good as `_imports`: it must find the kinds of import
    the code uses, a TYPE_CHECKING one included."""
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import mcp_bridge.engine.registry\n"
        "from mcp_bridge import cli, __version__\n"
        "if TYPE_CHECKING:\n"
        "    from mcp_bridge.daemon.server import Daemon\n"
        "from . import sibling\n",
        encoding="utf-8",
    )
    assert _imports(source) == [(2, "engine"), (3, "cli"), (3, "__init__"), (5, "daemon")]
