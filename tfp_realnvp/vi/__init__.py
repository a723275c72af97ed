"""Variational inference with flows: reverse-KL fitting (`VIModel`, `fit_vi`), diagnostics
(`diagnose`: ELBO, importance-sampled log Z, ESS, PSIS Pareto-k), NeuTra (`neutra_kernel`,
`sample_neutra`) and test targets (`tfp_realnvp.vi.targets`)."""

from tfp_realnvp.vi import targets
from tfp_realnvp.vi.diagnostics import VIDiagnostics, diagnose, pareto_k
from tfp_realnvp.vi.neutra import neutra_kernel, sample_neutra
from tfp_realnvp.vi.objective import as_distribution, log_weights, objective
from tfp_realnvp.vi.trainer import VIModel, fit_vi

__all__ = [
    "VIDiagnostics",
    "VIModel",
    "as_distribution",
    "diagnose",
    "fit_vi",
    "log_weights",
    "neutra_kernel",
    "objective",
    "pareto_k",
    "sample_neutra",
    "targets",
]
