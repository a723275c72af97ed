"""The package as installed: what it imports, what it declares, the files it ships, its version.

`make test` runs these against the installed wheel as well (see the Makefile), where they check
the wheel's own metadata and files.
"""

import json
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import tfp_realnvp

pytestmark = pytest.mark.installed  # the wheel as installed: run on it alone

CHECKOUT = Path(__file__).resolve().parents[1]

IMPORTS = textwrap.dedent(
    """
    import importlib, importlib.util, json, os, pkgutil, sys

    # A core-only install, simulated: importing any other distribution's modules fails.
    blocked, attempted, ours = set(json.loads(sys.argv[1])), set(), set()
    package = os.path.dirname(importlib.util.find_spec("tfp_realnvp").origin)

    class Uninstalled:
        def find_spec(self, name, path=None, target=None):
            top = name.partition(".")[0]
            if top in blocked:
                attempted.add(top)
                frame = sys._getframe(1)  # the importer: the first frame outside importlib
                while "importlib" in frame.f_code.co_filename:
                    frame = frame.f_back
                if frame.f_code.co_filename.startswith(package):
                    ours.add(top)
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, Uninstalled())
    import tfp_realnvp as trn
    report = {"bare import": sorted(attempted), "loads TensorFlow": "tensorflow" in sys.modules}

    def registered():
        from tfp_realnvp._keras import keras
        from tfp_realnvp.bijectors.base import registered_bijectors

        return sorted(keras.saving.get_custom_objects()) + sorted(registered_bijectors())

    trn.saving.register_all()  # what load_model imports
    report["registered by load_model"] = registered()
    for name in ("real_nvp", "multiscale_real_nvp", "FlowModel", "export_saved_model",
                 "export_tflite", "testing"):
        getattr(trn, name)
    import tfp_realnvp.cli
    report["extras imported by tfp_realnvp"] = sorted(ours)
    report["refused"] = refused = {}
    for info in pkgutil.walk_packages(trn.__path__, "tfp_realnvp."):
        try:
            importlib.import_module(info.name)
        except ImportError as e:
            refused[info.name] = str(e)
    report["registered by every module"] = registered()
    try:
        trn.data.make_dataset("digits")
    except ImportError as e:
        refused["digits"] = str(e)
    print(json.dumps(report))
    """
)
# What a fresh virtual environment has before anything is installed into it.
BOOTSTRAP = {"pip", "setuptools"}


def _closure(name: str, extras: tuple[str, ...] = ()) -> set[str]:
    """The installed distributions that ``pip install name[extras]`` brings, by their
    Requires-Dist (environment markers evaluated here)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(canonicalize_name(name), frozenset(extras))]
    while todo:
        dist, wanted = todo.pop()
        if (dist, wanted) in seen:
            continue
        seen.add((dist, wanted))
        for line in metadata.requires(dist) or []:
            req = Requirement(line)
            envs = [{"extra": e} for e in ("", *wanted)]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return {dist for dist, _ in seen}


@pytest.fixture(scope="module")
def core_only() -> dict:
    """What importing the package does in a fresh process that sees only the distributions
    the wheel's Requires-Dist brings (the others are present here, but fail to import)."""
    keep = _closure("tfp_realnvp") | BOOTSTRAP
    blocked = sorted(
        module
        for module, owners in metadata.packages_distributions().items()
        if module != "tfp_realnvp" and not keep & {canonicalize_name(d) for d in owners}
    )
    assert {"matplotlib", "sklearn", "pytest"} <= set(blocked)
    run = subprocess.run(
        [sys.executable, "-c", IMPORTS, json.dumps(blocked)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]  # an import the core does not provide
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_import_is_lean(core_only):
    assert core_only["bare import"] == [] and not core_only["loads TensorFlow"]
    # The builders, the model, both exports, the kit and the command line's module do not try
    # to import an extra. (Keras 3 itself tries both, and does without them when they fail.)
    assert core_only["extras imported by tfp_realnvp"] == []


def test_load_model_registers_every_class_a_saved_model_can_hold(core_only):
    # Keras finds a saved class only once its module is imported, and the package's import is
    # lazy: load_model must import every module that registers one.
    assert core_only["registered by load_model"] == core_only["registered by every module"]
    assert "tfp_realnvp>MADE" in core_only["registered by load_model"]


def test_the_core_dependencies_suffice_but_for_the_cli_extras_modules(core_only):
    message = 'which is not installed: pip install "tfp_realnvp[cli]"'
    refused = core_only["refused"]
    # The command line's training runs draw pictures; everything else works on the core.
    training = {"tfp_realnvp.cli.run", "tfp_realnvp.cli.sharded_run"}
    assert set(refused) == {"tfp_realnvp.cli.plots", *training, "digits"}, refused
    assert all(message in text for text in refused.values()), refused
    assert "tfp_realnvp.cli.plots needs matplotlib" in refused["tfp_realnvp.cli.plots"]
    assert 'the dataset "digits" needs scikit-learn' in refused["digits"]


def test_the_cli_extra_brings_what_it_names():
    core, with_cli = _closure("tfp_realnvp"), _closure("tfp_realnvp", ("cli",))
    assert {"matplotlib", "scikit-learn"} <= with_cli - core
    assert _closure("tfp_realnvp", ("all",)) >= with_cli
    assert _closure("tfp_realnvp", ("dev",)) >= with_cli


def test_installed_files_and_version():
    installed = Path(tfp_realnvp.__file__).parent
    source = CHECKOUT / "tfp_realnvp"

    def files(root: Path) -> set[str]:
        return {
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.suffix == ".py" or p.name == "py.typed"
        }

    assert "py.typed" in files(installed)
    assert files(installed) == files(source)  # one and the same directory outside `make test`
    assert metadata.version("tfp_realnvp") == tfp_realnvp.__version__
    scripts = {e.name: e.value for e in metadata.entry_points(group="console_scripts")}
    assert scripts["tfp-realnvp"] == "tfp_realnvp.cli:main"
