"""Two processes on localhost train like one: `python -m halluc_jax.main` with jax.distributed.

The same tiny config (RGB + two hallucinated streams, alternating updates) runs as
  * one process with 8 CPU devices (`--config.distributed.mode=off`), 3 steps straight, and
  * two processes with 4 CPU devices each (gloo collectives over 127.0.0.1), 2 steps, then the
    same two-process command again to 3 steps, resuming from the collective checkpoint.
Both see the same global batches (the pipeline's stream does not depend on the process count),
so the losses, the final parameters and the evaluation (each val video counted once) agree to
float tolerance. Every process has a timeout, so a hung collective fails the test.
"""
import json
import pathlib
import re
import socket
import subprocess
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from halluc_jax.data import annotations
from halluc_jax.data import aux_targets
from test_train import _env, _main_cmd, _write_config  # pylint: disable=g-bad-import-order

TIMEOUT_S = 240  # per launch; one takes 35-70 s on 2 shared cores
STEPS = 3


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _write_targets(root, aux_dir):
  """Random 8-dim 'odf' and 'sdf' targets for every train and val video."""
  rng = np.random.default_rng(0)
  targets = []
  for split in ('train', 'val'):
    for r in annotations.load_annotations(str(root / 'annotations.csv'), str(root), split):
      targets.append((r.video_id, {s: rng.normal(size=8).astype(np.float32)
                                   for s in ('odf', 'sdf')}))
  aux_targets.write_targets(str(aux_dir), targets,
                            {'streams': {s: {'dim': 8, 'group': s} for s in ('odf', 'sdf')}})


def _start(config_path, workdir, num_processes, devices_each, *extra, cache_dir=None):
  """Starts every process of one job (distributed settings on the command line)."""
  env = dict(_env(cache_dir), XLA_FLAGS=f'--xla_force_host_platform_device_count={devices_each}')
  port = _free_port()
  procs = []
  for i in range(num_processes):
    flags = ['--config.distributed.mode=off'] if num_processes == 1 else [
        f'--config.distributed.coordinator_address=127.0.0.1:{port}',
        f'--config.distributed.num_processes={num_processes}',
        f'--config.distributed.process_id={i}', '--config.distributed.initialization_timeout=60']
    procs.append(subprocess.Popen(_main_cmd(config_path, workdir, *flags, *extra), env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
  return procs


def _launch(*args, **kwargs):
  """Runs one job (see `_start`) to completion within TIMEOUT_S; returns its stdout texts."""
  return _wait(_start(*args, **kwargs), time.monotonic() + TIMEOUT_S)


def _wait(procs, deadline):
  """Stdout of every process once all exit 0; fails (and kills them) past `deadline`."""
  outputs = []
  try:
    for i, proc in enumerate(procs):
      stdout, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
      assert proc.returncode == 0, f'process {i} of {len(procs)} failed:\n{stderr[-3000:]}'
      outputs.append(stdout)
  except subprocess.TimeoutExpired:
    pytest.fail(f'{len(procs)}-process run did not finish in time (hung collective?)')
  finally:
    for proc in procs:  # ours only, by handle
      if proc.poll() is None:
        proc.kill()
        proc.wait()
  return outputs


def _step_losses(stdout):
  """{step: loss} from the progress lines ('step 2/3 (67%) | loss 2.4851 | ...')."""
  return {int(m.group(1)): float(m.group(2))
          for m in re.finditer(r'step (\d+)/\d+ \(\d+%\) \| loss (\S+)', stdout)}


def _results(workdir):
  workdir = pathlib.Path(workdir)
  summary = json.loads((workdir / 'summary.json').read_text())
  evaluation = json.loads((workdir / 'eval' / 'eval_latest.json').read_text())
  return summary, evaluation, _saved_params(workdir / 'checkpoints' / str(STEPS) / 'state')


def _saved_params(path):
  """Parameters of a checkpoint saved on 8 devices, read onto this process's first device."""
  checkpointer = ocp.StandardCheckpointer()
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                        checkpointer.metadata(path).item_metadata.tree)
  return checkpointer.restore(path, target)['params']


def test_two_processes_match_one_process(tiny_dataset, tmp_path):
  aux_dir = tmp_path / 'targets'
  _write_targets(tiny_dataset, aux_dir)
  config_path = _write_config(
      tmp_path / 'tiny_config.py', tiny_dataset,
      **{'data.aux_dir': str(aux_dir), 'data.batch_size': 8, 'data.eval_batch_size': 8,
         'train.num_train_steps': STEPS, 'checkpoint.async_save': False})
  one, two = tmp_path / 'one_process', tmp_path / 'two_processes'

  cache = tmp_path / 'jax_cache'  # the resumed launch runs the programs the first compiled
  t0 = time.monotonic()
  (ref_out,) = _launch(config_path, one, 1, 8)
  t1 = time.monotonic()
  first = _launch(config_path, two, 2, 4, '--config.train.num_train_steps=2', cache_dir=cache)
  resumed = _launch(config_path, two, 2, 4, cache_dir=cache)
  print(f'\n1 x 8 devices: {t1 - t0:.0f} s; 2 x 4 devices, 2 steps + resumed 1: '
        f'{time.monotonic() - t1:.0f} s')  # shown with pytest -s

  # Logging and files come from process 0 only.
  assert _step_losses(first[0]) and not _step_losses(first[1])
  assert 'Result (' in resumed[0] and 'Result (' not in resumed[1]  # process 0 reports
  # Steps 1-2 from the first two-process launch, step 3 after resuming from its checkpoint.
  want = _step_losses(ref_out)
  got = {**_step_losses(first[0]), **_step_losses(resumed[0])}
  assert sorted(want) == sorted(got) == list(range(1, STEPS + 1))
  for step in want:
    assert got[step] == pytest.approx(want[step], abs=2e-4), f'step {step}'

  (ref_summary, ref_eval, ref_params), (summary, evaluation, params) = (
      _results(one), _results(two))
  assert summary['step'] == ref_summary['step'] == STEPS
  for key in ('loss', 'cls_loss', 'hal_loss', 'grad_norm_cls', 'grad_norm_hal'):
    assert summary['train'][key] == pytest.approx(ref_summary['train'][key], rel=1e-4), key
  print(f'losses 1x8 {want}; 2x4 {got}; final loss {ref_summary["train"]["loss"]!r} vs '
        f'{summary["train"]["loss"]!r}; max |param diff| '
        f'{np.abs(_flat(params) - _flat(ref_params)).max():.2g}')
  # Adam moves every weight by ~lr = 1e-3 per step whatever its gradient, so a near-zero
  # gradient summed in another order across processes can move a weight by a few % of one step:
  # atol is 5% of one step (measured worst: 2.2e-5 on 2 of 60012 weights, linear target heads).
  np.testing.assert_allclose(_flat(params), _flat(ref_params), rtol=1e-4, atol=5e-5)

  # Each of the 12 val videos counted once (2 views each), the same scores as one process.
  assert evaluation['num_videos'] == ref_eval['num_videos'] == 12
  assert evaluation['num_views'] == ref_eval['num_views'] == 24
  assert evaluation['confusion'] == ref_eval['confusion']
  for key in ('top1', 'top5', 'mean_class_accuracy'):
    assert evaluation[key] == pytest.approx(ref_eval[key]), key
  for stream in ('odf', 'sdf'):
    assert evaluation['hallucination'][stream]['num_clips'] == 24
    assert evaluation['hallucination'][stream]['cosine'] == pytest.approx(
        ref_eval['hallucination'][stream]['cosine'], abs=1e-5)


def _flat(tree):
  return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])
