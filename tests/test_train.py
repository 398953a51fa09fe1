"""The trainer end to end on the tiny generated dataset: train + eval, resume, signals, bad input.

Every run uses a tiny model (one 32-wide transformer block on 4 x 32 x 32 clips) and in-process
decoding (num_workers=0), so a run costs seconds; the subprocess tests use the real entry point
`python -m halluc_jax.main` with a config file written next to the workdir.
"""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from halluc_jax import train
from halluc_jax.data import annotations
from halluc_jax.data import aux_targets

import configs_for_tests

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / 'configs' / 'default.py'

# On top of configs/default.py's 'tiny' preset (4 x 32 x 32 clips, one-block ViViT, 2 steps).
TINY = {'data.aux_dir': '', 'checkpoint.keep': 3}


_FAST_COMPILE = ('jax_disable_most_optimizations', 'jax_compilation_cache_dir',
                 'jax_persistent_cache_min_compile_time_secs',
                 'jax_persistent_cache_min_entry_size_bytes')


def _read_jax_config(name):
  try:
    return jax.config.read(name)
  except AttributeError:  # options with a context manager are read as attributes
    return getattr(jax.config, name)


@pytest.fixture(scope='module', autouse=True)
def _fast_compilation(tmp_path_factory):
  """Compiles fast: no XLA optimisation passes (tiny models), and identical programs (same
  model in several tests, a rerun after SIGTERM) come from a persistent cache."""
  from jax._src import compilation_cache  # pylint: disable=g-import-not-at-top
  previous = {k: _read_jax_config(k) for k in _FAST_COMPILE}
  cache_dir = tmp_path_factory.mktemp('jax_cache')
  for k, v in zip(_FAST_COMPILE, (True, str(cache_dir), 0, 0)):
    jax.config.update(k, v)
  compilation_cache.reset_cache()
  yield cache_dir
  for k, v in previous.items():
    jax.config.update(k, v)
  compilation_cache.reset_cache()


def _config(root, **overrides):
  return configs_for_tests.load('default', 'tiny', {**TINY, **_data_paths(root), **overrides})


def _load_default():
  return configs_for_tests.load('default', arg=None)


def _data_paths(root):
  return {'data.root': str(root), 'data.annotations': str(pathlib.Path(root) / 'annotations.csv')}


def _write_config(path, root, **overrides):
  return pathlib.Path(configs_for_tests.write(path, 'default', 'tiny',
                                              {**TINY, **_data_paths(root), **overrides}))


def _main_cmd(config_path, workdir, *extra):
  return [sys.executable, '-m', 'halluc_jax.main', f'--config={config_path}',
          f'--workdir={workdir}', *extra]


def _env(cache_dir=None):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL='3',
             JAX_DISABLE_MOST_OPTIMIZATIONS='1')
  if cache_dir:  # runs of one config then compile once between them
    env.update(JAX_COMPILATION_CACHE_DIR=str(cache_dir),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='0')
  return env


def _finished_steps(workdir):
  ckpt = pathlib.Path(workdir) / 'checkpoints'
  return sorted(int(p.name) for p in ckpt.iterdir() if p.name.isdigit()) if ckpt.exists() else []


def _saved_tree(workdir, step):
  """The 'state' item of a checkpoint as a dict of numpy arrays (no target needed)."""
  with ocp.CheckpointManager(pathlib.Path(workdir) / 'checkpoints') as manager:
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
  return jax.tree.map(np.asarray, restored['state'])


def _saved_state(workdir, step):
  return jax.tree.leaves(_saved_tree(workdir, step))


def _same(a, b):
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _train_records(root):
  return annotations.load_annotations(str(root / 'annotations.csv'), str(root), 'train')


