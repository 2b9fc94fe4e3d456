"""``edgead demo``: the product's main job on embedded defaults, end to end, on a fresh machine.

1. a synthetic station (misaligned captures of a machined bracket, four defect types, ground truth);
2. the training set aligned to the reference with the station's own aligner;
3. PatchCore trained on the good parts (real ImageNet EfficientNet-Lite0 features);
4. converted to INT8 (explicit Q/DQ) for ``x86-cpu``, through the accuracy gate;
5. the daemon, with a ``folder://`` camera replaying unseen misaligned parts and a virtual PLC on a serial pty
   pair speaking the ASCII protocol (``T<id>`` in, ``OK <id>`` / ``NG <id>`` out);
6. a summary: parts, confusion matrix against the ground truth, latency, where the records are.
"""
from edgead.demo.run import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
