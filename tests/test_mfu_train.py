"""Model FLOPs per step (train_step.step_flops) and the FLOP metrics the trainer logs, on CPU."""
import jax
import numpy as np
import pytest

from halluc_jax import dry_run
from halluc_jax import setup as setup_lib
from halluc_jax import sharding
from halluc_jax import train

from test_grad_accum import tiny_config
from test_train import _config

pytestmark = pytest.mark.usefixtures('fast_compilation')  # conftest.py: no XLA optimisation passes


def _config_for(stem, **overrides):
  # Pass 1 also trains the backbone (the default, pinned here). Without it both passes run the same
  # backbone forward on the same parameters, which XLA may compute once while the jaxpr count
  # (what the algorithm asks for) bills it twice: measured 14% (patch) and 21% (conv) above
  # XLA's count, against 5% and 10% with it.
  return tiny_config(**{'model.backbone.stem': stem, 'loss.hal_pass_trains_backbone': True,
                        **overrides})


def _step_flops(n, stem):
  config = _config_for(stem, **{'train.grad_accum_steps': n})
  setup = setup_lib.Setup(config, sharding.make_mesh(config.mesh), abstract=True)
  return setup.compile_train_step(setup.abstract_state, setup.abstract_batch())[1]


# Upper bound of (jaxpr count) / (XLA's CPU count). The jaxpr count bills every kernel tap of a
# 'SAME' conv; XLA skips the taps that fall on the padding. The conv stem on the tiny 16-px clip
# (four 3x3 convs down to 1x1) is mostly padding: 7% over XLA here.
_XLA_BOUND = {'patch': 1.05, 'conv': 1.10}


@pytest.mark.parametrize('stem', ['patch', 'conv'])
def test_step_flops_do_not_depend_on_gradient_accumulation(stem):
  """The jaxpr count multiplies the micro-batch scan body by its length (XLA's cost analysis
  counts it once), and agrees with XLA's CPU count of the unaccumulated step (which adds the
  elementwise work) to a few percent."""
  flops = _step_flops(1, stem)
  assert flops > 0
  assert _step_flops(4, stem) == pytest.approx(flops, rel=0.01)
  config = _config_for(stem)
  setup = setup_lib.Setup(config, sharding.make_mesh(config.mesh), abstract=True)
  with setup.context():
    compiled = setup.jit_train_step().lower(setup.abstract_state, setup.abstract_batch()).compile()
  xla = dry_run.cost_flops(compiled) * setup.mesh.size
  assert 0.5 * xla < flops <= _XLA_BOUND[stem] * xla


def test_trainer_logs_model_flops_and_achieved_throughput(tiny_dataset, tmp_path):
  """Two steps with gradient accumulation; the last log has the FLOP metrics (no MFU on CPU:
  it has no known peak)."""
  out = train.train_and_evaluate(
      _config(tiny_dataset, **{'train.grad_accum_steps': 2, 'loss.update_scheme': 'joint'}),
      tmp_path / 'wd')
  scalars = out['train']
  assert out['step'] == 2 and np.isfinite(scalars['loss'])
  assert scalars['model_tflops_per_step'] > 0
  assert scalars['tflops_per_sec_per_device'] == pytest.approx(
      scalars['model_tflops_per_step'] * scalars['steps_per_sec'] / jax.device_count())
  assert 'mfu' not in scalars
