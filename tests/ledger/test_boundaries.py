import ast
from pathlib import Path

LEDGER = Path(__file__).resolve().parents[2] / "ledger"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_ledger_never_imports_the_planner():
    for path in LEDGER.rglob("*.py"):
        for module in imported_modules(path):
            assert not module.startswith("planner"), f"{path.relative_to(LEDGER.parent)} imports {module}"
