"""Per-stream predicted uncertainty from CENet's precision Cholesky factor (docs/method.md §3.10).

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

from halluc_jax import losses_uncertainty


def _column_sq_norms_of_inverse(w):
  """Sigma_ii = ||w^-1 e_i||^2 for lower-triangular w [..., n, n] -> [..., n] (float64)."""
  w = np.asarray(w, np.float64)
  return np.sum(np.linalg.inv(w) ** 2, axis=-2)


def stream_variances(cholesky, structure, stream_dims, target_std=None):
  """Mean predicted variance of each stream's hallucinated descriptor, per example.

  Args:
    cholesky: CENet's free entries for `structure` ({'log_diag', 'off_diag'} with a leading
      batch dim; layout of `halluc_jax.losses_uncertainty`).
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
  shapes = losses_uncertainty.factor_shapes(structure, dims)
  log_diag = np.asarray(cholesky['log_diag'], np.float64)
  if log_diag.shape[1:] != shapes['log_diag']:
    raise ValueError(f"cholesky['log_diag'] has shape {log_diag.shape[1:]} per example; "
                     f'structure {structure!r} over streams {dict(zip(names, dims))} needs '
                     f"{shapes['log_diag']}.")
  if structure in ('diag', 'dense'):
    if structure == 'diag':
      var = np.exp(-2.0 * log_diag)
    else:
      w = losses_uncertainty.lower_factor(log_diag.astype(np.float32),
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
  w = losses_uncertainty.lower_factor(log_diag.astype(np.float32), off, mask[None])
  var = _column_sq_norms_of_inverse(w)  # [B, groups, d*]
  return {n: var[:, :dims[i], i] for i, n in enumerate(names)}
