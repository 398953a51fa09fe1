"""Count sketch (docs/method.md §3.4): p(x) = P x with P[h(j), j] = s(j), as a segment sum.

The hash h and signs s are drawn once from a seeded PCG64 generator, so the same
(d_in, d_out, seed) gives the same sketch on every machine, offline and in-graph.
"""
import dataclasses

import numpy as np

from halluc_jax.descriptors._xp import array_namespace


@dataclasses.dataclass(frozen=True)
class CountSketch:
  """A fixed count-sketch projection from d_in to d_out dimensions.

  Attributes:
    d_in: input dimension.
    d_out: output dimension.
    seed: seed of the hash and sign draws.
  """
  d_in: int
  d_out: int
  seed: int

  @property
  def hash_and_sign(self):
    """(h int32[d_in] in [0, d_out), s float32[d_in] in {-1, +1})."""
    rng = np.random.Generator(np.random.PCG64(self.seed))
    h = rng.integers(0, self.d_out, size=self.d_in).astype(np.int32)
    s = (rng.integers(0, 2, size=self.d_in) * 2 - 1).astype(np.float32)
    return h, s

  def dense_matrix(self):
    """The explicit P in {-1, 0, 1}^{d_out x d_in} (for tests and small sketches)."""
    h, s = self.hash_and_sign
    p = np.zeros((self.d_out, self.d_in), np.float32)
    p[h, np.arange(self.d_in)] = s
    return p

  def __call__(self, x):
    """Sketches x [..., d_in] to [..., d_out]; numpy in, numpy out; jax in, jax out."""
    if x.shape[-1] != self.d_in:
      raise ValueError(f'CountSketch expects last dim {self.d_in}, got shape {x.shape}.')
    h, s = self.hash_and_sign
    xp = array_namespace(x)
    if xp is np:
      lead = x.shape[:-1]
      flat = (x * s).reshape(-1, self.d_in)
      rows = np.arange(flat.shape[0])[:, None] * self.d_out
      out = np.bincount((rows + h[None, :]).ravel(), weights=flat.ravel(),
                        minlength=flat.shape[0] * self.d_out)
      return out.reshape(lead + (self.d_out,)).astype(x.dtype)
    import jax  # pylint: disable=g-import-not-at-top
    moved = xp.moveaxis(x * xp.asarray(s, x.dtype), -1, 0)
    out = jax.ops.segment_sum(moved, xp.asarray(h), num_segments=self.d_out)
    return xp.moveaxis(out, 0, -1)
