"""edgead: edge-deployment SDK for industrial visual-inspection stations.

The core install is the station (no torch). Extras add conversion, training,
TensorRT, GenICam cameras, fleets and the developer tools: edgead/extras.py. ``convert/`` and
``calibration/`` are installed as ``edgead.convert`` and ``edgead.calibration``.
"""
import re
import runpy
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "edgead" / "__init__.py").read_text()).group(1)

# The one install table (also read by edgead.errors.lazy_import for its hints); it imports only the stdlib.
CORE, EXTRAS = runpy.run_path(str(HERE / "edgead" / "extras.py"))["requirements"]()

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
                  "edgead.north": ["*.schema.json"], "edgead.ui": ["static/*"],
                  "edgead.opcua": ["nodesets/*.xml.gz", "nodesets/*.txt", "nodesets/*.md"],
                  "edgead.models.efficientad": ["teachers/*.npz", "teachers/*.json"]},
    include_package_data=True,
    install_requires=CORE,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["edgead=edgead.cli:main"]},
    classifiers=["Programming Language :: Python :: 3.10", "Programming Language :: Python :: 3.11"],
)
