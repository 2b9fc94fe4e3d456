"""docs/plant-integration.md: its generated tables match the code's tables."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgead import plant_docs
from edgead.opcua.address_space import VARIABLES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "plant-integration.md"


def test_generated_blocks_are_current():
    text = PAGE.read_text()
    assert plant_docs.render(text) == text, "docs/plant-integration.md is out of date: run `make docs`"


def test_the_tables_come_from_the_code():
    text = PAGE.read_text()
    assert all(f"`VisionSystem.{v.path}`" in text for v in VARIABLES)
    assert "| `verdict_register` | holding register | 0 | 40001 |" in text
    assert "| `message_id` | string | yes |" in text


def test_a_missing_block_is_named():
    with pytest.raises(ValueError, match="register-map"):
        plant_docs.render("no blocks here")
