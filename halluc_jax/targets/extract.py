"""Offline extraction of the hallucination targets (ODF, SDF, OFF) into ArrayRecord shards.

  python -m halluc_jax.targets.extract --config configs/default.py [--config.extract.num_workers=4 ...]

Reads the annotation CSV (config.data; `config.extract.split`: 'train', 'all' or 'a,b'), runs
the streams named in `config.extract.streams` on every video in parallel processes of this
machine, caches each finished video under `<out_dir>/cache/` (a rerun after an interruption or a
config change recomputes only what is missing or stale), then writes
`<out_dir>/targets-*.array_record` + `manifest.json` with `aux_targets.write_targets`; out_dir is
`config.extract.out_dir`, else `config.data.aux_dir`. Cache and manifest format: `extraction.py`
(the engine this CLI shares with `extract_beam.py`, the same run as an Apache Beam pipeline).

  python -m halluc_jax.targets.extract --config ... --stats_only

computes and stores just those statistics for an existing target folder (e.g. one extracted
before they existed), reading its records, without touching the videos.
"""
import concurrent.futures
import json
import multiprocessing
import time

from halluc_jax.targets import extraction


def _run_jobs(jobs, num_workers):
  """Yields worker results, in-process (num_workers=0) or from spawned processes."""
  if num_workers <= 0:
    extraction.init_worker()
    yield from map(extraction.process_video, jobs)
    return
  context = multiprocessing.get_context('spawn')  # fork would copy JAX/grain threads
  with concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=context,
                                              initializer=extraction.init_worker) as pool:
    futures = [pool.submit(extraction.process_video, job) for job in jobs]
    for future in concurrent.futures.as_completed(futures):
      yield future.result()


def run_extraction(config):
  """Extracts, caches and writes the targets of config.extract; returns a summary dict.

  Returns:
    `extraction.write_outputs`' summary: {'out_dir', 'num_videos', 'computed', 'cached',
    'skipped', 'missing_files', 'num_present', 'seconds'}.
  """
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  plan = extraction.plan_extraction(config)
  start = time.time()
  results = tqdm(_run_jobs(plan.jobs, int(config.extract.num_workers)), total=len(plan.jobs),
                 desc='extract', unit='video', disable=not config.extract.progress)
  return extraction.write_outputs(config, plan, results, start)


def main(argv):
  del argv
  from absl import flags  # pylint: disable=g-import-not-at-top
  config = flags.FLAGS.config
  if flags.FLAGS.stats_only:
    from halluc_jax.data import aux_targets  # pylint: disable=g-import-not-at-top
    out_dir = str(config.extract.out_dir or config.data.aux_dir)
    stats = aux_targets.store_train_stats(config, out_dir)
    print(json.dumps({'out_dir': out_dir, 'split': stats['split'],
                      'num_videos': stats['num_videos'],
                      'count': {n: s['count'] for n, s in stats['streams'].items()}}, indent=1))
    return
  print(extraction.summary_json(run_extraction(config)))


if __name__ == '__main__':
  from absl import app  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file('config', 'configs/default.py', 'Config file (ml_collections).',
                                  lock_config=True)
  flags.DEFINE_bool('stats_only', False, 'Only compute the train-split target statistics of the '
                    'existing target folder and store them in its manifest.json.')
  app.run(main)
