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


def test_indicator_docs_in_sync():
    """docs/indicators.md is generated from the catalog; regenerate it after editing catalog.yaml."""
    from pathlib import Path

    from geopipe.indicators.catalog import catalog_markdown

    doc = Path(__file__).resolve().parents[1] / "docs" / "indicators.md"
    assert doc.read_text(encoding="utf-8") == catalog_markdown(), (
        "run: python -m geopipe.indicators.catalog > docs/indicators.md"
    )


def test_catalog_contract_ids():
    """The indicator ids of DESIGN.md are a contract with BI users: the sample (default
    parameters) publishes every one of them, and the templated ids render to them."""
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "pipelines" / "sample.yaml"
    ids = set(gp.Pipeline.from_yaml(sample).catalog())
    contract = {
        "population_total",
        "population_u18",
        "population_u5",
        "children_in_poverty",
        "child_poverty_rate",
        "wealth_index_mean",
        "download_mbps_mean",
        "share_population_broadband",
        "schools_total",
        "schools_connected",
        "schools_connected_share",
        "children_without_connectivity",
        "health_facilities",
        "share_population_within_5km_health",
        "children_beyond_5km_health",
        "distance_to_health_km_mean",
        "schools_per_10k_children",
    }
    assert contract <= ids


def test_readme_python_example_runs(monkeypatch):
    """The README's Python example works as written (from the repo root)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    code = re.search(
        r"```python\n(.*?)```", (root / "README.md").read_text(encoding="utf-8"), re.S
    ).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    rolled = namespace["fact_all_levels"]
    assert rolled.groupby("admin_level").size().to_dict() == {0: 2, 1: 10, 2: 60}


def test_ruff_clean():
    """The tree passes the project's lint rules (pyproject.toml [tool.ruff])."""
    import shutil
    from pathlib import Path

    import pytest

    root = Path(__file__).resolve().parents[1]
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the dev extra)")
    out = subprocess.run(
        [ruff, "check", "--quiet", "src", "tests", "benchmarks"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_public_functions_are_typed_and_documented():
    """Every public function has type hints and a docstring with an Examples section."""
    import inspect

    for name in gp.__all__:
        obj = getattr(gp, name)
        if not inspect.isfunction(obj):
            continue
        sig = inspect.signature(obj)
        untyped = [p for p, v in sig.parameters.items() if v.annotation is inspect.Parameter.empty]
        assert not untyped, f"{name}: parameters without type hints {untyped}"
        assert sig.return_annotation is not inspect.Signature.empty, f"{name}: no return type"
        assert "Examples" in (obj.__doc__ or ""), f"{name}: no Examples section"
