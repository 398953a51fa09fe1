"""Training metrics: clu writers, step/data-wait timing, and a terminal progress line.

Per-step metrics stay on device until a log step (no host sync per step); at a log step they
are averaged (losses, statistics) or summed (counts) over the steps since the last log and
written to TensorBoard + the log through clu, with throughput and the fraction of wall time
the loop spent waiting for the input pipeline.
"""
import logging
import os
import sys
import time

import jax
import numpy as np
from clu import metric_writers

# Metrics summed over the logging window (counts); everything else is averaged.
COUNT_METRICS = ('num_invalid', 'num_aux_bad')


class _DropLibraryInfo(logging.Filter):
  """Drops INFO/DEBUG records of chatty libraries (orbax logs ~30 lines per checkpoint)."""

  def __init__(self, libraries):
    super().__init__()
    self._markers = tuple(f'{os.sep}{lib}{os.sep}' for lib in libraries)

  def filter(self, record):
    return record.levelno >= logging.WARNING or not any(
        m in record.pathname for m in self._markers)


def quiet_library_logs(libraries=('orbax',)):
  """Keeps warnings and errors of `libraries` but not their INFO chatter (idempotent)."""
  logger = logging.getLogger('absl')  # orbax logs through absl.logging
  if not any(isinstance(f, _DropLibraryInfo) for f in logger.filters):
    logger.addFilter(_DropLibraryInfo(libraries))


def create_writer(workdir):
  """TensorBoard event files in `workdir` plus the absl log; only process 0 writes files."""
  return metric_writers.create_default_writer(
      workdir, just_logging=jax.process_index() > 0, asynchronous=True)


def format_duration(seconds):
  seconds = int(max(0, seconds))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f'{h}h{m:02d}m{s:02d}s' if h else f'{m}m{s:02d}s'


class TrainMeter:
  """Accumulates device metrics and timing between log steps.

  Usage per step: `with meter.waiting_for_data(): batch = next(it)`, run the step, then
  `meter.add(metrics)`. At a log step `meter.summary(step)` returns host scalars.
  """

  def __init__(self, global_batch_size, total_steps, start_step=0):
    self.global_batch_size = global_batch_size
    self.total_steps = total_steps
    self.total_invalid = 0.0
    self.total_aux_bad = 0.0
    self._pending = []
    self._data_wait = 0.0
    self._window_start = time.perf_counter()
    self._window_step = start_step
    self._paused = 0.0

  class _Timer:

    def __init__(self, meter):
      self._meter = meter

    def __enter__(self):
      self._t0 = time.perf_counter()

    def __exit__(self, *exc):
      self._meter._data_wait += time.perf_counter() - self._t0  # pylint: disable=protected-access
      return False

  def waiting_for_data(self):
    return self._Timer(self)

  def add(self, device_metrics):
    self._pending.append(device_metrics)

  def restart_window(self, step):
    """Starts the throughput window afresh (after the first, compiling, step)."""
    self._window_start, self._window_step = time.perf_counter(), step
    self._data_wait = self._paused = 0.0

  def exclude(self, seconds):
    """Removes time spent outside training (evaluation, checkpoint waits) from the window."""
    self._paused += seconds

  def summary(self, step):
    """Host scalars for the window ending at `step` (blocks on the pending metrics)."""
    host = jax.device_get(self._pending)
    self._pending = []
    out = {}
    if host:
      for k in host[0]:
        vals = np.asarray([float(np.asarray(m[k])) for m in host])
        out[k] = float(vals.sum() if k in COUNT_METRICS else vals.mean())
    self.total_invalid += out.get('num_invalid', 0.0)
    self.total_aux_bad += out.get('num_aux_bad', 0.0)
    out['skipped_videos_total'] = self.total_invalid
    out['aux_bad_total'] = self.total_aux_bad
    elapsed = max(1e-9, time.perf_counter() - self._window_start - self._paused)
    steps = step - self._window_step
    if steps > 0:  # no throughput for a window holding only the compiling first step
      out['steps_per_sec'] = steps / elapsed
      out['clips_per_sec'] = steps * self.global_batch_size / elapsed
      out['data_wait_frac'] = min(1.0, self._data_wait / elapsed)
    self.restart_window(step)
    return out

  def eta_seconds(self, step, scalars):
    rate = scalars.get('steps_per_sec', 0.0)
    return (self.total_steps - step) / rate if rate > 0 else float('inf')


def progress_line(step, total_steps, scalars, eta_s):
  """One compact line: step, losses, throughput, data wait, skipped videos, ETA."""
  parts = [f'step {step}/{total_steps} ({100.0 * step / max(1, total_steps):.0f}%)',
           f"loss {scalars.get('loss', float('nan')):.4f}"]
  for key, label in (('cls_loss', 'cls'), ('hal_loss', 'hal')):
    if key in scalars:
      parts.append(f'{label} {scalars[key]:.4f}')
  if 'lr' in scalars:
    parts.append(f"lr {scalars['lr']:.2e}")
  if 'clips_per_sec' in scalars:
    parts.append(f"{scalars['clips_per_sec']:.1f} clips/s")
    parts.append(f"data wait {100 * scalars['data_wait_frac']:.0f}%")
  if scalars.get('skipped_videos_total'):
    parts.append(f"skipped {int(scalars['skipped_videos_total'])}")
  parts.append(f'ETA {format_duration(eta_s)}' if np.isfinite(eta_s) else 'ETA ?')
  return ' | '.join(parts)


def print_progress(line):
  """The human-facing line goes to stdout, flushed so it shows under pipes and tee; one copy
  per run (process 0), not one per host."""
  if jax.process_index() == 0:
    print(line, file=sys.stdout, flush=True)
