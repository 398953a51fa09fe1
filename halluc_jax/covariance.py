"""The precision Cholesky factor of the hallucination residuals (docs/method.md §3.10): its layouts,
the uncertainty ("robust") loss terms, and the per-stream variances read back from it.

CENet (models/cenet.py) predicts it, the loss (losses.py) scores with it, predict reports it.

Omega = w w^T is the precision of the residual r, w lower triangular with w_ii = exp(l_ii). Then
r^T Omega r = ||w^T r||^2 and log|Omega| = 2 sum_i l_ii, so Omega is never formed. Structures of w
(the CENet output, as a dict of free entries):

  diag          {'log_diag': [B, d']}                       heteroscedastic, per dimension
  grouped       {'log_diag': [B, m, d*], 'off_diag': [B, m, d*(d*-1)/2]}
                one full d* x d* block per sketch coordinate k across the d* streams (docs/method.md §9.1)
  single_block  {'log_diag': [B, m, d*], 'off_diag': [B, d*(d*-1)/2]}   one block shared by all k
  dense         {'log_diag': [B, d'], 'off_diag': [B, d'(d'-1)/2]}      full w, small d' only

The residual comes in the same layout: [B, d'] (streams concatenated in sorted-name order) for
diag/dense, [B, m, d*] (coordinate k of every stream, streams zero-padded to m = max dim) for the
block structures. A coordinate mask (0 = missing stream or padding) removes the coordinate's row
and column from w: the loss is then that of the observed coordinates under the sub-factor, which
is a valid precision Cholesky factor, so a masked stream contributes exactly nothing.

With standardised targets (config.data.standardize_targets; docs/method.md, "Target
standardisation") r is the residual of z = (y - mean) / std, so Omega is the precision of the
standardised residual. With D = diag(std), r_z = D^-1 r_y, and the loss equals the original-space
loss under the factor D^-1 w (still lower triangular with a positive diagonal) minus the constant
2 kappa sum_i log std_i: the same family of precisions, reparametrised so that CENet's outputs,
its log-diagonal clamp and the 1/d' normalisation act on unit-scale coordinates.

## Read-back

CENet predicts w with Omega = w w^T the precision of the hallucination residual. The predicted
covariance is Sigma = Omega^-1 = w^-T w^-1, so Sigma_ii is the squared norm of column i of w^-1.
A stream's uncertainty is the mean of Sigma_ii over its coordinates: the average predicted
variance of its hallucinated descriptor (diag: exp(-2 l_ii); block structures: the diagonal of
each block's inverse, which includes the variance explained by correlated streams).

With standardised targets (docs/method.md, "Target standardisation") CENet models the residual
of z = (y - mean) / std, so Sigma is z's covariance; y's is D Sigma D with D = diag(std), and
its diagonal is std_i^2 Sigma_ii. Given `target_std`, `stream_variances` reports that original-
space variance; without it, the variance of whatever space the model regressed.
"""
import numpy as np
import jax.numpy as jnp

STRUCTURES = ('diag', 'grouped', 'single_block', 'dense')
DENSE_MAX_DIM = 2048  # d'(d'-1)/2 CENet outputs: beyond this the dense factor is impractical


def _check_structure(structure):
  if structure not in STRUCTURES:
    raise ValueError(f'Unknown covariance structure {structure!r}; expected one of {STRUCTURES}.')


