"""EMA of the weights (`config.train.ema_decay`): updated every step, evaluated, checkpointed."""
import jax
import numpy as np
import pytest

import configs_for_tests
from halluc_jax import checkpointing
from halluc_jax import setup as setup_lib
from halluc_jax.perf import step_inputs


def _setup(ema_decay):
  c = configs_for_tests.load('default', 'tiny')
  c.data.aux_dir = ''
  c.train.ema_decay = ema_decay
  return setup_lib.Setup(c, abstract=True, steps_per_epoch=4)


def test_ema_follows_the_warmed_up_formula_and_is_what_evaluation_reads(tmp_path):
  decay = 0.9
  setup = _setup(decay)
  state = setup.init_state()
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(state.ema_params),
               jax.device_get(state.params))  # starts as a copy
  step = setup.jit_train_step()
  batch = step_inputs.synthetic_batch(setup.abstract_batch(), setup.config.data.num_classes)
  want = jax.device_get(state.params)
  for t in range(3):
    state, _ = step(state, batch)
    d = min(decay, (1 + t) / (10 + t))
    want = jax.tree.map(lambda e, p, d=d: d * e + (1 - d) * p, want, jax.device_get(state.params))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               jax.device_get(state.ema_params), want)
  # Evaluation scores the EMA copy: other weights, other logits than the raw params give.
  video = np.asarray(jax.device_get(batch['video']))
  ema_logits = np.asarray(setup.predict_fn(state)({'video': video})['logits'])
  raw = state.replace(ema_params={})
  raw_logits = np.asarray(setup.predict_fn(raw)({'video': video})['logits'])
  assert not np.allclose(ema_logits, raw_logits)
  # The checkpoint holds it, and the inference reader returns it as the params.
  ckpt = checkpointing.Checkpointer(str(tmp_path / 'checkpoints'), setup.config.checkpoint)
  ckpt.save(int(jax.device_get(state.step)), state)
  ckpt.wait()
  ckpt.close()
  _, variables = checkpointing.restore_variables(str(tmp_path / 'checkpoints'),
                                                 keys=('params', 'ema_params'))
  jax.tree.map(np.testing.assert_array_equal, variables['ema_params'],
               jax.device_get(state.ema_params))


def test_off_keeps_no_copy_and_bad_decay_is_an_error():
  setup = _setup(0.0)
  state = setup.init_state()
  assert state.ema_params == {}
  step = setup.jit_train_step()
  batch = step_inputs.synthetic_batch(setup.abstract_batch(), setup.config.data.num_classes)
  state, _ = step(state, batch)
  assert state.ema_params == {}
  with pytest.raises(ValueError, match='ema_decay'):
    _setup(1.0)
