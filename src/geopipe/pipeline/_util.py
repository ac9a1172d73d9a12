"""Small helpers shared by the pipeline modules."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import PipelineConfig


def parameters(cfg: PipelineConfig) -> dict[str, Any]:
    return {
        "name": cfg.name,
        "date": cfg.date.isoformat(),
        "admin_options": {
            k: (str(v) if not isinstance(v, int | float | bool | type(None)) else v)
            for k, v in sorted(cfg.admin_options.items())
        },
        "indicators": list(cfg.indicators) if cfg.indicators else None,
        "points": {
            p.name: {
                "options": {k: str(v) for k, v in sorted(p.options.items())},
                "subsets": {k: [c, list(v)] for k, (c, v) in sorted(p.subsets.items())},
            }
            for p in cfg.points
        },
        "h3_resolutions": list(cfg.h3_resolutions),
        "wealth": {k: v for k, v in sorted(cfg.wealth.items()) if k != "tiles"},
        "connectivity": {k: v for k, v in sorted(cfg.connectivity.items()) if k != "tiles"},
        "service": dict(sorted(cfg.service.items())),
    }


def digest(obj: Any) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