def factor_shapes(structure, dims):
  """Shapes (without batch) of the free entries of w for streams of the given dims.

  Args:
    structure: one of STRUCTURES.
    dims: sequence of stream dims, in sorted-name order.

  Returns:
    dict key -> shape tuple.
  """
  _check_structure(structure)
  dims = [int(d) for d in dims]
  if not dims:
    raise ValueError('The uncertainty loss needs at least one auxiliary stream.')
  total, groups, block = sum(dims), max(dims), len(dims)
  if structure == 'diag':
    return {'log_diag': (total,)}
  if structure == 'dense':
    if total > DENSE_MAX_DIM:
      raise ValueError(f"Structure 'dense' needs {total * (total - 1) // 2} CENet outputs for "
                       f"d'={total} > {DENSE_MAX_DIM}; use 'grouped' or 'diag'.")
    return {'log_diag': (total,), 'off_diag': (total * (total - 1) // 2,)}
  off = (block * (block - 1) // 2,)
  return {'log_diag': (groups, block),
          'off_diag': (groups,) + off if structure == 'grouped' else off}


def to_layout(by_stream, structure):
  """Arranges a dict name -> [B, m_i] (residuals or masks) in the structure's layout.

  Returns [B, d'] for diag/dense, [B, max m_i, d*] (zero padded) for grouped/single_block.
  """
  _check_structure(structure)
  names = sorted(by_stream)
  if structure in ('diag', 'dense'):
    return jnp.concatenate([by_stream[n] for n in names], axis=-1)
  groups = max(by_stream[n].shape[-1] for n in names)
  padded = [jnp.pad(by_stream[n], [(0, 0)] * (by_stream[n].ndim - 1)
                    + [(0, groups - by_stream[n].shape[-1])]) for n in names]
  return jnp.stack(padded, axis=-1)


def lower_factor(log_diag, off_diag, mask=None):
  """Builds w (lower triangular, [..., n, n]) from its log-diagonal [..., n] and strict lower part.

  Entries in a masked row or column are replaced by those of the identity.
  """
  n = log_diag.shape[-1]
  rows, cols = np.tril_indices(n, -1)
  lead = jnp.broadcast_shapes(log_diag.shape[:-1], off_diag.shape[:-1])
  w = jnp.zeros(lead + (n, n), log_diag.dtype).at[..., rows, cols].set(
      jnp.broadcast_to(off_diag, lead + off_diag.shape[-1:]))
  if mask is not None:
    w = w * (mask[..., :, None] * mask[..., None, :])
    log_diag = log_diag * mask
  return w + jnp.exp(log_diag)[..., None] * jnp.eye(n, dtype=log_diag.dtype)


def uncertainty_terms(residual, cholesky, structure, mask=None):
  """Per-sample quadratic term r^T Omega r and log|Omega|, each [B].

  Args:
    residual: prediction - target in the structure's layout (see module docstring).
    cholesky: dict of free entries of w for `structure`.
    structure: one of STRUCTURES.
    mask: optional 0/1 array shaped like `residual`; 0 drops the coordinate.

  Returns:
    (quadratic [B], log_det [B]).
  """
  _check_structure(structure)
  log_diag = cholesky['log_diag']
  if log_diag.shape != residual.shape:
    raise ValueError(f"cholesky['log_diag'] {log_diag.shape} does not match the residual "
                     f'{residual.shape} for structure {structure!r}.')
  if mask is None:
    mask = jnp.ones_like(residual)
  mask = mask.astype(residual.dtype)
  r = residual * mask
  sum_axes = tuple(range(1, residual.ndim))
  log_det = 2.0 * jnp.sum(log_diag * mask, axis=sum_axes)
  if structure == 'diag':
    return jnp.sum(jnp.exp(2.0 * log_diag) * r * r * mask, axis=sum_axes), log_det
  off = cholesky['off_diag']
  if structure == 'single_block':
    off = off[:, None, :]  # one block shared by all sketch coordinates
  w = lower_factor(log_diag, off, mask)
  wt_r = jnp.einsum('...ij,...i->...j', w, r)  # w^T r, per block
  return jnp.sum(wt_r * wt_r, axis=sum_axes), log_det


def uncertainty_loss(residual, cholesky, structure, kappa=1.0, mask=None):
  """Per-sample uncertainty loss r^T Omega r - kappa log|Omega| (Eq. U2), shape [B]."""
  quadratic, log_det = uncertainty_terms(residual, cholesky, structure, mask)
  return quadratic - kappa * log_det

def _column_sq_norms_of_inverse(w):
  """Sigma_ii = ||w^-1 e_i||^2 for lower-triangular w [..., n, n] -> [..., n] (float64)."""
  w = np.asarray(w, np.float64)
  return np.sum(np.linalg.inv(w) ** 2, axis=-2)


def stream_variances(cholesky, structure, stream_dims, target_std=None):
  """Mean predicted variance of each stream's hallucinated descriptor, per example.

  Args:
    cholesky: CENet's free entries for `structure` ({'log_diag', 'off_diag'} with a leading
      batch dim; layout of `halluc_jax.covariance`).
    structure: 'diag', 'grouped', 'single_block' or 'dense'.
    stream_dims: dict name -> dim of every stream CENet saw (the factor orders them by name).
    target_std: optional dict name -> float [dim], the per-dimension std the targets were
      standardised with; each coordinate's variance is scaled by std^2 (original space).

  Returns:
    dict name -> float64 [B].
  """
  per_coordinate = coordinate_variances(cholesky, structure, stream_dims)
  if target_std is not None:
    per_coordinate = {n: v * np.asarray(target_std[n], np.float64) ** 2
                      for n, v in per_coordinate.items()}
  return {n: v.mean(axis=1) for n, v in per_coordinate.items()}


def coordinate_variances(cholesky, structure, stream_dims):
  """Predicted variance Sigma_ii of every coordinate: dict name -> float64 [B, dim].

  Args: as `stream_variances`.
  """
  names = sorted(stream_dims)
  dims = [int(stream_dims[n]) for n in names]
  shapes = factor_shapes(structure, dims)
  log_diag = np.asarray(cholesky['log_diag'], np.float64)
  if log_diag.shape[1:] != shapes['log_diag']:
    raise ValueError(f"cholesky['log_diag'] has shape {log_diag.shape[1:]} per example; "
                     f'structure {structure!r} over streams {dict(zip(names, dims))} needs '
                     f"{shapes['log_diag']}.")
  if structure in ('diag', 'dense'):
    if structure == 'diag':
      var = np.exp(-2.0 * log_diag)
    else:
      w = lower_factor(log_diag.astype(np.float32),
                                          np.asarray(cholesky['off_diag'], np.float32))
      var = _column_sq_norms_of_inverse(w)
    bounds = np.cumsum([0] + dims)
    return {n: var[:, bounds[i]:bounds[i + 1]] for i, n in enumerate(names)}
  # Block structures: block k couples coordinate k of every stream; shorter streams are
  # zero-padded and their padded coordinates masked out of the factor, as in the loss.
  groups = max(dims)
  mask = (np.arange(groups)[:, None] < np.asarray(dims)[None, :]).astype(np.float32)
  off = np.asarray(cholesky['off_diag'], np.float32)
  if structure == 'single_block':
    off = off[:, None, :]
  # float32: jax without x64 would truncate float64 anyway; the inverse below is float64.
  w = lower_factor(log_diag.astype(np.float32), off, mask[None])
  var = _column_sq_norms_of_inverse(w)  # [B, groups, d*]
  return {n: var[:, :dims[i], i] for i, n in enumerate(names)}
