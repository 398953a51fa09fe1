"""Initialisers whose parameters carry logical axis names, by which the mesh shards them.

Each model module states its own default kernel initialiser next to its layers (ViViT: Xavier
uniform, as ViT/scenic; the stream heads and CENet: LeCun normal, flax's Dense default; I3D: He
normal, for its ReLU convolutions) and passes it here, so one helper serves all of them.
"""
import flax.linen as nn


def partitioned(names, init):
  """`init` with logical axis `names` (one per parameter dimension; None = replicated)."""
  return nn.with_logical_partitioning(init, names)
