"""bijectors/ imports nothing above it (precision.py reaches down, never the reverse), no private
name crosses into or out of it, and the package never goes through the compatibility module
bijectors/scales.py. Read from the source: nothing is imported."""

import ast
import pathlib

import tfp_realnvp

PACKAGE = pathlib.Path(tfp_realnvp.__file__).parent
BIJECTORS = PACKAGE / "bijectors"
BELOW = {"tfp_realnvp._keras", "tfp_realnvp._checks"}  # what bijectors/ may use outside itself


def _imports(path: pathlib.Path):
    """``(module, names)`` of every absolute import of tfp_realnvp in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [(node.module, [a.name for a in node.names])]
        elif isinstance(node, ast.Import):
            modules = [(a.name, []) for a in node.names]
        else:
            continue
        yield from ((m, n) for m, n in modules if m.split(".")[0] == "tfp_realnvp")


def _where(path: pathlib.Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def test_bijectors_import_only_themselves_and_the_layers_below():
    upward = [
        (_where(path), module)
        for path in sorted(BIJECTORS.glob("*.py"))
        for module, _ in _imports(path)
        if not module.startswith("tfp_realnvp.bijectors") and module not in BELOW
    ]
    assert upward == []


def test_no_private_name_crosses_into_or_out_of_bijectors():
    crossing = [
        (_where(path), module, name)
        for path in sorted(PACKAGE.rglob("*.py"))
        for module, names in _imports(path)
        for name in names
        if name.startswith("_")
        and (path.parent == BIJECTORS or module.startswith("tfp_realnvp.bijectors"))
    ]
    assert crossing == []


def test_the_package_never_imports_the_scales_compatibility_module():
    users = [
        _where(path)
        for path in sorted(PACKAGE.rglob("*.py"))
        for module, names in _imports(path)
        if module == "tfp_realnvp.bijectors.scales"
        or (module == "tfp_realnvp.bijectors" and "scales" in names)
    ]
    assert users == []