def test_rgb_only_alternating_with_corrupt_videos(tiny_dataset, tmp_path):
  """2 alternating steps RGB-only; half the train videos are garbage: skipped, counted, trained."""
  root = tmp_path / 'data'
  shutil.copytree(tiny_dataset, root)
  records = _train_records(root)
  for record in records[::2]:  # 6 of 12: any 8 sampled clips include at least 2 of them
    pathlib.Path(record.path).write_bytes(b'this is not an mp4 file')
  workdir = tmp_path / 'wd'
  out = train.train_and_evaluate(
      _config(root, **{'loss.update_scheme': 'alternating', 'train.eval_every': 1}), workdir)

  assert out['step'] == 2 and not out['preempted']
  scalars = out['train']
  # RGB-only: pass 1 has no stream to train, so its loss and gradient are exactly zero and the
  # objective is the classification loss alone.
  assert scalars['grad_norm_hal'] == 0.0 and scalars['grad_norm_cls'] > 0
  assert scalars['loss'] == pytest.approx(scalars['cls_loss'], rel=1e-6)
  confusion = np.asarray(out['eval']['confusion'])
  # Two steps from initialisation: the CE is still near ln(C), nowhere near 0.
  assert 0.5 * np.log(len(confusion)) < scalars['cls_loss'] < 2 * np.log(len(confusion))
  # 16 clips read over 2 steps, at least 2 of them from the 6 garbage files.
  assert 2 <= scalars['skipped_videos_total'] <= 16
  assert scalars['finite'] == 1.0 and 0.0 <= scalars['data_wait_frac'] <= 1.0
  assert scalars['lr'] > 0
  assert out['eval']['num_videos'] == 12 == confusion.sum()  # every val video scored once
  assert out['eval']['top1'] == pytest.approx(np.trace(confusion) / confusion.sum())
  assert (workdir / 'eval' / 'eval_1.json').is_file()  # periodic eval
  assert (workdir / 'eval' / 'eval_2.json').is_file()  # final eval
  assert any(p.name.startswith('events.out.tfevents') for p in workdir.iterdir())
  assert _finished_steps(workdir) == [1, 2]
  summary = json.loads((workdir / 'summary.json').read_text())
  assert summary['step'] == 2 and summary['train']['skipped_videos_total'] >= 2


def test_aux_targets_joint_masks_nan_targets_then_evaluate_only(tiny_dataset, tmp_path):
  """Joint update with two target streams and a frozen backbone; NaN targets are masked and
  counted, the loss stays finite; evaluate-only mode reproduces the final evaluation."""
  records = annotations.load_annotations(str(tiny_dataset / 'annotations.csv'),
                                         str(tiny_dataset), 'train')
  records += annotations.load_annotations(str(tiny_dataset / 'annotations.csv'),
                                          str(tiny_dataset), 'val')
  rng = np.random.default_rng(0)
  dims = {'odf': 8, 'sdf': 8}
  targets = []
  for i, r in enumerate(records):
    streams = {name: rng.normal(size=d).astype(np.float32) for name, d in dims.items()}
    if r.split == 'train' and i % 2 == 0:
      streams['odf'][3] = np.nan  # must be masked by the store, never reach the loss
    targets.append((r.video_id, streams))
  aux_dir = tmp_path / 'targets'
  aux_targets.write_targets(str(aux_dir), targets,
                            {'streams': {n: {'dim': d, 'group': n} for n, d in dims.items()}})
  workdir = tmp_path / 'wd'
  config = _config(tiny_dataset, **{'data.aux_dir': str(aux_dir), 'loss.update_scheme': 'joint',
                                    'loss.hallucination': 'uncertainty',
                                    'optim.backbone_lr_mult': 0.0})
  out = train.train_and_evaluate(config, workdir)
  first, last = _saved_tree(workdir, 1)['params'], _saved_tree(workdir, 2)['params']
  assert _same(first['backbone'], last['backbone'])  # frozen
  assert not _same(first['streams'], last['streams']) and not _same(first['cenet'], last['cenet'])

  scalars = out['train']
  assert np.isfinite(scalars['loss']) and np.isfinite(scalars['hal_loss'])
  assert np.isfinite(scalars['hal_unc/log_det']) and np.isfinite(scalars['hal_mse/odf'])
  assert scalars['aux_bad_total'] >= 2  # >= 2 of the 6 NaN videos among 8 sampled clips
  assert set(out['eval']['hallucination']) == {'odf', 'sdf'}

  again = train.evaluate_only(config, workdir)
  assert set(again) == {'eval'}  # the tiny dataset has no test split: warned, skipped
  assert again['eval']['step'] == 2 and again['eval']['top1'] == out['eval']['top1']


