"""Finished runs as dicts, from a training workdir or from a committed run summary JSON.

Workdirs do not outlive the machine that trained them, so each finished run is exported as one
small JSON file (a *run summary*, `FORMAT`) that is committed under `results/`; `tables.py`
renders the same table from either source. A run summary holds:

  format       FORMAT
  name, seed   config `name` (else the workdir's base name) and `config.seed`
  workdir      where the run was exported from (informative only)
  config       the whole config.json dict
  val, test    the eval (validation) and test split results, slimmed by `slim_result`
               (test is null for runs from before the trainer evaluated a test split)
  seconds      training wall time (timing.json, else summary.json; null if neither has it)
  seconds_from which file and key it came from
  git_commit   HEAD of the checkout at export time, best effort (null outside git); the trainer
               does not record the commit it ran, so this is the exporter's
  git_dirty    whether that checkout had uncommitted changes to tracked files
  date         export time, ISO 8601 UTC; evaluated: modification time of the val result
  environment  the trainer's `environment.json` (Python and library versions it ran with; the
               extracted targets depend on OpenCV's), null for runs from before it was written

The file is `<results_dir>/<name>_s<seed>.json`. An existing file is only replaced by the same
run setting (equal config); a different config raises `ExportConflict` naming the file, and
an export that changes nothing but the provenance fields leaves the file untouched.
"""
import datetime
import json
import os
import re
import subprocess

FORMAT = 'halluc_jax.run_summary/1'
ENVIRONMENT_FILE = 'environment.json'
# Distributions whose version can change a run's numbers (OpenCV: the extracted targets).
ENVIRONMENT_PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'numpy', 'grain', 'av',
                        'opencv-contrib-python-headless', 'orbax-checkpoint')


