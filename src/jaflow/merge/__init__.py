"""Merge nodes of the model graph into a Mixtral-style MoE with mergekit-moe."""

from jaflow.merge.compat import check_compatible
from jaflow.merge.moe import check_spec, merge_moe, mergekit_config

__all__ = ["check_compatible", "check_spec", "merge_moe", "mergekit_config"]
