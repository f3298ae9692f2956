"""The README documents every configuration variable the settings read, and no other."""

from __future__ import annotations

import re
from pathlib import Path

from thinkmeter.settings import ENVIRONMENT_VARIABLES

README = Path(__file__).resolve().parent.parent / "README.md"


def test_configuration_table_matches_settings() -> None:
    text = README.read_text()
    table = text.split("<!-- environment-variables:start -->", 1)[1].split("<!-- environment-variables:end -->", 1)[0]
    documented = re.findall(r"^\| `([A-Z0-9_]+)` \|", table, flags=re.MULTILINE)
    assert len(documented) == len(set(documented))
    assert set(documented) == set(ENVIRONMENT_VARIABLES), {
        "missing from README": sorted(set(ENVIRONMENT_VARIABLES) - set(documented)),
        "not read by settings": sorted(set(documented) - set(ENVIRONMENT_VARIABLES)),
    }


def test_two_commands_come_first() -> None:
    text = README.read_text()
    first_block = text.split("```", 2)[1]
    assert "make run" in first_block and "make test" in first_block
    assert "http://127.0.0.1:8000" in first_block
