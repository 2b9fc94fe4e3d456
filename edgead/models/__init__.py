"""Anomaly models (build-host side, torch): the backbone, PatchCore, PaDiM, and the model table.

Importing this package does not import torch; ``edgead.models.registry.MODELS`` lists the models, and
``edgead.models.registry.build(name, input_hw, **params)`` makes one. The station runtime never imports it.
"""
from __future__ import annotations
