"""One way for tests to build a config: a config file (with a preset) plus dotted overrides.

  config = configs_for_tests.load('default', 'tiny', {'data.batch_size': 8})

`tiny` is `configs/default.py`'s smoke-test preset (also through the ablation rows). For tests
that start a CLI, `write(path, ...)` writes a config file that builds the same config.
"""
import os
import runpy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def path_of(name):
  """configs/<name>.py of the repository."""
  return os.path.join(REPO, 'configs', f'{name}.py')


def override(config, overrides):
  """Sets `{'a.b.c': value}` entries on `config` in place (a dict value replaces the field's
  whole dict, it is not merged into it) and returns it; a key that names no field is an error."""
  for key, value in (overrides or {}).items():
    *parents, leaf = key.split('.')
    node = config
    for parent in parents:
      node = node[parent]
    if leaf not in node:
      raise KeyError(f'{key}: no such config field')
    node[leaf] = value
  return config


def load(name='default', arg='tiny', overrides=None):
  """configs/<name>.py's `get_config(arg)` with `overrides` applied."""
  get_config = runpy.run_path(path_of(name))['get_config']
  return override(get_config(arg) if arg else get_config(), overrides)


_FILE = '''"""Test config written by tests/configs_for_tests.py."""
import sys

sys.path.insert(0, {tests!r})
import configs_for_tests  # pylint: disable=g-import-not-at-top,wrong-import-position


def get_config():
  return configs_for_tests.load({name!r}, {arg!r}, {overrides!r})
'''


def write(path, name='default', arg='tiny', overrides=None):
  """Writes a config file at `path` that builds `load(name, arg, overrides)`; returns `path`."""
  with open(path, 'w') as f:
    f.write(_FILE.format(tests=os.path.dirname(os.path.abspath(__file__)), name=name, arg=arg,
                         overrides=dict(overrides or {})))
  return str(path)


def save_run(workdir, config, state):
  """`workdir` as the trainer leaves it, for readers of finished runs: config.json and one
  checkpoint (step 0) of `state`."""
  from halluc_jax import checkpointing  # pylint: disable=g-import-not-at-top
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(config.to_json_best_effort())
  ckpt = checkpointing.Checkpointer(os.path.join(str(workdir), 'checkpoints'), config.checkpoint)
  ckpt.save(0, state)
  ckpt.wait()
  ckpt.close()
  return str(workdir)