def test_final_evaluation_on_val_then_test(tmp_path):
  """The end of a run scores the eval split and the held-out test split, each in its folder."""
  from halluc_jax.data import synthetic  # pylint: disable=g-import-not-at-top
  root = tmp_path / 'data'
  synthetic.generate(str(root), num_videos=36, size=48, min_frames=8, max_frames=12, seed=4,
                     val_fraction=0.34, test_fraction=0.34)
  workdir = tmp_path / 'wd'
  out = train.train_and_evaluate(_config(root, **{'loss.update_scheme': 'joint'}), workdir)
  assert out['eval']['split'] == 'val' and out['test']['split'] == 'test'
  assert out['eval']['num_videos'] == out['test']['num_videos'] == 12
  for kind in ('eval', 'test'):
    assert json.loads((workdir / kind / 'eval_latest.json').read_text())['step'] == 2
  summary = json.loads((workdir / 'summary.json').read_text())
  assert summary['test']['top1'] == out['test']['top1'] and summary['test']['split'] == 'test'


def test_nan_loss_stops_with_last_good_checkpoint(tiny_dataset, tmp_path):
  """An exploding learning rate makes the loss non-finite: the run stops, checkpoints predate it."""
  workdir = tmp_path / 'wd'
  config = _config(tiny_dataset, **{'optim.lr': 1e30, 'optim.clip_norm': 0.0,
                                    'train.num_train_steps': 6, 'loss.update_scheme': 'joint'})
  with pytest.raises(train.NonFiniteLossError, match='Non-finite loss at step'):
    train.train_and_evaluate(config, workdir)
  steps = _finished_steps(workdir)
  assert steps and max(steps) < 6
  for leaf in _saved_state(workdir, max(steps)):
    if leaf.dtype.kind == 'f':
      assert np.all(np.isfinite(leaf))


def test_sigterm_checkpoints_and_exits_cleanly_then_resumes(tiny_dataset, tmp_path):
  workdir = tmp_path / 'wd'
  config = _config(tiny_dataset, **{'train.num_train_steps': 1000, 'train.checkpoint_every': 1000})

  default_handler = signal.getsignal(signal.SIGTERM)

  def send_sigterm_once_handled():
    while signal.getsignal(signal.SIGTERM) is default_handler:  # the loop has not started yet
      time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGTERM)

  threading.Thread(target=send_sigterm_once_handled, daemon=True).start()
  out = train.train_and_evaluate(config, workdir)
  assert out['preempted'] and 0 < out['step'] < 1000
  assert _finished_steps(workdir) == [out['step']]

  config.train.num_train_steps = out['step'] + 1
  resumed = train.train_and_evaluate(config, workdir)
  assert resumed['step'] == out['step'] + 1 and not resumed['preempted']


