"""stream_variances against the full precision matrix built entry by entry and inverted."""
import numpy as np
import pytest

from halluc_jax import covariance as uncertainty_readout

DIMS = {'odf': 3, 'off': 2, 'sdf': 3}  # 'off' is shorter: its padded coordinate is masked


def _full_factor(structure, log_diag, off_diag, dims):
  """The d' x d' lower-triangular w of one example, written from the definition."""
  names = sorted(dims)
  offsets = np.cumsum([0] + [dims[n] for n in names])
  total = offsets[-1]
  w = np.zeros((total, total))
  if structure in ('diag', 'dense'):
    w[np.diag_indices(total)] = np.exp(log_diag)
    if structure == 'dense':
      w[np.tril_indices(total, -1)] = off_diag
    return w
  d_star = len(names)
  rows, cols = np.tril_indices(d_star, -1)
  for k in range(max(dims.values())):
    off_k = off_diag[k] if structure == 'grouped' else off_diag
    for i in range(d_star):
      if k >= dims[names[i]]:
        continue
      gi = offsets[i] + k
      w[gi, gi] = np.exp(log_diag[k, i])
      for (r, c), v in zip(zip(rows, cols), off_k):
        if r == i and k < dims[names[c]]:
          w[gi, offsets[c] + k] = v
  return w


@pytest.mark.parametrize('structure', ['diag', 'dense', 'grouped', 'single_block'])
def test_matches_inverse_of_full_precision(structure):
  rng = np.random.default_rng(0)
  batch, groups, d_star, total = 2, 3, 3, sum(DIMS.values())
  if structure == 'diag':
    chol = {'log_diag': rng.normal(size=(batch, total)) * 0.5}
  elif structure == 'dense':
    chol = {'log_diag': rng.normal(size=(batch, total)) * 0.5,
            'off_diag': rng.normal(size=(batch, total * (total - 1) // 2)) * 0.3}
  else:
    off_shape = (groups, 3) if structure == 'grouped' else (3,)
    chol = {'log_diag': rng.normal(size=(batch, groups, d_star)) * 0.5,
            'off_diag': rng.normal(size=(batch,) + off_shape) * 0.3}
  got = uncertainty_readout.stream_variances(chol, structure, DIMS)
  offsets = {'odf': (0, 3), 'off': (3, 5), 'sdf': (5, 8)}
  for b in range(batch):
    w = _full_factor(structure, chol['log_diag'][b], chol.get('off_diag', [None] * batch)[b], DIMS)
    sigma = np.linalg.inv(w @ w.T)
    for name, (lo, hi) in offsets.items():
      assert got[name][b] == pytest.approx(np.diag(sigma)[lo:hi].mean(), rel=1e-4)


def test_identity_factor_gives_unit_variance_and_bad_shape_errors():
  chol = {'log_diag': np.zeros((1, 3, 3)), 'off_diag': np.zeros((1, 3, 3))}
  got = uncertainty_readout.stream_variances(chol, 'grouped', DIMS)
  assert all(v[0] == pytest.approx(1.0) for v in got.values())
  # Larger log-diagonal = higher precision = lower variance, exp(-2l) for the diagonal case.
  got = uncertainty_readout.stream_variances({'log_diag': np.full((1, 8), 1.0)}, 'diag', DIMS)
  assert got['odf'][0] == pytest.approx(np.exp(-2.0))
  with pytest.raises(ValueError, match='needs'):
    uncertainty_readout.stream_variances({'log_diag': np.zeros((1, 7))}, 'diag', DIMS)
