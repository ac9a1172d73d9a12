"""Issue 12: one list of check ids; quality.levels keys are validated against it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from geopipe.errors import ConfigError
from geopipe.quality.checks import CHECK_IDS, validate_check_levels

ROOT = Path(__file__).resolve().parents[1]
ID = re.compile(r"[\"'](?P<id>(?:admin|points|raster|indicators)\.[a-z_0-9]+)[\"']")
NOT_CHECKS = {"points.duplicate", "admin.gapp"}  # a prefix; the typo in an example


def test_registry_equals_the_ids_in_the_source_and_the_docs():
    found = set()
    for path in (ROOT / "src" / "geopipe" / "quality").glob("*.py"):
        found |= {m.group("id") for m in ID.finditer(path.read_text(encoding="utf-8"))}
    found -= NOT_CHECKS
    assert found == set(CHECK_IDS)
    assert len(CHECK_IDS) == len(set(CHECK_IDS))
    # one list only: any other name for it must be the same list
    from geopipe.quality import checks

    for other in ("KNOWN_CHECK_IDS",):
        if hasattr(checks, other):
            assert set(getattr(checks, other)) == set(CHECK_IDS), other
    docs = (ROOT / "docs" / "quality.md").read_text(encoding="utf-8")
    assert [c for c in CHECK_IDS if f"`{c}`" not in docs] == []


def test_typos_are_listed_together_with_suggestions():
    with pytest.raises(ConfigError) as err:
        validate_check_levels(
            {"admin.gapp": "fail", "points.outside_boundary": "warn", "admin.gap": "stop"}
        )
    msg = str(err.value)
    assert "'admin.gapp' (did you mean 'admin.gap'?)" in msg
    assert "did you mean 'points.outside_boundaries'" in msg
    assert "quality.levels.admin.gap is 'stop'" in msg
    with pytest.raises(ConfigError, match="no_such_thing'(?!.*did you mean)"):
        validate_check_levels({"no_such_thing": "warn"})
    with pytest.raises(ConfigError, match="rasters.levels is a list"):
        validate_check_levels(["admin.gap"], path="rasters.levels")  # type: ignore[arg-type]


def test_valid_levels_pass_through():
    assert validate_check_levels(None) == {}
    assert validate_check_levels({c: "fail" for c in CHECK_IDS}) == {c: "fail" for c in CHECK_IDS}
