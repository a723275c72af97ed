"""Prints ArviZ's PSIS Pareto-k for the log weights of tests/vi/test_diagnostics.py (ARVIZ), the
independent values that test holds `tfp_realnvp.vi.pareto_k` to. Needs ArviZ, which the package
does not: ``pip install arviz`` in a scratch environment, then run this file with its Python."""

import warnings

import arviz
import numpy as np

CASES = [
    ("pareto_0.8_n1000", 1000, lambda u: -0.8 * np.log1p(-u)),
    ("pareto_0.4_n4096", 4096, lambda u: -0.4 * np.log1p(-u)),
    ("pareto_1.3_n200", 200, lambda u: -1.3 * np.log1p(-u)),
    ("weibull_n500", 500, lambda u: np.sqrt(-np.log1p(-u))),
    ("bounded_n30", 30, lambda u: np.log(1 + u)),
]

if __name__ == "__main__":
    warnings.simplefilter("ignore")  # ArviZ's notice of its coming refactor
    print(f"arviz {arviz.__version__}")
    for name, n, f in CASES:
        log_weights = f((np.arange(n)[::-1] + 0.5) / n)  # mid-quantiles, largest first
        print(name, repr(float(arviz.psislw(log_weights)[1])))
