"""Gradient accumulation's micro-batches (`train.grad_accum_steps`): the split and its sharding.

The losses need nothing of their own here: every micro-batch's loss is its loss sums over the
whole batch's counts (`losses.py`), so summing over micro-batches gives the large-batch loss
and gradient (`train_step._pass_gradients`).
"""
import jax
from jax.sharding import NamedSharding, PartitionSpec as P

from halluc_jax import sharding


def micro_batch_sharding(mesh, batch_size, num_micro):
  """Sharding of the [num_micro, batch_size // num_micro, ...] split: the micro axis whole,
  each micro-batch split over the data-parallel axes like the global batch."""
  dp = sharding.data_parallel_size(mesh)
  if batch_size % num_micro or (batch_size // num_micro) % dp:
    raise ValueError(f'config.train.grad_accum_steps={num_micro} must divide '
                     f'config.data.batch_size={batch_size} into micro-batches that the {dp} '
                     'data-parallel devices split evenly.')
  return NamedSharding(mesh, P(None, sharding.BATCH_AXES))


def split(batch, num_micro, micro_sharding=None):
  """[B, ...] leaves -> [num_micro, B // num_micro, ...]; micro-batch k holds rows k, k + N, ...

  Strided rather than contiguous: with the batch axis split in contiguous blocks over the
  devices, every device then holds its own share of every micro-batch, so the split moves no
  data between devices.
  """

  def one(x):
    b = x.shape[0]
    if b % num_micro:
      raise ValueError(f'grad_accum_steps={num_micro} does not divide the batch of {b}.')
    x = x.reshape((b // num_micro, num_micro) + x.shape[1:]).swapaxes(0, 1)
    return x if micro_sharding is None else jax.lax.with_sharding_constraint(x, micro_sharding)

  return jax.tree.map(one, batch)
