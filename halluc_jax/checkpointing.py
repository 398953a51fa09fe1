"""Checkpoints: train state + data-iterator position in one orbax step, and SIGTERM handling.

Layout: `<workdir>/checkpoints/<step>/{state,data}`. 'state' is the whole `TrainState`
(params, batch_stats, opt_state, step, rng); 'data' holds the grain iterator state of every
process as JSON (`process_<i>-of-<n>.json`, grain's orbax handler), so a resumed run sees
exactly the batches an uninterrupted one would have seen. Older checkpoints hold one JSON item
instead (process 0's state) and are still restored.

Multi-process: every process calls `save` and `restore` with the same step (orbax coordinates
them); each writes and reads the shards of the arrays it holds and its own iterator state.

Atomicity is orbax's: a step is written to a temporary directory and renamed into place only
when complete, so a crash (SIGKILL, power loss) during a save leaves the previous step as the
latest usable one; unfinished temporary directories are removed at the next start.
"""
import json
import logging
import os
import signal
import threading

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp

_BYTES_TAG = '__bytes__'


def _decode_iterator_state(state):
  """Iterator state of an older single-item checkpoint (bytes were stored under a tag)."""
  if isinstance(state, dict) and _BYTES_TAG in state:
    return state[_BYTES_TAG].encode('utf-8')
  return state


class Checkpointer:
  """Saves and restores `(TrainState, data iterator)` pairs under `directory`."""

  def __init__(self, directory, ckpt_cfg):
    """Opens (or creates) the checkpoint directory.

    Args:
      directory: absolute path, normally `<workdir>/checkpoints`.
      ckpt_cfg: `config.checkpoint` (keep, async_save).
    """
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=int(ckpt_cfg.keep) if ckpt_cfg.keep else None,
        create=True,
        cleanup_tmp_directories=True,
        enable_async_checkpointing=bool(ckpt_cfg.async_save),
    )
    self._manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self):
    """The newest complete step, or None."""
    return self._manager.latest_step()

  def all_steps(self):
    return list(self._manager.all_steps())

  def save(self, step, state, data_iterator=None):
    """Saves `state` (and the iterator position) as `step`; async unless configured not to."""
    items = {'state': ocp.args.StandardSave(state)}
    if data_iterator is not None:  # one file per process: each reads its own shard's position
      items['data'] = grain.checkpoint.CheckpointSave(data_iterator)
    saved = self._manager.save(int(step), args=ocp.args.Composite(**items), force=True)
    if saved:
      logging.info('Checkpoint of step %d queued in %s', step, self.directory)
    return saved

  def restore(self, abstract_state, data_iterator=None, step=None):
    """Restores a step (default: the latest) into the shardings of `abstract_state`.

    Args:
      abstract_state: `TrainState` of `jax.ShapeDtypeStruct` leaves carrying the target
        shardings, so arrays are read directly into place (never whole on one device).
      data_iterator: if given, its position is set from the checkpoint.
      step: which step; None for the latest.

    Returns:
      The restored `TrainState`.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f'No checkpoint in {self.directory}.')
    items = {'state': ocp.args.StandardRestore(abstract_state)}
    data_format = self._data_format(step) if data_iterator is not None else None
    if data_format == 'per_process':
      items['data'] = grain.checkpoint.CheckpointRestore(data_iterator)
    elif data_format == 'json':
      items['data'] = ocp.args.JsonRestore()
    restored = self._manager.restore(step, args=ocp.args.Composite(**items))
    if data_format == 'json':
      data_iterator.set_state(_decode_iterator_state(restored['data']['iterator']))
    elif data_iterator is not None and data_format is None:
      logging.warning('Checkpoint %d has no data-iterator state for process %d of %d; the data '
                      'restarts from the beginning of the epoch.', step, jax.process_index(),
                      jax.process_count())
    return restored['state']

  def _data_format(self, step):
    """'per_process' (this process has a file), 'json' (older single item) or None."""
    data_dir = os.path.join(self.directory, str(step), 'data')
    if os.path.isfile(os.path.join(
        data_dir, f'process_{jax.process_index()}-of-{jax.process_count()}.json')):
      return 'per_process'
    if os.path.isfile(os.path.join(data_dir, 'metadata')) and jax.process_count() == 1:
      return 'json'
    return None

  def wait(self):
    """Blocks until any asynchronous save has been committed."""
    self._manager.wait_until_finished()

  def close(self):
    self._manager.wait_until_finished()
    self._manager.close()


def restore_variables(directory, step=None, keys=('params', 'batch_stats')):
  """(step, {key: tree}) of some items of a saved TrainState, on the first local device.

  Reads the checkpoints the trainer writes (`Checkpointer.save`) with the same orbax manager
  layout, read-only, for inference (predict, evaluation of a finished run): only `keys` are
  read, so the optimizer state never has to fit in memory.

  Args:
    directory: `<workdir>/checkpoints`; relative paths are resolved against the current
      directory (orbax needs absolute ones).
    step: which step; None for the latest complete one.
    keys: TrainState fields to read; absent or empty ones come back as {}.

  Raises:
    FileNotFoundError: no complete checkpoint in `directory`.
  """
  directory = os.path.abspath(directory)
  if not os.path.isdir(directory):
    raise FileNotFoundError(f'No checkpoint in {directory}.')
  manager = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(read_only=True),
      item_handlers={'state': ocp.PyTreeCheckpointHandler()})
  try:
    step = manager.latest_step() if step is None else int(step)
    if step is None:
      raise FileNotFoundError(f'No checkpoint in {directory}.')
    tree = manager.item_metadata(step)['state']
    tree = getattr(tree, 'tree', tree)
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = {k: jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                              tree[k]) for k in keys if tree.get(k)}
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
        partial_restore=True)))['state']
  finally:
    manager.close()
  return step, {k: restored.get(k, {}) for k in keys}


def load_run_config(workdir):
  """The ConfigDict a trained workdir ran with (its config.json), or a clear error."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path} not found: --workdir must be a directory written by '
                            '`python -m halluc_jax.main`.')
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def restore_run(workdir):
  """(step, {'params', 'batch_stats'}) of the newest complete checkpoint, or a clear error.

  A run trained with an EMA of its weights (`config.train.ema_decay`) is read as its EMA copy,
  the weights its evaluation scored.
  """
  ckpt_dir = os.path.join(workdir, 'checkpoints')
  try:
    step, variables = restore_variables(
        ckpt_dir, keys=('params', 'batch_stats', 'ema_params'))
    ema = variables.pop('ema_params')
    if ema:
      variables['params'] = ema
    return step, variables
  except FileNotFoundError:
    raise FileNotFoundError(f'No checkpoint in {os.path.abspath(ckpt_dir)}: train first (python -m '
                            'halluc_jax.main --workdir ...) or point --workdir at a trained '
                            'run.') from None


