#!/usr/bin/env bash
# Mutation testing of one module against the tests that claim to cover it (mutmut 3.8):
#
#   tools/mutation.sh tfp_realnvp/cli/screening.py tests/cli/test_screening.py [more tests...]
#
# MUTATION_MARKS selects tests by marker (default "not slow": the end-to-end runs start
# subprocesses, too slow to repeat per mutant). MUTATION_DESELECT names tests (space-separated
# node ids) left out of the run: only tests that mutmut's instrument itself breaks (a test that
# checks which frame a warning points at sees mutmut's wrapper there); docs/MUTATION.md says
# which and why. MUTATION_NAMES (below) reruns chosen mutants only.
#
# Runs in a scratch clone of the committed HEAD (mutmut writes a mutants/ tree, copying the
# package, the tests and the files tests read), with the checkout's .venv (`make install`
# first); installs mutmut 3.8.1 there if it is missing.
# mutmut forks a worker per mutant: the fork server keeps TensorFlow's threads out of the
# parent (process_isolation = "forkserver"). Prints the counts and every surviving mutant with
# its diff; docs/MUTATION.md records the results. Not part of `make test`: it is slow.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 MODULE.py TEST_FILE..." >&2; exit 2; }
checkout="$(cd "$(dirname "$0")/.." && pwd)"
python="$checkout/.venv/bin/python"
[ -x "$python" ] || { echo "$0: no $checkout/.venv: run make install first" >&2; exit 2; }
"$python" -c "import mutmut" 2>/dev/null || "$python" -m pip install --quiet "mutmut==3.8.1"
module="$1"
shift
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
git clone --quiet "$checkout" "$scratch/repo"
cd "$scratch/repo"
# mutmut wraps each mutated method in a trampoline taking (*args, **kwargs); Keras reads the
# signatures of a layer's or model's __init__, call and build, and fails on that wrapper. Those
# methods of Keras classes are left whole (their own logic is a line or two: weights the tests
# read anyway); the classes' other methods are mutated.
"$python" - "$module" <<'PY'
import ast, re, sys
path = sys.argv[1]
lines = open(path).read().split("\n")
keras_class = re.compile(r"keras\.(layers\.Layer|Model)$")
for node in ast.walk(ast.parse("\n".join(lines))):
    if isinstance(node, ast.ClassDef) and any(keras_class.search(ast.unparse(b)) for b in node.bases):
        for method in node.body:
            if isinstance(method, ast.FunctionDef) and method.name in ("__init__", "call", "build"):
                end = method.body[0].lineno - 2  # the header's last line: it ends with ":"
                while not lines[end].split("#")[0].rstrip().endswith(":"):
                    end -= 1
                lines[end] = lines[end].split("#")[0].rstrip() + "  # pragma: no mutate block"
open(path, "w").write("\n".join(lines))
PY
tests="$(printf '"%s", ' "$@")"
deselect=""
for node in ${MUTATION_DESELECT:-}; do deselect="$deselect, \"--deselect\", \"$node\""; done
cat >> pyproject.toml <<TOML

[tool.mutmut]
source_paths = ["tfp_realnvp"]
also_copy = ["benchmarks", "examples", "README.md", "docs"]
only_mutate = ["$module"]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:xdist", "-m", "${MUTATION_MARKS:-not slow}"$deselect]
pytest_add_cli_args_test_selection = [${tests%, }]
process_isolation = "forkserver"
TOML
export TF_CPP_MIN_LOG_LEVEL=3
# The fork server collects the tests before it forks. A test file that makes a tensor when it is
# imported starts TensorFlow's thread pools there, and every forked worker then waits forever in
# its first tf.function (sleeping: mutmut's CPU-time limit never ends it). Refuse such files.
"$python" - "$@" > /dev/null <<'PY'
import sys
import pytest
from tensorflow.python.eager import context
pytest.main(["-q", "--collect-only", "-p", "no:cacheprovider", *sys.argv[1:]], plugins=[])
if context.context()._context_handle is not None:
    sys.exit(f"{sys.argv[1:]}: collecting these tests starts TensorFlow (a tensor made at "
             "import); mutmut's forked workers would hang. Make it in the test instead.")
PY
# MUTATION_NAMES (space-separated) runs only those mutants, e.g. an earlier run's survivors once
# the tests they asked for exist; the rest then count as "not checked" in the summary.
# shellcheck disable=SC2086
"$checkout/.venv/bin/mutmut" run --max-children 2 ${MUTATION_NAMES:-} > mutmut.log 2>&1 \
    || { tail -c 3000 mutmut.log; exit 1; }
results="$("$checkout/.venv/bin/mutmut" results --all true 2>/dev/null || "$checkout/.venv/bin/mutmut" results)"
total="$(grep -c ": " <<< "$results" || true)"
killed="$(grep -c ": killed" <<< "$results" || true)"
# Mutants left out by MUTATION_NAMES ("not checked") are counted but not listed one by one.
survived="$(grep -v -e ": killed" -e ": not checked" <<< "$results" | grep ": " || true)"
rest="$(grep -vc ": killed" <<< "$results" || true)"
echo "$module: $total mutants, $killed killed ($((100 * killed / total))%), $rest not:"
while read -r name status; do
    [ -n "$name" ] || continue
    echo "== ${name%:} ($status)"
    "$checkout/.venv/bin/mutmut" show "${name%:}" | grep '^[-+] ' || true
done <<< "$survived"
