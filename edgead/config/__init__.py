"""Configuration: defaults (frozen dataclasses) <- file <- CLI ``--set``; validated once, units in key names."""
from edgead.config.loader import from_dict, load_yaml, merge_overrides, parse_listen, parse_set

__all__ = ["from_dict", "load_yaml", "merge_overrides", "parse_listen", "parse_set"]
