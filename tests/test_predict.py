"""The predict CLI on a really trained tiny workdir written like the main job's (async saves,
several steps, two kept, the final save; uncertainty loss, two streams)."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from halluc_jax import checkpointing

from halluc_jax.tools import predict
from halluc_jax.tools import tables
from halluc_jax import setup as setup_lib
from halluc_jax import train
from halluc_jax.data import annotations
from halluc_jax.data import aux_targets
from halluc_jax.data import pipeline

import configs_for_tests

REPO = pathlib.Path(__file__).resolve().parents[1]
# On top of configs/default.py's 'tiny' preset (4 x 32 x 32 clips, one-block ViViT).
TINY = {
    'data.eval_clips': 2,
    # As the main job writes its workdir: async saves every step, the last two kept.
    'train.num_train_steps': 3, 'checkpoint.async_save': True, 'checkpoint.keep': 2,
    'loss.hallucination': 'uncertainty', 'loss.update_scheme': 'joint',
}


def _config(root, aux_dir):
  return configs_for_tests.load('default', 'tiny', {
      **TINY, 'data.root': str(root), 'data.annotations': str(root / 'annotations.csv'),
      'data.aux_dir': str(aux_dir)})


@pytest.fixture(scope='module')
def trained(tiny_dataset, tmp_path_factory):
  """(config, workdir, val records) of a 3-step run with 'odf' and 'sdf' target streams."""
  tmp = tmp_path_factory.mktemp('predict')
  csv = str(tiny_dataset / 'annotations.csv')
  records = [r for split in ('train', 'val')
             for r in annotations.load_annotations(csv, str(tiny_dataset), split)]
  rng = np.random.default_rng(0)
  aux_targets.write_targets(
      str(tmp / 'targets'),
      [(r.video_id, {'odf': rng.normal(size=8), 'sdf': rng.normal(size=8)}) for r in records],
      {'streams': {'odf': {'dim': 8, 'group': 'odf'}, 'sdf': {'dim': 8, 'group': 'sdf'}}})
  config = _config(tiny_dataset, tmp / 'targets')
  workdir = tmp / 'wd'
  train.train_and_evaluate(config, workdir)
  return config, workdir, [r for r in records if r.split == 'val']


def _cli(*args, cwd=REPO):
  env = dict(os.environ, JAX_PLATFORMS='cpu', PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.run([sys.executable, '-m', 'halluc_jax.tools.predict', *args], capture_output=True,
                        text=True, env=env, cwd=str(cwd), timeout=300)


def test_cli_prints_top5_and_per_stream_uncertainty(trained, tiny_dataset):
  _, workdir, val = trained
  proc = _cli(f'--workdir={workdir}', f'--video={val[0].path}', '--num_clips=3')
  assert proc.returncode == 0, proc.stderr[-2000:]
  out = proc.stdout
  assert '3 views, checkpoint step 3' in out
  classes = (tiny_dataset / 'classes.txt').read_text().split()
  rows = re.findall(r'^\s+\d\. (\S+)\s+([0-9.]+)$', out, flags=re.M)
  assert len(rows) == 5 and all(name in classes for name, _ in rows)
  probs = [float(p) for _, p in rows]
  assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
  unc = dict(re.findall(r'^\s+(odf|sdf)\s+(\S+)$', out, flags=re.M))
  assert set(unc) == {'odf', 'sdf'}
  assert all(np.isfinite(float(v)) and float(v) > 0 for v in unc.values())
  assert "CENet 'grouped'" in out


def test_cli_takes_a_relative_workdir(trained):
  # `bash run.sh` then `predict --workdir workdirs/default`: orbax needs absolute paths, and
  # reading the step's metadata from a relative one returned None (AttributeError on '.tree').
  _, workdir, val = trained
  proc = _cli('--workdir=wd', f'--video={val[0].path}', cwd=workdir.parent)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert 'checkpoint step 3' in proc.stdout


def test_same_preprocessing_and_probabilities_as_the_eval_pipeline(trained):
  """predict_video's class probabilities equal the eval pipeline's views through the model."""
  config, workdir, val = trained
  result = predict.predict_video(str(workdir), val[0].path, top_k=12)
  views = [b['video'][b['video_index'] == 0] for b in pipeline.make_eval_dataset(config, 0, 1)]
  views = np.concatenate(views)
  assert len(views) == result['num_views'] == config.data.eval_clips
  step, variables = checkpointing.restore_run(str(workdir))
  model = setup_lib.build_model(config)
  forward = jax.jit(lambda v, x: model.apply(v, x, train=False)['logits'])
  logits = np.asarray(jax.device_get(forward(variables, views)))
  probs = np.exp(logits - logits.max(1, keepdims=True))
  probs = (probs / probs.sum(1, keepdims=True)).mean(0)
  names = predict.class_names_of(str(workdir), config)
  got = dict(result['top'])
  assert step == 3 and len(got) == 12
  for c, name in enumerate(names):
    assert got[name] == pytest.approx(probs[c], abs=1e-5)
  assert set(result['uncertainty']) == {'odf', 'sdf'}


def test_clear_errors(trained, tmp_path):
  _, workdir, val = trained
  empty = tmp_path / 'empty'
  empty.mkdir()
  shutil.copy(workdir / 'config.json', empty / 'config.json')
  proc = _cli(f'--workdir={empty}', f'--video={val[0].path}')
  assert proc.returncode != 0 and 'No checkpoint in' in proc.stderr
  assert 'Traceback' not in proc.stderr

  bad = tmp_path / 'bad.mp4'
  bad.write_text('not a video')
  with pytest.raises(ValueError, match=r'Cannot read video .*bad\.mp4'):
    predict.predict_video(str(workdir), str(bad))
  with pytest.raises(FileNotFoundError, match='Video file not found'):
    predict.predict_video(str(workdir), str(tmp_path / 'nowhere.mp4'))
  with pytest.raises(FileNotFoundError, match='config.json not found'):
    predict.predict_video(str(tmp_path), str(bad))


def test_tables_renders_the_trained_workdir(trained):
  """tables.py on the trainer's real output layout (config.json, eval/eval_latest.json)."""
  _, workdir, _ = trained
  markdown, rows, skipped = tables.build_table([str(workdir)])
  saved = json.loads((workdir / 'eval' / 'eval_latest.json').read_text())
  assert not skipped and len(rows) == 1
  row = rows[0]
  assert (row['streams'], row['loss'], row['covariance']) == ('all streams', 'Uncert.', 'grouped')
  assert row['top1'] == pytest.approx(100 * saved['top1']) and row['seeds'] == 1
  assert np.isfinite(row['hal_r2']) and f'| {row["name"]} | all streams | Uncert. |' in markdown
