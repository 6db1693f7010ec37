"""training's domain errors: what the CLI reports as bad input (exit 2) with its message.

Kept free of torch so `python -m training --help` and argument errors stay instant.
"""


class DataError(ValueError):
    """The dataset cannot be trained on as configured (the message says why)."""


class WeightsError(RuntimeError):
    """The weights asked for cannot be found or do not fit the backbone (the message says why)."""
