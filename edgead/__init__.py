"""edgead: train, convert and run visual anomaly detectors on inspection stations."""

__version__ = "0.1.0"
