"""Model FLOPs from jaxprs (halluc_jax.perf.flops) against counts written out by hand."""
import jax
import jax.numpy as jnp
import pytest

from halluc_jax.perf import flops


def test_matmul_chain_and_its_gradient():
  a, b = jnp.ones((32, 64)), jnp.ones((64, 48))
  fwd = 2 * 32 * 64 * 48
  assert flops.traced_flops(jax.jit(lambda a, b: a @ b), a, b) == fwd
  # Gradient w.r.t. both: the forward plus two products of the same size.
  grad = jax.jit(jax.grad(lambda a, b: jnp.sum(a @ b), argnums=(0, 1)))
  assert flops.traced_flops(grad, a, b) == 3 * fwd


def test_batched_einsum_counts_batch_and_contraction():
  q, k = jnp.ones((2, 3, 10, 8)), jnp.ones((2, 3, 12, 8))
  f = jax.jit(lambda q, k: jnp.einsum('bhqd,bhkd->bhqk', q, k))
  assert flops.traced_flops(f, q, k) == 2 * (2 * 3 * 10 * 12) * 8


def test_scan_body_times_length_and_cond_takes_the_larger_branch():
  a, b = jnp.ones((16, 32)), jnp.ones((32, 32))

  def scanned(a, b):
    return jax.lax.scan(lambda c, _: (c @ b, None), a, None, length=7)[0]
  assert flops.traced_flops(jax.jit(scanned), a, b) == 7 * 2 * 16 * 32 * 32

  def branch(p, a, b):
    return jax.lax.cond(p, lambda: (a @ b) @ b, lambda: a @ b)
  assert flops.traced_flops(jax.jit(branch), True, a, b) == 2 * 2 * 16 * 32 * 32


def test_remat_recompute_is_counted():
  a, b = jnp.ones((16, 32)), jnp.ones((32, 32))
  loss = lambda a, b: jnp.sum(jnp.tanh(a @ b) @ b)
  plain = flops.traced_flops(jax.jit(jax.grad(loss)), a, b)
  remat = flops.traced_flops(jax.jit(jax.grad(jax.checkpoint(loss))), a, b)
  assert remat > plain


@pytest.mark.parametrize('groups', [1, 3])
def test_convolution_matches_xla(groups):
  x, k = jnp.ones((2, 4, 16, 16, 6)), jnp.ones((2, 4, 4, 6 // groups, 12))
  conv = jax.jit(lambda x, k: jax.lax.conv_general_dilated(
      x, k, (2, 4, 4), 'VALID', dimension_numbers=('NTHWC', 'THWIO', 'NTHWC'),
      feature_group_count=groups))
  direct = 2 * (2 * 2 * 4 * 4 * 12) * (2 * 4 * 4 * 6 // groups)
  assert flops.traced_flops(conv, x, k) == direct
  assert direct == pytest.approx(conv.lower(x, k).compile().cost_analysis()['flops'], rel=0.01)


def test_strided_convolution_gradient_counts_its_forward_multiply_adds():
  """The input gradient of a stride-2 conv runs as a conv over the stride-dilated cotangent;
  it is billed as the forward conv's multiply-adds, not 4x (the inserted zeros), and the
  whole gradient matches XLA's count."""
  x, k = jnp.ones((2, 16, 16, 8)), jnp.ones((2, 2, 8, 16))
  conv = lambda x, k: jax.lax.conv_general_dilated(  # pylint: disable=g-long-lambda
      x, k, (2, 2), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  forward = 2 * (2 * 8 * 8 * 16) * (2 * 2 * 8)
  assert flops.traced_flops(jax.jit(conv), x, k) == forward
  # Forward, input gradient (the dilated conv) and kernel gradient: three times the forward.
  grads = jax.jit(jax.grad(lambda x, k: jnp.sum(conv(x, k) ** 2), argnums=(0, 1)))
  assert flops.traced_flops(grads, x, k) == pytest.approx(3 * forward, rel=1e-6)
  xla = grads.lower(x, k).compile().cost_analysis()['flops']
  assert 3 * forward == pytest.approx(xla, rel=0.05)
