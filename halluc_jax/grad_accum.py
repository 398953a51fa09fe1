"""Gradient accumulation: micro-batch split and count-weighted losses (`train.grad_accum_steps`).

The losses of `losses.py` are means over the samples that count: the 'valid' clips, and for each
MSE stream the valid clips that have that target (`aux_mask`). Each term has its own
denominator, so a plain mean of N micro-batch losses would weight a micro-batch holding one
valid clip like one holding eight. Instead every term of micro-batch k is scaled by
(its count in micro-batch k) / (its count in the whole batch), with the same floors as
`losses.py` (1e-6 for `_weighted_mean`, 1 for an MSE stream's count). Summed over the
micro-batches this is the large-batch loss, term by term, and so is its gradient; the metrics
(weighted means too) are summed the same way.

This mirrors the normalisers in `losses.py`: `tests/test_grad_accum.py` compares one
accumulated step with one large-batch step and fails if the two drift apart.
"""
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P

from halluc_jax import losses
from halluc_jax import sharding

_VALID_FLOOR = 1e-6  # losses._weighted_mean
_STREAM_FLOOR = 1.0  # the MSE loss's per-stream count and the hal_mse/<stream> metric


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


def _weights(batch):
  """Per-sample weights of the loss terms: 'valid' and {stream: aux_mask * valid}."""
  valid = batch.get('valid')
  if valid is None:
    valid = jnp.ones(batch['label'].shape[:1], jnp.float32)
  valid = valid.astype(jnp.float32)
  masks = batch.get('aux_mask', {})
  streams = {n: masks[n].astype(jnp.float32) * valid if n in masks else valid
             for n in batch.get('aux', {})}
  return valid, streams


def counts(batch):
  """Sample counts of every loss term in `batch`: {'valid': n, 'streams': {name: n}}."""
  valid, streams = _weights(batch)
  return {'valid': jnp.sum(valid), 'streams': {n: jnp.sum(m) for n, m in streams.items()}}


def _scales(micro, totals):
  valid = (jnp.maximum(micro['valid'], _VALID_FLOOR)
           / jnp.maximum(totals['valid'], _VALID_FLOOR))
  streams = {n: jnp.maximum(c, _STREAM_FLOOR) / jnp.maximum(totals['streams'][n], _STREAM_FLOOR)
             for n, c in micro['streams'].items()}
  return valid, streams


def _hallucination(outputs, batch, loss_cfg, valid_scale, stream_scales):
  if not outputs['hallucinated']:
    return jnp.zeros((), jnp.float32), {}
  metrics = {}
  if loss_cfg.get('hallucination', 'mse') == 'mse':
    # The MSE loss is a mean over streams of per-stream means, each with its own count, so
    # each stream's term is computed (one stream at a time) and scaled on its own.
    terms = []
    for name, pred in outputs['hallucinated'].items():
      term, m = losses.hallucination_loss({**outputs, 'hallucinated': {name: pred}}, batch,
                                          loss_cfg)
      terms.append(stream_scales[name] * term)
      metrics[f'hal_mse/{name}'] = stream_scales[name] * m[f'hal_mse/{name}']
    loss = jnp.mean(jnp.stack(terms))
  else:  # uncertainty loss: one mean over valid clips; hal_mse/<stream> over that stream's
    loss, m = losses.hallucination_loss(outputs, batch, loss_cfg)
    loss = valid_scale * loss
    for k, v in m.items():
      if k.startswith('hal_mse/'):
        metrics[k] = stream_scales[k.split('/', 1)[1]] * v
      elif k != 'hal_loss':
        metrics[k] = valid_scale * v
  metrics['hal_loss'] = loss
  return loss, metrics


def weighted_loss_fn(kind, loss_cfg, totals):
  """Loss of one micro-batch, scaled so that the sum over micro-batches is the batch's loss.

  Args:
    kind: 'cls' (`losses.classification_loss`), 'hal' (`losses.hallucination_loss`) or
      'total' (`losses.total_loss`).
    loss_cfg: `config.loss`.
    totals: `counts(whole batch)`.

  Returns:
    fn(outputs, micro_batch) -> (scalar, metrics), the metrics those of the loss named by
    `kind`, scaled the same way (so they too sum to the whole batch's values).
  """
  if kind not in ('cls', 'hal', 'total'):
    raise ValueError(f"kind={kind!r}; expected 'cls', 'hal' or 'total'.")

  def fn(outputs, batch):
    valid_scale, stream_scales = _scales(counts(batch), totals)
    loss, metrics = jnp.zeros((), jnp.float32), {}
    if kind in ('hal', 'total'):
      hal, metrics = _hallucination(outputs, batch, loss_cfg, valid_scale, stream_scales)
      loss = loss_cfg.get('alpha', 1.0) * hal if kind == 'total' else hal
    if kind in ('cls', 'total'):
      cls, cls_metrics = losses.classification_loss(outputs, batch, loss_cfg)
      loss = loss + valid_scale * cls
      metrics = {**metrics, **{k: valid_scale * v for k, v in cls_metrics.items()}}
    if kind == 'total':
      metrics['total_loss'] = loss
    return loss, metrics

  return fn
