"""What a pipeline is made of: stages that read store variables and write one result.

A pipeline module in this package defines

- ``PARAMETERS``: ``{name: default}``; a recipe may override any of them, with a value
  of the default's type (``None`` defaults accept anything);
- ``stages(params) -> list[Stage]``: the stages in execution order;
- optionally ``validate(params)``: extra checks (phase names, ranges) raising InputError;
- optionally ``summarize(store, params) -> (summary: dict, figures: dict, tables: dict)``
  for the run's report.

The runner (:mod:`electromicro_dask.runner`) executes them: every stage's result is
saved with a provenance hash of (its inputs' hashes, its function, its parameters, the
package version), and a stage whose hash already stands in the store is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Stage", "check_groups"]


@dataclass(frozen=True)
class Stage:
    """One step of a pipeline.

    Parameters
    ----------
    name : str
        Name of the variable (or table) written to the store.
    func : callable
        Called as ``func(*inputs, **params)``, the inputs positionally in the order of
        ``inputs``; returns a DataArray (saved as a
        variable), a Dataset (each of ``outputs`` saved as a variable), or a
        DataFrame / Series / dict (saved as a table).
    inputs : tuple of str
        Store variables or tables the stage reads, passed positionally in this order.
    params : dict
        Keyword parameters; part of the provenance hash.
    outputs : tuple of str, optional
        For a Dataset result: the variables to save (default ``(name,)``).
    """

    name: str
    func: Callable
    inputs: tuple = ()
    params: dict = field(default_factory=dict)
    outputs: tuple = ()

    @property
    def written(self):
        return tuple(self.outputs) or (self.name,)


def check_groups(groups, argument, keys, what="entries"):
    """Validate a recipe's named groups (samples, electrodes, cells): a non-empty mapping
    of names usable as variable prefixes to settings among ``keys``."""
    from ..core.errors import InputError

    if not isinstance(groups, dict) or not groups:
        raise InputError(argument, f"{what} by name, got {groups!r}")
    for name, cfg in groups.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise InputError(argument, f"names usable as variable prefixes, got {name!r}")
        unknown = set(cfg or {}) - set(keys)
        if unknown:
            raise InputError(f"{argument}.{name}", f"keys among {tuple(keys)}, got "
                             f"{sorted(unknown)}")
