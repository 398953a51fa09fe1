"""Entry point: `python -m halluc_jax.main --config configs/X.py --workdir DIR [--mode ...]`.

Any config value can be overridden on the command line, e.g. `--config.data.batch_size=4`;
an unknown or misspelt key stops the program with the key named. Rerunning the same command
resumes from the newest checkpoint in the workdir.

Multi-process runs start every process with the same command; `config.distributed` (or the
cluster environment) tells them how to meet, see halluc_jax/distributed.py. With
`--config.dry_run=True` nothing is trained and no data is read: the train step is compiled
ahead of time (halluc_jax/dry_run.py) and its parameters, FLOPs and memory are printed.
"""
import re
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file (.py).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Checkpoints, TensorBoard events, eval results.')
_MODE = flags.DEFINE_enum('mode', 'train_and_evaluate', ['train_and_evaluate', 'evaluate'],
                          'Train (resuming if possible) then evaluate, or only evaluate the '
                          'newest checkpoint.')
_PLATFORM = flags.DEFINE_string('platform', None, "Force a JAX platform ('cpu', 'gpu').")
flags.mark_flags_as_required(['config', 'workdir'])


def _unknown_key_message(error, argv):
  """'Unknown config key ...' naming the override that failed, from ml_collections' error."""
  while error.args and isinstance(error.args[0], Exception):  # AttributeError(KeyError(msg))
    error = error.args[0]
  text = str(error.args[0]) if error.args else str(error)
  missing = re.findall(r"'([^'\\]+)'", text)
  hint = re.search(r'Did you mean "([^"]+)"', text)
  for arg in argv:
    if arg.startswith('--config.'):
      path = arg[len('--config.'):].split('=', 1)[0]
      if missing and missing[0] in path.split('.'):
        msg = f'Unknown config key {path!r} (from {arg})'
        return msg + (f'; did you mean {hint.group(1)!r}?' if hint else '.')
  return f'Config error: {text}'


def parse_flags(argv):
  """absl flag parsing that turns a bad `--config.*` override into a one-line error."""
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError) as e:  # ml_collections: the override names no field
    print(f'FATAL: {_unknown_key_message(e, argv)}', file=sys.stderr)
  except flags.Error as e:
    print(f'FATAL: {e}\nRun with --helpfull for the flags.', file=sys.stderr)
  sys.exit(2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config = _CONFIG.value
  if config.get('dry_run', False):
    from halluc_jax import dry_run  # pylint: disable=g-import-not-at-top  # before jax's backend
    try:
      dry_run.run(config, dry_run.devices_for(config), _PLATFORM.value)
      return
    except (ValueError, FileNotFoundError) as e:
      print(f'FATAL: {e}', file=sys.stderr)
      sys.exit(1)
  import jax  # pylint: disable=g-import-not-at-top
  if _PLATFORM.value:
    jax.config.update('jax_platforms', _PLATFORM.value)
  from halluc_jax import distributed  # pylint: disable=g-import-not-at-top
  from halluc_jax import host_devices  # pylint: disable=g-import-not-at-top
  try:  # before anything touches devices
    host_devices.configure(config.train.get('cpu_devices', 1))
    distributed.initialize(config.distributed)
  except ValueError as e:
    print(f'FATAL: {e}', file=sys.stderr)
    sys.exit(2)
  from halluc_jax import compilation_cache  # pylint: disable=g-import-not-at-top
  compilation_cache.enable(config.train.get('compilation_cache_dir', ''))
  if jax.process_index() > 0:  # one log for the run: the others report warnings and errors
    logging.set_verbosity(logging.WARNING)
  try:  # TensorFlow (used by clu's summary writer) must not grab accelerator memory.
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.set_visible_devices([], 'GPU')
  except ImportError:
    pass
  from halluc_jax import train  # pylint: disable=g-import-not-at-top

  logging.info('JAX devices: %s; process %d of %d', jax.devices(), jax.process_index(),
               jax.process_count())
  try:
    if _MODE.value == 'evaluate':
      results = train.evaluate_only(config, _WORKDIR.value)
    else:
      summary = train.train_and_evaluate(config, _WORKDIR.value)
      results = {k: summary[k] for k in train.final_splits(config) if summary.get(k)}
  except (train.NonFiniteLossError, FileNotFoundError, ValueError) as e:
    logging.debug('Traceback of the error below:', exc_info=True)  # --verbosity=1 shows it
    print(f'FATAL: {e}', file=sys.stderr)
    sys.exit(1)
  if jax.process_index() == 0:
    _print_summary(results, _WORKDIR.value, int(config.data.num_classes),
                   bool(config.data.multi_label))


def _print_summary(results, workdir, num_classes, multi_label=False):
  """The lines a person reads at the end: val and test results, chance, where files went."""
  keys = ('top1', 'top5', 'mean_class_accuracy', 'mAP', 'num_videos')
  for kind, result in results.items():
    figures = ', '.join(f'{k} {result[k]:.4g}' for k in keys if k in result)
    chance = '' if multi_label else f' (chance top1 {1 / num_classes:.4g})'
    print(f"Result ({kind}: split '{result.get('split', kind)}'): {figures}{chance}")
  for kind in results:
    print(f'{kind.capitalize()} JSON and confusion matrix: {workdir}/{kind}/')
  print(f'TensorBoard: tensorboard --logdir {workdir}')


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
