"""Exceptions raised by electromicro_dask.

Every public function validates its input at the entry and raises one of these
with a message that names the offending argument and what was expected.
"""

__all__ = ["InputError", "StoreError", "ConvergenceError"]


class InputError(ValueError):
    """Bad input to a public function.

    The message names the argument and says what was expected, e.g.
    ``InputError("fractions: values must sum to 1, got 0.9")``.
    """

    def __init__(self, argument, expected):
        self.argument = argument
        self.expected = expected
        super().__init__(f"{argument}: {expected}")


class StoreError(RuntimeError):
    """A store could not be read or written as asked (nothing was changed)."""


class ConvergenceError(RuntimeError):
    """An iterative method stopped at its iteration limit without converging."""
