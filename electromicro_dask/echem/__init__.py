"""Microstructure-resolved half-cell electrochemistry on segmented cathodes.

A Newman-type model (Doyle, Fuller & Newman 1993) solved on the voxels of a segmentation, as
seed 001 ("Modeling methodology") and seed 002 (section 4) do with COMSOL and BEST: salt
concentration and potential in the electrolyte (pores, cracks, the CBD's inner porosity),
solid potential in AM and CBD, lithium in the AM, Butler-Volmer kinetics on every reactive
face (with an optional CEI film in series), a lithium-metal counter electrode and
galvanostatic control. It runs in torch, float64, on CUDA when available (one simulation per
GPU); :func:`~electromicro_dask.transport.sweep` spreads many runs over a cluster.
"""

from .discharge import DischargeResult, discharge, one_c_current
from .fitting import (FilmCalibration, GammaFit, calibrate_film_resistivity, curve_distance,
                      fit_gamma, mean_voltage_penalty)
from .impedance import ImpedanceResult, impedance
from .parameters import Parameters, chen2020, from_pybamm, nmc811_seed001, thickness_similar
from .scenarios import SEED001_SCENARIOS, Scenario, scenario

__all__ = ["discharge", "DischargeResult", "one_c_current", "Parameters", "chen2020",
           "nmc811_seed001", "from_pybamm", "thickness_similar", "Scenario", "scenario",
           "SEED001_SCENARIOS", "impedance", "ImpedanceResult", "fit_gamma", "GammaFit",
           "calibrate_film_resistivity", "FilmCalibration", "mean_voltage_penalty",
           "curve_distance"]
