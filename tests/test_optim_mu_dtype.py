"""`optim.mu_dtype='bfloat16'`: Adam's first moment in bf16, nu and the parameters in float32."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from halluc_jax import optim
from halluc_jax import setup as setup_lib
from halluc_jax import sharding
from halluc_jax.models import hallucinator

from test_grad_accum import tiny_config, uneven_batch


def adam_states(opt_state):
  """Every `ScaleByAdamState` inside an optax state."""
  is_adam = lambda x: isinstance(x, optax.ScaleByAdamState)  # pylint: disable=unnecessary-lambda-assignment
  return [x for x in jax.tree.leaves(opt_state, is_leaf=is_adam) if is_adam(x)]


def assert_moment_dtypes(opt_state, mu_dtype):
  states = adam_states(opt_state)
  assert states
  for s in states:
    assert {np.dtype(x.dtype) for x in jax.tree.leaves(s.mu)} == {np.dtype(mu_dtype)}
    assert {np.dtype(x.dtype) for x in jax.tree.leaves(s.nu)} == {np.dtype(jnp.float32)}


@pytest.mark.parametrize('optimizer', ['adam', 'adamw'])
def test_first_moment_dtype_follows_the_config(optimizer):
  params = {g: {'kernel': jnp.ones((3, 2)), 'bias': jnp.zeros(2)}
            for g in hallucinator.PARAM_GROUPS}
  labels = hallucinator.param_labels(params)
  for name, dtype in (('float32', jnp.float32), ('bfloat16', jnp.bfloat16)):
    cfg = tiny_config(**{'optim.optimizer': optimizer, 'optim.mu_dtype': name}).optim
    tx = optim.make_optimizers(cfg, 'joint', optax.constant_schedule(1e-3), labels)['joint']
    assert_moment_dtypes(tx.init(params), dtype)
  cfg = tiny_config(**{'optim.mu_dtype': 'float16'}).optim
  with pytest.raises(ValueError, match='mu_dtype'):
    optim.make_optimizers(cfg, 'joint', optax.constant_schedule(1e-3), labels)


def test_bf16_first_moment_trains_the_model():
  """Alternating steps on one batch with bf16 mu and bf16 compute: finite, the loss falls,
  parameters and nu stay float32."""
  config = tiny_config(**{'optim.mu_dtype': 'bfloat16', 'model.dtype': 'bfloat16',
                          'optim.eps': 1e-8, 'loss.update_scheme': 'alternating'})
  setup = setup_lib.Setup(config, sharding.make_mesh(config.mesh), abstract=True)
  batch = jax.device_put(uneven_batch(config.data.num_classes), setup.batch_sharding)
  state = setup.init_state()
  step = setup.jit_train_step()
  losses = []
  with setup.context():
    for _ in range(6):
      state, metrics = step(state, batch)
      losses.append(float(metrics['loss']))
  assert np.all(np.isfinite(losses)) and float(metrics['finite']) == 1.0
  assert losses[-1] < losses[0], losses
  for opt_state in state.opt_state.values():
    assert_moment_dtypes(opt_state, jnp.bfloat16)
  assert {x.dtype for x in jax.tree.leaves(state.params)} == {jnp.dtype(jnp.float32)}
