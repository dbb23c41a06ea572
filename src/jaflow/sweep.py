"""Ablation sweeps: expand a template model into one model per parameter point."""

from __future__ import annotations

from typing import Any


def expand_sweeps(config: dict[str, Any]) -> dict[str, Any]:
    """Add one model per sweep point to config['models'] (built in the cluster/sweeps issue)."""
    if config.get("sweeps"):
        from jaflow.errors import NotImplementedYet

        raise NotImplementedYet("sweeps: expansion is not implemented yet")
    return config
