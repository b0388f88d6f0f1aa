"""Public home of the package's exceptions (defined in :mod:`electromicro_dask.core.errors`)."""

from .core.errors import ConvergenceError, InputError, StoreError

__all__ = ["InputError", "StoreError", "ConvergenceError"]
