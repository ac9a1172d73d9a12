"""Pipeline configuration files: :func:`load_config` reads a YAML file (or a mapping) into a
:class:`~geopipe.pipeline.model.Pipeline`, the one form every pipeline takes.

Relative paths in a YAML file are resolved from the folder of that file, so a config runs the same
from any working directory. Every problem is reported at once, each with its YAML path.
``docs/pipelines.md`` lists every key; ``pipelines/sample.yaml`` is the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .pipeline.model import Pipeline

__all__ = ["load_config"]


def load_config(
    source: str | Path | Mapping[str, Any], *, base: str | Path | None = None
) -> Pipeline:
    """Read and validate a pipeline configuration (the same as :meth:`Pipeline.from_yaml`).

    Parameters
    ----------
    source
        Path of a YAML file, or a mapping with the same content.
    base
        Folder relative paths of a mapping are resolved from (default: the current folder).

    Examples
    --------
    >>> p = load_config({"name": "demo", "date": "2024-01-01", "output": "out/demo",
    ...                  "sources": {"admin": {"kind": "admin", "path": "data/sample/rwa_adm2.geojson"}}})
    >>> p.name, str(p.date)
    ('demo', '2024-01-01')
    """
    if isinstance(source, Mapping):
        return Pipeline.from_dict(source, base=base)
    return Pipeline.from_yaml(source)