def environment():
  """{'python': version, 'packages': {distribution: version or None}} of this process."""
  import importlib.metadata  # pylint: disable=g-import-not-at-top
  import platform  # pylint: disable=g-import-not-at-top
  packages = {}
  for name in ENVIRONMENT_PACKAGES:
    try:
      packages[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      packages[name] = None
  return {'python': platform.python_version(), 'packages': packages}
# Seconds of training wall time, in the order the trainer may name them in timing.json.
TIMING_KEYS = ('train_seconds', 'wall_seconds', 'total_seconds', 'seconds')
# Scalar fields of an eval result kept in a run summary (per-class dicts are dropped).
RESULT_KEYS = ('split', 'step', 'num_videos', 'num_views', 'multi_label', 'top1', 'top5',
               'mean_class_accuracy', 'mAP')
HALLUCINATION_KEYS = ('cosine', 'r2', 'train_mean_cosine', 'train_mean_r2', 'num_clips')
MAX_CONFUSION = 12  # the confusion matrix is kept up to this many classes
# Fields that say where and when a summary was made, not what the run measured.
PROVENANCE_KEYS = ('workdir', 'git_commit', 'git_dirty', 'date', 'evaluated', 'environment')
# Where the trainer writes each split's result inside a workdir (the first that exists).
RESULT_PATHS = {'val': (('eval', 'eval_latest.json'), ('eval_latest.json',)),
                'test': (('test', 'eval_latest.json'),)}


class ExportConflict(Exception):
  """The summary file exists and holds a run with a different config."""


def get(tree, path, default=None):
  """tree[path[0]][path[1]]... or default where a key is missing."""
  for key in path:
    if not isinstance(tree, dict) or key not in tree:
      return default
    tree = tree[key]
  return tree


def read_json(path):
  with open(path) as f:
    return json.load(f)


def wall_seconds(workdir):
  """(seconds, 'file:key') from timing.json, else summary.json (the trainer's); else Nones."""
  for name in ('timing.json', 'summary.json'):
    path = os.path.join(workdir, name)
    if os.path.isfile(path):
      timing = read_json(path)
      for key in TIMING_KEYS:
        if isinstance(timing.get(key), (int, float)):
          return float(timing[key]), f'{name}:{key}'
  return None, None


def _result_path(workdir, kind):
  paths = [os.path.join(workdir, *parts) for parts in RESULT_PATHS[kind]]
  return next((p for p in paths if os.path.isfile(p)), None)


def load_workdir(workdir):
  """A run dict {'workdir', 'config', 'eval', 'test', 'seconds', ...} or a reason string.

  'eval' is the val result `<workdir>/eval/eval_latest.json` (or `<workdir>/eval_latest.json`),
  'test' the test result `<workdir>/test/eval_latest.json` or None.
  """
  config_path = os.path.join(workdir, 'config.json')
  if not os.path.isfile(config_path):
    return f'{config_path} is missing'
  val_path = _result_path(workdir, 'val')
  if val_path is None:
    return f'{os.path.join(workdir, *RESULT_PATHS["val"][0])} is missing'
  test_path = _result_path(workdir, 'test')
  env_path = os.path.join(workdir, ENVIRONMENT_FILE)
  try:
    seconds, seconds_from = wall_seconds(workdir)
    return {'workdir': workdir, 'config': read_json(config_path), 'eval': read_json(val_path),
            'test': read_json(test_path) if test_path else None, 'seconds': seconds,
            'seconds_from': seconds_from, 'evaluated': _mtime_iso(val_path),
            'environment': read_json(env_path) if os.path.isfile(env_path) else None}
  except (OSError, ValueError) as e:
    return f'unreadable JSON in {workdir}: {e}'


def slim_result(result, split=None):
  """The summary's view of an eval result: scalars, per-stream quality, a small confusion."""
  if result is None:
    return None
  out = {k: result[k] for k in RESULT_KEYS if k in result}
  if 'split' not in out and split:
    out['split'] = split  # the trainer adds it to its return value, not to the file
  out['hallucination'] = {
      stream: {k: q[k] for k in HALLUCINATION_KEYS if k in q}
      for stream, q in (result.get('hallucination') or {}).items()}
  confusion = result.get('confusion')
  if confusion is not None and len(confusion) <= MAX_CONFUSION:
    out['confusion'] = confusion
  return out


def _mtime_iso(path):
  stamp = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
  return stamp.isoformat(timespec='seconds')


def git_provenance():
  """(HEAD commit, dirty) of the checkout holding this package; (None, None) if unknown."""
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  try:
    head = subprocess.run(['git', '-C', repo, 'rev-parse', 'HEAD'], capture_output=True,
                          text=True, timeout=20, check=True).stdout.strip()
    status = subprocess.run(['git', '-C', repo, 'status', '--porcelain', '--untracked-files=no'],
                            capture_output=True, text=True, timeout=20, check=True).stdout
  except (OSError, subprocess.SubprocessError):
    return None, None
  return head or None, bool(status.strip())


def summary_of(run, commit=None, dirty=None):
  """The run summary dict (module docstring) of a run dict from `load_workdir`."""
  config = run['config']
  return {
      'format': FORMAT, 'name': run_name(run), 'seed': config.get('seed'),
      'workdir': run['workdir'], 'config': config,
      'val': slim_result(run['eval'], get(config, ('data', 'eval_split'))),
      'test': slim_result(run.get('test'), get(config, ('data', 'test_split'))),
      'seconds': run.get('seconds'), 'seconds_from': run.get('seconds_from'),
      'git_commit': commit, 'git_dirty': dirty,
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
      'evaluated': run.get('evaluated'),
      'environment': run.get('environment'),
  }


def run_name(run):
  """The row label of a run: config `name`, else the base name of its workdir."""
  return run['config'].get('name') or os.path.basename(os.path.normpath(run['workdir']))


def summary_path(summary, results_dir):
  """<results_dir>/<name>_s<seed>.json, the name made safe for a file name."""
  name = re.sub(r'[^A-Za-z0-9._-]+', '_', str(summary['name']))
  return os.path.join(results_dir, f'{name}_s{summary["seed"]}.json')


def _measured(summary):
  return {k: v for k, v in summary.items() if k not in PROVENANCE_KEYS}


def export(workdir, results_dir):
  """Writes the run summary of a finished workdir; returns (path, 'written'|'updated'|'unchanged').

  Raises:
    ValueError: the workdir is not a finished run (the reason is in the message).
    ExportConflict: the file exists and holds a run with a different config.
  """
  run = load_workdir(workdir)
  if isinstance(run, str):
    raise ValueError(f'cannot export {workdir}: {run}')
  summary = summary_of(run, *git_provenance())
  summary = json.loads(json.dumps(summary))  # as it will read back (tuples -> lists, ...)
  path = summary_path(summary, results_dir)
  status = 'written'
  if os.path.exists(path):
    old = read_json(path)
    if old.get('config') != summary['config']:
      raise ExportConflict(
          f'{path} already holds a run with a different config (from {old.get("workdir")}); '
          f'not overwriting it with {workdir}: move it away or delete it first.')
    if _measured(old) == _measured(summary):
      return path, 'unchanged'
    status = 'updated'
  os.makedirs(results_dir, exist_ok=True)
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(summary, f, indent=1, sort_keys=True, allow_nan=False)
    f.write('\n')
  os.replace(tmp, path)
  return path, status


def load_summary(path):
  """The run dict of a run summary file (same keys as `load_workdir`), or a reason string."""
  if not os.path.isfile(path):
    return f'{path} is missing'
  try:
    summary = read_json(path)
  except (OSError, ValueError) as e:
    return f'unreadable JSON in {path}: {e}'
  if not isinstance(summary, dict) or summary.get('format') != FORMAT:
    return f'{path} is not a run summary ({FORMAT})'
  return {'workdir': summary.get('workdir') or path, 'config': summary['config'],
          'eval': summary['val'], 'test': summary.get('test'), 'seconds': summary.get('seconds'),
          'seconds_from': summary.get('seconds_from'), 'evaluated': summary.get('evaluated'),
          'source': path}
