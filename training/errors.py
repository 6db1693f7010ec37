"""training's domain errors (runtime.cli's table: bad input exits 2, a failure 1, with the message).

Kept free of torch so `python -m training --help` and argument errors stay instant.
"""

from runtime.cli import BadInput, Failed


class DataError(BadInput):
    """The dataset cannot be trained on as configured (the message says why)."""


class WeightsError(BadInput):
    """The weights asked for cannot be found or do not fit the backbone (the message says why)."""


class ConfigError(BadInput):
    """A config value or combination that cannot be trained (the message says which and why)."""


class ExportError(Failed):
    """The bundle could not be made as asked (ONNX/torch parity, size budget, diverging DDP ranks)."""
