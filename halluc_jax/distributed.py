"""Multi-process start-up: `jax.distributed.initialize` from `config.distributed` or the environment.

Call `initialize` once, before anything touches devices (`jax.devices()`, the first jit).
`config.distributed.mode`:

* 'auto' (default): explicit settings (config, else `JAX_COORDINATOR_ADDRESS`,
  `JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`, `JAX_LOCAL_DEVICE_IDS`) when a coordinator address is
  given; otherwise `jax.distributed.initialize()` without them when the environment is a
  Cloud TPU VM (pod slice) or a SLURM / Open MPI job of more than one task, which JAX then
  configures itself (settings given, e.g. local_device_ids, are passed on); otherwise nothing
  (one process).
* 'explicit': coordinator address, number of processes and process id must all be given.
* 'off': never initialise (one process, e.g. a debugging run inside a SLURM allocation).

CPU backends exchange collectives through gloo (`jax_cpu_collectives_implementation`), so the
same code runs as several processes on one machine, e.g. for the multi-host test.
"""
import logging
import os

MODES = ('auto', 'explicit', 'off')
# config.distributed key -> (its "not given" value, the environment variable used instead).
SETTINGS = {'coordinator_address': ('', 'JAX_COORDINATOR_ADDRESS'),
            'num_processes': (0, 'JAX_NUM_PROCESSES'), 'process_id': (-1, 'JAX_PROCESS_ID'),
            'local_device_ids': ('', 'JAX_LOCAL_DEVICE_IDS')}


def _device_ids(value):
  """'0,1' / 3 / (0, 1) -> [ints]; '' -> None."""
  if isinstance(value, str):
    return [int(v) for v in value.split(',') if v.strip()] or None
  return [int(value)] if isinstance(value, int) else [int(v) for v in value] or None


def explicit_settings(dist_cfg, environ):
  """{coordinator_address, num_processes, process_id[, local_device_ids]} given so far."""
  out = {}
  for key, (unset, env) in SETTINGS.items():
    value = dist_cfg.get(key, unset)
    if value == unset and environ.get(env, ''):
      value = environ[env]
    if value != unset:
      out[key] = value
  for key in ('num_processes', 'process_id'):
    if key in out:
      out[key] = int(out[key])
  if 'local_device_ids' in out:
    out['local_device_ids'] = _device_ids(out['local_device_ids'])
  return out


def detected_cluster(environ):
  """'tpu', 'slurm' or 'ompi' when this process runs in such a multi-process job, else None."""
  if int(environ.get('SLURM_NTASKS', environ.get('SLURM_NPROCS', '1')) or 1) > 1 and (
      'SLURM_PROCID' in environ and 'SLURM_STEP_NODELIST' in environ):  # inside `srun`
    return 'slurm'
  if 'OMPI_MCA_orte_hnp_uri' in environ and int(environ.get('OMPI_COMM_WORLD_SIZE', '2')) > 1:
    return 'ompi'
  if _on_cloud_tpu_vm():
    return 'tpu'
  return None


def _on_cloud_tpu_vm():
  """True on a Cloud TPU VM (libtpu installed and TPU chips visible); no network query."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  if importlib.util.find_spec('libtpu') is None:
    return False
  return any(os.path.exists(p) for p in ('/dev/accel0', '/dev/vfio/0'))


def initialize_kwargs(dist_cfg, environ=None):
  """What `initialize` will do: None (one process), {} (auto-detect) or initialize kwargs.

  Raises:
    ValueError: an unknown mode, or 'explicit' with settings missing (named).
  """
  environ = os.environ if environ is None else environ
  mode = dist_cfg.get('mode', 'auto')
  if mode not in MODES:
    raise ValueError(f'config.distributed.mode={mode!r}; expected one of {MODES}.')
  if mode == 'off':
    return None
  settings = explicit_settings(dist_cfg, environ)
  if mode == 'explicit' or 'coordinator_address' in settings:
    missing = [f'config.distributed.{k} (or ${SETTINGS[k][1]})' for k in
               ('coordinator_address', 'num_processes', 'process_id') if k not in settings]
    if missing:
      raise ValueError(f'Multi-process start-up needs {", ".join(missing)}.')
    if not 0 <= settings['process_id'] < settings['num_processes']:
      raise ValueError(f"config.distributed.process_id={settings['process_id']} is not in "
                       f"[0, num_processes={settings['num_processes']}).")
    return settings
  if detected_cluster(environ):
    return settings  # JAX detects what is unset (e.g. all but local_device_ids)
  if settings:
    raise ValueError(f'config.distributed sets {sorted(settings)} but no coordinator_address '
                     '(or $JAX_COORDINATOR_ADDRESS), and no TPU pod / SLURM / Open MPI job is '
                     'detected to supply it.')
  return None


def initialize(dist_cfg, environ=None):
  """Joins the multi-process job described by `dist_cfg` / the environment (see module doc).

  Args:
    dist_cfg: `config.distributed`.
    environ: environment mapping (default os.environ).

  Returns:
    The kwargs passed to `jax.distributed.initialize` ({} = auto-detected), or None when this
    is a single-process run.
  """
  settings = initialize_kwargs(dist_cfg, environ)
  if settings is None:
    return None
  import jax  # pylint: disable=g-import-not-at-top
  # Cross-process collectives of the CPU backend; accelerator backends ignore this setting.
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  timeout = int(dist_cfg.get('initialization_timeout', 300))
  logging.info('jax.distributed.initialize(%s)',
               ', '.join(f'{k}={v!r}' for k, v in settings.items()) or 'auto-detect')
  jax.distributed.initialize(**settings, initialization_timeout=timeout)
  return settings
