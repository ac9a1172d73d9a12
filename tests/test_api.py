"""The public surface: a small flat namespace, lazy and light to import."""

from __future__ import annotations

import subprocess
import sys

import geopipe as gp


def test_every_public_name_resolves():
    for name in gp.__all__:
        assert getattr(gp, name) is not None, name
    assert "read_admin" in dir(gp)


def test_unknown_name_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gp.nope  # noqa: B018


def test_import_is_light():
    """`import geopipe` pulls in no heavy or optional dependency (they load on first use)."""
    code = (
        "import sys, geopipe\n"
        "heavy = [m for m in ('geopandas', 'shapely', 'rasterio', 'duckdb', 'h3', 'exactextract', 'pyarrow', 'pandas', 'yaml', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_errors_inherit_builtins():
    from geopipe import errors

    assert issubclass(errors.InputError, ValueError)
    assert issubclass(errors.MissingFileError, FileNotFoundError)
    assert issubclass(errors.OutputError, OSError)
    for cls in (errors.InputError, errors.FormatError, errors.RasterError, errors.ConfigError):
        assert issubclass(cls, gp.GeopipeError)
    assert errors.problem("x", "is bad", "fix it", where="f") == "f: x is bad; fix: fix it"
