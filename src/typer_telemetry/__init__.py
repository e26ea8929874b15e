"""Anonymous, privacy-first usage telemetry for Typer command-line tools.

from typer_telemetry import Telemetry

telemetry = Telemetry("mytool", version="1.4.0", endpoint="https://t.example.com/v1")
telemetry.instrument(app)
"""

from ._config import ConfigUnwritable
from ._consent import Decision
from ._schema import SCHEMA_VERSION, SchemaError
from ._telemetry import Telemetry
from ._version import __version__

__all__ = [
    "SCHEMA_VERSION",
    "ConfigUnwritable",
    "Decision",
    "SchemaError",
    "Telemetry",
    "__version__",
]
