"""Exporting a run's backbone (tools/export_backbone.py) and reading it back through init_from."""
import os

import jax
import numpy as np
import pytest

import configs_for_tests
from halluc_jax import init_from
from halluc_jax import setup as setup_lib
from halluc_jax.tools import export_backbone


def _trained_workdir(tmp_path, config):
  """A workdir with config.json and one checkpoint of a randomly initialised state."""
  setup = setup_lib.Setup(config, abstract=True, steps_per_epoch=4)
  state = setup.init_state()
  # Non-trivial BatchNorm statistics, so the export is seen to carry them.
  state = state.replace(batch_stats=jax.tree.map(lambda x: x + 0.25, state.batch_stats))
  return configs_for_tests.save_run(str(tmp_path / 'run'), config, state), state


def test_exported_i3d_backbone_initialises_another_run_to_the_same_arrays(tmp_path):
  config = configs_for_tests.load('i3d', 'tiny', {'data.aux_dir': ''})
  workdir, state = _trained_workdir(tmp_path, config)
  out = str(tmp_path / 'export' / 'backbone.safetensors')
  step, n = export_backbone.export(workdir, out)
  assert step == 0 and n > 0 and os.path.isfile(out)
  other = configs_for_tests.load('i3d', 'tiny', {'data.aux_dir': ''})
  other.seed = 7  # a different init, so equality below comes from the file
  other.init_from.path, other.init_from.format = out, 'i3d_pytorch'
  fresh = setup_lib.Setup(other, abstract=True, steps_per_epoch=4).init_state()
  loaded = init_from.apply(other, fresh)
  for collection in ('params', 'batch_stats'):
    jax.tree.map(np.testing.assert_array_equal,
                 jax.device_get(getattr(loaded, collection)['backbone']),
                 jax.device_get(getattr(state, collection)['backbone']))
  # The rest is the new run's own init (seed 7), not the exported run's.
  same = jax.tree.leaves(jax.tree.map(lambda a, b: np.array_equal(a, b),
                                      jax.device_get(loaded.params['prednet']),
                                      jax.device_get(state.params['prednet'])))
  assert not all(same)


def test_export_refuses_a_vivit_run_and_other_suffixes(tmp_path):
  config = configs_for_tests.load('default', 'tiny', {'data.aux_dir': ''})
  workdir, _ = _trained_workdir(tmp_path, config)
  with pytest.raises(ValueError, match='I3D'):
    export_backbone.export(workdir, str(tmp_path / 'x.safetensors'))
  i3d_dir = tmp_path / 'i3d'
  os.makedirs(i3d_dir)
  i3d_workdir, _ = _trained_workdir(i3d_dir, configs_for_tests.load('i3d', 'tiny',
                                                                    {'data.aux_dir': ''}))
  with pytest.raises(ValueError, match='safetensors'):
    export_backbone.export(i3d_workdir, str(tmp_path / 'x.pt'))
