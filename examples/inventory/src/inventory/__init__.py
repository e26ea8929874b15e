"""inventory: a stock list kept in a CSV file, with anonymous usage telemetry."""

__version__ = "0.3.0"
