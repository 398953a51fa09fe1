"""`config.train.cpu_devices`: the CPU backend as N host devices, set by the launcher.

The device count is fixed when JAX's backend starts, and this test process has started it, so
everything that changes it runs in a fresh interpreter. That the step trains the same model on
N data-parallel devices as on one is tests/test_mesh_equivalence.py's check.
"""
import os
import re
import subprocess
import sys

import pytest

from halluc_jax import host_devices
from test_train import _env, _main_cmd, _write_config  # pylint: disable=g-bad-import-order

_PROBE = """
import jax
from halluc_jax import host_devices
host_devices.configure({n})
print('DEVICES', len(jax.devices()), jax.devices()[0].platform)
try:
  host_devices.configure(3)  # the backend has started: too late
except ValueError as e:
  print('LATE', e)
"""


def _probe(n, xla_flags=''):
  env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS=xla_flags)
  out = subprocess.run([sys.executable, '-c', _PROBE.format(n=n)], env=env, capture_output=True,
                       text=True, timeout=120, check=True).stdout
  devices = int(re.search(r'^DEVICES (\d+) cpu$', out, re.M).group(1))
  return devices, re.search(r'^LATE (.*)$', out, re.M)


@pytest.mark.parametrize('bad', [0, -2, 'two', 1.5, True])
def test_bad_counts_are_rejected_by_name(bad):
  with pytest.raises(ValueError, match=r'config\.train\.cpu_devices'):
    host_devices.configure(bad)


def test_one_device_changes_nothing():
  host_devices.configure(1)  # this process's backend has started: 1 must not try to change it


def test_count_is_applied_before_the_backend_and_refused_after():
  devices, late = _probe(2)
  assert devices == 2
  assert late and 'cpu_devices=3' in late.group(1) and 'before JAX starts' in late.group(1)


def test_explicit_xla_flag_wins():
  devices, _ = _probe(2, '--xla_force_host_platform_device_count=3')
  assert devices == 3


def test_main_trains_on_two_host_devices(tiny_dataset, tmp_path):
  """The launcher applies the key before anything touches devices; the tiny run (batch 4)
  splits over the two devices and finishes with its evaluation."""
  config = _write_config(tmp_path / 'cfg.py', tiny_dataset,
                         **{'train.cpu_devices': 2, 'train.compilation_cache_dir': ''})
  env = _env()
  env.pop('XLA_FLAGS', None)
  proc = subprocess.run(_main_cmd(config, tmp_path / 'wd'), env=env, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'JAX devices: [CpuDevice(id=0), CpuDevice(id=1)]' in proc.stderr, proc.stderr[-3000:]
  assert (tmp_path / 'wd' / 'eval' / 'eval_latest.json').is_file()


def test_a_batch_that_does_not_split_over_the_devices_names_the_config():
  import jax  # pylint: disable=g-import-not-at-top
  from halluc_jax import sharding  # pylint: disable=g-import-not-at-top
  mesh = jax.sharding.AbstractMesh((2, 2, 1), ('data', 'fsdp', 'tensor'))
  sharding.check_batch_divides(8, mesh)
  with pytest.raises(ValueError, match=r'batch_size=6 does not split over the 4 devices.*cpu_devices'):
    sharding.check_batch_divides(6, mesh)
  tensor_only = jax.sharding.AbstractMesh((1, 1, 4), ('data', 'fsdp', 'tensor'))
  sharding.check_batch_divides(3, tensor_only)  # tensor parallelism does not split the batch
