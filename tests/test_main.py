"""The entry point's start-up: the multi-process plan, resuming checkpoints, and the dry run.

halluc_jax.main is only run as a subprocess: importing it here would define absl flags that
halluc_jax.tools.predict (imported by other tests) defines too.
"""
import re
import subprocess

import grain
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest

from halluc_jax import checkpointing
from halluc_jax import distributed
from test_train import DEFAULT_CONFIG, _env, _load_default, _main_cmd  # pylint: disable=g-bad-import-order

SLURM_2_TASKS = {'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '2', 'SLURM_PROCID': '1',
                 'SLURM_STEP_NODELIST': 'node[1-2]'}


def _dist(**overrides):
  c = _load_default().distributed
  c.update(overrides)
  return c


def test_distributed_plan_from_config_and_environment():
  assert distributed.initialize_kwargs(_dist(), {}) is None  # a plain machine: one process
  assert distributed.initialize_kwargs(_dist(), SLURM_2_TASKS) == {}  # srun: JAX detects the rest
  assert distributed.initialize_kwargs(_dist(), {**SLURM_2_TASKS, 'SLURM_NTASKS': '1'}) is None
  assert distributed.initialize_kwargs(_dist(mode='off'), SLURM_2_TASKS) is None
  assert distributed.initialize_kwargs(_dist(local_device_ids='0,1'), SLURM_2_TASKS) == {
      'local_device_ids': [0, 1]}  # one process per node driving two GPUs
  assert distributed.initialize_kwargs(_dist(), {'OMPI_MCA_orte_hnp_uri': 'x', 'OMPI_COMM_WORLD_SIZE': '4'}) == {}

  explicit = _dist(coordinator_address='10.0.0.1:1234', num_processes=2, process_id=0,
                   local_device_ids='0,1')
  assert distributed.initialize_kwargs(explicit, SLURM_2_TASKS) == {  # explicit settings win over detection
      'coordinator_address': '10.0.0.1:1234', 'num_processes': 2, 'process_id': 0,
      'local_device_ids': [0, 1]}
  env = {'JAX_COORDINATOR_ADDRESS': 'h:9', 'JAX_NUM_PROCESSES': '4', 'JAX_PROCESS_ID': '3'}
  assert distributed.initialize_kwargs(_dist(), env) == {'coordinator_address': 'h:9', 'num_processes': 4,
                                            'process_id': 3}
  assert distributed.initialize_kwargs(_dist(process_id=1), env)['process_id'] == 1  # config beats env

  with pytest.raises(ValueError, match=r'num_processes .*process_id'):
    distributed.initialize_kwargs(_dist(mode='explicit', coordinator_address='h:9'), {})
  with pytest.raises(ValueError, match='process_id=4 is not in'):
    distributed.initialize_kwargs(_dist(coordinator_address='h:9', num_processes=4, process_id=4), {})
  with pytest.raises(ValueError, match='no coordinator_address'):
    distributed.initialize_kwargs(_dist(num_processes=2, process_id=0), {})
  with pytest.raises(ValueError, match='mode'):
    distributed.initialize_kwargs(_dist(mode='on'), {})


def test_dry_run_prints_size_and_cost_without_data(tmp_path):
  """The default config compiled on 2 fake CPU devices; no video, CSV or target is read."""
  missing = tmp_path / 'no_data'
  cmd = _main_cmd(DEFAULT_CONFIG, tmp_path / 'wd', '--config.dry_run=True',
                  '--config.dry_run_devices=2', '--config.data.aux_dir=',
                  f'--config.data.root={missing}',
                  f'--config.data.annotations={missing / "annotations.csv"}')
  proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'Dry run on 2 x cpu' in proc.stdout
  params = re.search(r'Parameters: ([\d,]+) total', proc.stdout)
  assert params and int(params.group(1).replace(',', '')) > 1_000_000  # Ti/16x2, depth 4
  assert re.search(r'per clip [\d.]+ [GM]FLOPs', proc.stdout)
  assert not (tmp_path / 'wd').exists() and not missing.exists()


def _counter_at(position):
  it = iter(grain.MapDataset.range(10).to_iter_dataset())
  for _ in range(position):
    next(it)
  return it


def test_resume_reads_per_process_and_older_single_item_data_state(tmp_path):
  """New checkpoints keep one iterator file per process; older ones (one JSON item) still load."""
  cfg = ml_collections.ConfigDict({'keep': 3, 'async_save': False})
  state = {'x': np.arange(3, dtype=np.float32)}
  abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(
      a.shape, a.dtype, sharding=jax.sharding.SingleDeviceSharding(jax.devices()[0])), state)
  ckpt = checkpointing.Checkpointer(tmp_path / 'new', cfg)
  ckpt.save(1, state, _counter_at(3))
  ckpt.wait()
  assert (tmp_path / 'new' / '1' / 'data' / 'process_0-of-1.json').is_file()
  resumed = _counter_at(0)
  np.testing.assert_array_equal(ckpt.restore(abstract, resumed)['x'], state['x'])
  assert next(resumed) == 3
  ckpt.close()

  with ocp.CheckpointManager(tmp_path / 'old') as manager:  # as written before per-process files
    manager.save(5, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=ocp.args.JsonSave({'iterator': _counter_at(7).get_state()})))
  resumed = _counter_at(0)
  old = checkpointing.Checkpointer(tmp_path / 'old', cfg)
  old.restore(abstract, resumed)
  assert next(resumed) == 7
  old.close()


def test_compilation_cache_is_pointed_at_the_config_dir_and_off_when_empty(tmp_path):
  from halluc_jax import compilation_cache  # pylint: disable=g-import-not-at-top
  before = jax.config.jax_compilation_cache_dir
  try:
    compilation_cache.enable('')
    assert jax.config.jax_compilation_cache_dir == before
    blocked = tmp_path / 'file'
    blocked.write_text('not a folder')
    compilation_cache.enable(str(blocked / 'cache'))
    assert jax.config.jax_compilation_cache_dir == before  # unusable: logged, left off
    compilation_cache.enable(str(tmp_path / 'cache'))
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / 'cache')
    assert (tmp_path / 'cache').is_dir()
  finally:
    jax.config.update('jax_compilation_cache_dir', before)
