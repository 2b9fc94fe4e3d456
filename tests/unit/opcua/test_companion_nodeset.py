"""The vendored OPC 40100 NodeSet is the file its provenance names, with its licence, and ships in the package."""
from __future__ import annotations

import gzip
import hashlib
import re

from edgead.opcua.companion import NAMESPACE, NODESET


def test_the_vendored_nodeset_is_the_one_its_provenance_names():
    xml = gzip.decompress(NODESET.read_bytes())
    provenance = (NODESET.parent / "PROVENANCE.md").read_text()
    stated = re.search(r"SHA-256 of the uncompressed XML: `([0-9a-f]{64})`", provenance).group(1)
    assert hashlib.sha256(xml).hexdigest() == stated
    assert f'<Model ModelUri="{NAMESPACE}" Version="1.0.0"'.encode() in xml
    assert b"OPC Foundation MIT License 1.00" in xml[:2000]
    assert "OPC Foundation MIT License 1.00" in (NODESET.parent / "LICENSE.txt").read_text()


def test_setup_ships_the_nodeset_with_the_package():
    from pathlib import Path

    setup = (Path(__file__).parents[3] / "setup.py").read_text()
    assert '"edgead.opcua": ["nodesets/*.xml.gz", "nodesets/*.txt", "nodesets/*.md"]' in setup
