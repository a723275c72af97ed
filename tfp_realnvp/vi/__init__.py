"""Variational inference with flows: reverse-KL fitting (`VIModel`, `fit_vi`, annealed by
`Annealing`; `fit_vi`'s restarts in `tfp_realnvp.vi.restarts`), diagnostics (`diagnose`:
ELBO, importance-sampled log Z, ESS, PSIS Pareto-k; `check_fit`, which warns with
`VIFitWarning`), NeuTra (`neutra_kernel`, `sample_neutra`) and test targets
(`tfp_realnvp.vi.targets`)."""

from tfp_realnvp.vi import targets
from tfp_realnvp.vi.annealing import Annealing
from tfp_realnvp.vi.diagnostics import VIDiagnostics, VIFitWarning, check_fit, diagnose, pareto_k
from tfp_realnvp.vi.neutra import neutra_kernel, sample_neutra
from tfp_realnvp.vi.objective import as_distribution, log_weights, objective
from tfp_realnvp.vi.trainer import VIModel, fit_vi

__all__ = [
    "Annealing",
    "VIDiagnostics",
    "VIFitWarning",
    "VIModel",
    "as_distribution",
    "check_fit",
    "diagnose",
    "fit_vi",
    "log_weights",
    "neutra_kernel",
    "objective",
    "pareto_k",
    "sample_neutra",
    "targets",
]
