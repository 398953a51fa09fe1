"""RBF "pivot" embedding of scalars in [0, 1] (docs/method.md §3.5).

phi(x)_z = exp(-dist(x, zeta_z)^2 / sigma^2) for Z pivots zeta_z. The embedding linearises an
RBF kernel, G(x - x') ~ c <phi(x), phi(x')>, so sums of embedded scalars behave like soft
histograms. Linear pivots are evenly spaced on [0, 1] (both ends included); circular pivots sit
at z / Z and distances wrap around the unit circle, so x = 0 and x = 1 embed identically.
"""
import numpy as np

from halluc_jax.descriptors._xp import array_namespace


def rbf_pivots(num_pivots, circular=False):
  """The pivot positions zeta_z as float64 [num_pivots]."""
  if num_pivots < 1:
    raise ValueError(f'rbf_embed needs num_pivots >= 1, got {num_pivots}.')
  if circular:
    return np.arange(num_pivots, dtype=np.float64) / num_pivots
  if num_pivots == 1:
    return np.zeros((1,), np.float64)
  return np.linspace(0.0, 1.0, num_pivots)


def rbf_embed(x, num_pivots=7, sigma=0.5, circular=False):
  """Embeds scalars with Z Gaussian pivots.

  Args:
    x: array [...] of scalars, nominally in [0, 1] (values outside are embedded as they are;
      circular inputs are taken modulo 1).
    num_pivots: Z, the number of pivots.
    sigma: kernel width; entries are exp(-dist^2 / sigma^2).
    circular: if True, pivots at z / Z and the wrapped distance min(|u|, 1 - |u|).

  Returns:
    Array [..., Z]; numpy in gives numpy out (float64 unless x is float32), jax in gives jax out.
  """
  if sigma <= 0:
    raise ValueError(f'rbf_embed needs sigma > 0, got {sigma}.')
  xp = array_namespace(x)
  x = xp.asarray(x)
  if not xp.issubdtype(x.dtype, xp.floating):
    x = x.astype(xp.float64 if xp is np else xp.float32)
  pivots = xp.asarray(rbf_pivots(num_pivots, circular), dtype=x.dtype)
  scale = -1.0 / (sigma * sigma)
  if xp is not np:
    diff = x[..., None] - pivots
    if circular:  # wrapped distance |u - round(u)| = min(|u| mod 1, 1 - |u| mod 1)
      diff = diff - xp.round(diff)
    return xp.exp(scale * diff * diff)
  # numpy: the same formula in place, as SDF embeds ~10^5 orientations per frame.
  diff = x[..., None] - pivots
  if circular:
    diff -= np.rint(diff)
  diff *= diff
  diff *= scale
  return np.exp(diff, out=diff)
