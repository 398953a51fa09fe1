"""Covariance Estimation Network (CENet), docs/method.md §2.5 and 3.10.

Dense -> BatchNorm -> ReLU -> Dense, producing the free entries of the lower-triangular Cholesky
factor w of the residual's precision, in the layout of `halluc_jax.covariance`. The
log-diagonal is clamped (docs/method.md §9.2) so exp(l) stays finite. Training-only: the test-time path of
the model never calls it.
"""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from halluc_jax.covariance import factor_shapes
from halluc_jax.models.partitioning import partitioned

_KERNEL_INIT = nn.initializers.lecun_normal()  # default kernel initialiser of this module


class CENet(nn.Module):
  """Hallucinated streams {name: [B, m_i]} -> {structure: {'log_diag': ..., 'off_diag': ...}}.

  Attributes:
    structure: 'diag', 'grouped' (default), 'single_block' or 'dense'.
    hidden_dim: width of the hidden layer.
    stop_gradient: feed stop_gradient(psi~) so the heads cannot lower the loss through Omega
      (docs/method.md §9.3); the residual term still trains the heads.
    log_diag_clamp: l_ii is clipped to [-c, c].
  """
  structure: str = 'grouped'
  hidden_dim: int = 256
  stop_gradient: bool = True
  log_diag_clamp: float = 7.0

  @nn.compact
  def __call__(self, hallucinated, *, train):
    names = sorted(hallucinated)
    shapes = factor_shapes(self.structure, [hallucinated[n].shape[-1] for n in names])
    x = jnp.concatenate([hallucinated[n] for n in names], axis=-1).astype(jnp.float32)
    if self.stop_gradient:
      x = jax.lax.stop_gradient(x)
    x = nn.Dense(self.hidden_dim, name='fc1', kernel_init=partitioned(('cenet_in', 'cenet_hidden'), _KERNEL_INIT),
                 bias_init=partitioned(('cenet_hidden',), nn.initializers.zeros))(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name='bn',
                     scale_init=partitioned(('cenet_hidden',), nn.initializers.ones),
                     bias_init=partitioned(('cenet_hidden',), nn.initializers.zeros))(x)
    x = nn.relu(x)
    sizes = {k: math.prod(s) for k, s in shapes.items()}
    # Zero init: w starts as the identity, so training starts from the plain sum of squares.
    y = nn.Dense(sum(sizes.values()), name='fc2',
                 kernel_init=partitioned(('cenet_hidden', 'cenet_out'), nn.initializers.zeros),
                 bias_init=partitioned(('cenet_out',), nn.initializers.zeros))(x)
    out, start = {}, 0
    for key in sorted(shapes):
      # Explicit batch size: with one stream the off-diagonal block is empty (size 0), and a -1
      # cannot be inferred from zero elements.
      out[key] = y[:, start:start + sizes[key]].reshape((y.shape[0],) + shapes[key])
      start += sizes[key]
    out['log_diag'] = jnp.clip(out['log_diag'], -self.log_diag_clamp, self.log_diag_clamp)
    return {self.structure: out}