def test_sigkill_resume_gives_identical_parameters(tiny_dataset, tmp_path, _fast_compilation):
  """Kill -9 a run mid-training, rerun the same command: bitwise equal to an uninterrupted run.

  The uninterrupted reference runs in-process with the same config; the subprocesses share its
  compilation cache, so they run the very executables it compiled.
  """
  num_steps = 12
  overrides = {'train.num_train_steps': num_steps}
  config_path = _write_config(tmp_path / 'tiny_config.py', tiny_dataset, **overrides)
  reference, killed = tmp_path / 'reference', tmp_path / 'killed'
  train.train_and_evaluate(_config(tiny_dataset, **overrides), reference)
  env = _env(cache_dir=_fast_compilation)

  proc = subprocess.Popen(_main_cmd(config_path, killed), env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    while not _finished_steps(killed) and proc.poll() is None:
      time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
  finally:
    proc.wait(timeout=60)
  assert proc.returncode == -signal.SIGKILL
  interrupted_at = max(_finished_steps(killed))
  assert interrupted_at < num_steps, 'the run finished before it could be killed'

  subprocess.run(_main_cmd(config_path, killed), env=env, check=True, capture_output=True,
                 timeout=300)
  assert max(_finished_steps(killed)) == num_steps
  assert len(_finished_steps(killed)) <= TINY['checkpoint.keep']
  want, got = _saved_state(reference, num_steps), _saved_state(killed, num_steps)
  assert len(want) == len(got)
  for a, b in zip(want, got):
    assert a.dtype == b.dtype and np.array_equal(a, b)


def test_misspelt_config_key_is_rejected_by_name(tmp_path):
  proc = subprocess.run(_main_cmd(DEFAULT_CONFIG, tmp_path / 'wd', '--config.data.batchsize=4'),
                        env=_env(), capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2
  assert "'data.batchsize'" in proc.stderr and 'batch_size' in proc.stderr
  assert 'Traceback' not in proc.stderr
  assert not (tmp_path / 'wd').exists()


def _optim_cfg(**overrides):
  c = _load_default().optim
  for k, v in overrides.items():
    c[k] = v
  return c


def test_optimizer_groups_schedules_and_frozen_backbone():
  """Each pass changes only its groups; lr multiplier 0 freezes; the paper's halving schedule."""
  from halluc_jax import optim  # pylint: disable=g-import-not-at-top
  from halluc_jax.models import hallucinator  # pylint: disable=g-import-not-at-top
  params = {g: {'kernel': np.ones((3, 2), np.float32), 'bias': np.zeros(2, np.float32)}
            for g in hallucinator.PARAM_GROUPS}
  grads = jax.tree.map(lambda p: np.full_like(p, 0.5), params)
  labels = hallucinator.param_labels(params)

  cfg = _optim_cfg(schedule='halve_every', lr=1e-3, halve_every_epochs=2, warmup_steps=0)
  schedule = optim.make_schedule(cfg, steps_per_epoch=5, total_steps=100)
  assert [float(schedule(s)) for s in (0, 9, 10, 19, 20)] == pytest.approx(
      [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4])
  warm = optim.make_schedule(_optim_cfg(schedule='cosine', lr=1e-3, warmup_steps=4), 5, 20)
  assert float(warm(0)) == 0.0 and float(warm(4)) == pytest.approx(1e-3)
  assert float(warm(20)) == pytest.approx(0.0, abs=1e-9)

  def changed(tx):
    updates, _ = tx.update(grads, tx.init(params), params)
    return {g for g in params if np.any(np.asarray(updates[g]['kernel']) != 0)}

  txs = optim.make_optimizers(cfg, 'alternating', schedule, labels,
                              hallucinator.hallucination_pass_groups(False))
  assert changed(txs['hal']) == {'streams', 'cenet'}
  assert changed(txs['cls']) == set(hallucinator.PARAM_GROUPS)
  frozen = _optim_cfg(backbone_lr_mult=0.0)
  assert changed(optim.make_optimizers(frozen, 'joint', schedule, labels)['joint']) == (
      set(hallucinator.PARAM_GROUPS) - {'backbone'})
  tenth = optim.make_optimizers(_optim_cfg(backbone_lr_mult=0.1, weight_decay=0.0), 'joint',
                                schedule, labels)['joint']
  updates, _ = tenth.update(grads, tenth.init(params), params)
  np.testing.assert_allclose(updates['backbone']['kernel'], 0.1 * updates['haf']['kernel'],
                             rtol=1e-5)
  # optim.hal_pass_backbone_lr_mult scales the backbone in pass 'hal' only.
  hal_tenth = optim.make_optimizers(
      _optim_cfg(hal_pass_backbone_lr_mult=0.1, weight_decay=0.0), 'alternating', schedule,
      labels, hallucinator.hallucination_pass_groups(True))
  for name, factor in (('hal', 0.1), ('cls', 1.0)):
    updates, _ = hal_tenth[name].update(grads, hal_tenth[name].init(params), params)
    np.testing.assert_allclose(updates['backbone']['kernel'],
                               factor * updates['cenet']['kernel'], rtol=1e-5)
  # At 0 the backbone leaves pass 'hal' altogether (not even differentiated there).
  off = optim.pass_groups(_optim_cfg(hal_pass_backbone_lr_mult=0.0), 'alternating',
                          hallucinator.hallucination_pass_groups(True))
  assert 'backbone' not in off['hal'] and 'backbone' in off['cls']
  with pytest.raises(ValueError, match='update_scheme'):
    optim.make_optimizers(cfg, 'sequential', schedule, labels)


def test_mesh_shape_errors_name_the_config():
  from halluc_jax import sharding  # pylint: disable=g-import-not-at-top
  mesh_cfg = _load_default().mesh
  mesh = sharding.make_mesh(mesh_cfg)
  assert mesh.shape['data'] == jax.device_count() and sharding.data_parallel_size(mesh) >= 1
  mesh_cfg.shape.tensor = jax.device_count() + 1
  with pytest.raises(ValueError, match='config.mesh.shape'):
    sharding.make_mesh(mesh_cfg)