class PreemptionSignal:
  """Turns SIGTERM into a flag the train loop polls at step boundaries.

  The loop then saves a checkpoint and returns normally, instead of dying mid-step. Used as
  a context manager; the previous handler is restored on exit. Outside the main thread
  (where Python cannot install handlers) it stays inert, and so it does in multi-process runs:
  processes signalled at different steps would enter the collective save at different steps
  and hang, so there SIGTERM ends the process and a rerun resumes from the newest periodic
  checkpoint (as after SIGKILL).
  """

  def __init__(self, signals=(signal.SIGTERM,)):
    self._signals = signals
    self._previous = {}
    self.received = None

  def _handle(self, signum, frame):
    del frame
    self.received = signal.Signals(signum).name
    logging.warning('%s received: will checkpoint at the end of this step and exit.',
                    self.received)

  def __enter__(self):
    if threading.current_thread() is threading.main_thread() and jax.process_count() == 1:
      for s in self._signals:
        self._previous[s] = signal.signal(s, self._handle)
    return self

  def __exit__(self, *exc):
    for s, handler in self._previous.items():
      signal.signal(s, handler)
    self._previous.clear()
    return False


def abstract_with_shardings(tree, shardings):
  """`jax.ShapeDtypeStruct` leaves of `tree` carrying `shardings` (a matching tree)."""
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      tree, shardings)
