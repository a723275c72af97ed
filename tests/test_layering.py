"""The layers of docs/ARCHITECTURE.md, read from the source (nothing is imported): bijectors/
imports nothing above it, no library module imports the application (cli/), data/ (but its
streaming module) needs no TensorFlow, no private name crosses a module boundary, and the
package never goes through the compatibility module bijectors/scales.py."""

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


def _is_module(module: str, name: str) -> bool:
    return (PACKAGE.parent / module.replace(".", "/") / f"{name}.py").is_file()


def test_no_private_name_crosses_a_module_boundary():
    # A private module (_files, _keras) is the package's own helper; a private name inside
    # another module is not to be borrowed: it becomes a public name of the lower module.
    crossing = [
        (_where(path), module, name)
        for path in sorted(PACKAGE.rglob("*.py"))
        for module, names in _imports(path)
        for name in names
        if name.startswith("_") and not name.startswith("__") and not _is_module(module, name)
    ]
    assert crossing == []


def test_no_library_module_imports_the_application():
    library = [p for p in sorted(PACKAGE.rglob("*.py")) if PACKAGE / "cli" not in p.parents]
    upward = [
        (_where(path), module)
        for path in library
        for module, names in _imports(path)
        if module.startswith("tfp_realnvp.cli") or (module == "tfp_realnvp" and "cli" in names)
    ]
    assert library and upward == []


def test_data_io_needs_no_tensorflow_but_for_streaming():
    # The command line reads and checks its inputs with data/ before TensorFlow starts.
    heavy = {"tensorflow", "tensorflow_probability", "keras", "tf_keras"}
    found = []
    for path in sorted((PACKAGE / "data").glob("*.py")):
        if path.name == "streaming.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [
                    (_where(path), a.name) for a in node.names if a.name.split(".")[0] in heavy
                ]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                top = node.module.split(".")[0]
                ours = node.module.startswith(("tfp_realnvp.data", "tfp_realnvp._extras"))
                if top in heavy or (top == "tfp_realnvp" and not ours):
                    found.append((_where(path), node.module))
    assert found == []


def test_the_package_never_imports_the_scales_compatibility_module():
    users = [
        _where(path)
        for path in sorted(PACKAGE.rglob("*.py"))
        for module, names in _imports(path)
        if module == "tfp_realnvp.bijectors.scales"
        or (module == "tfp_realnvp.bijectors" and "scales" in names)
    ]
    assert users == []
