"""Target extraction as an Apache Beam pipeline: the `extract` CLI's run on any Beam runner.

  python -m halluc_jax.targets.extract_beam --config configs/default.py [--config.extract.* ...] \
      -- --runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing

Everything after `--` goes to Beam's PipelineOptions unchanged; with nothing there it runs on
the DirectRunner with `config.extract.num_workers` processes (0: in this process). Same plan,
per-video worker, cache and outputs as `python -m halluc_jax.targets.extract` (both are
`extraction.py`), so the shards and manifest are the same as that CLI's (tests/
test_extract_beam.py): Create(jobs) -> Reshuffle (spreads the videos over the workers) ->
ParDo(process_video) -> one small JSON line per video (video_id, error, computed, worker) in
`<out_dir>/beam_outcomes.jsonl`; then this process reads the targets back from the per-video
cache files (they are the durable per-video output) and writes shards + manifest.

Failures: a video whose extraction raises is reported as failed, counted in the manifest's
`skipped_videos` and the summary's `skipped`, never aborts the pipeline (as in the CLI, a run
in which every video fails is an error, at the end). Resume: a rerun after an interruption finds
the finished videos in the cache and recomputes nothing of them (summary: computed vs cached).
A crash of a worker process itself (native code) is not caught here: the runner retries the
bundle (Dataflow) or fails the run, and a rerun resumes from the cache.
Beam counters extract/{computed,cached,failed} count the same on runners that show metrics.

Other runners (commands as Beam documents them; not tried here, see the limitation below). The
workers need the package: `pip wheel --no-deps -w dist .`, then `--extra_package
dist/halluc_jax-0.1.0-py3-none-any.whl` (installed there with its pinned dependencies; OpenCV's
version changes the targets), or a worker image with `.[beam]` installed.

  ... -- --runner=FlinkRunner --flink_master=HOST:8081 --environment_type=LOOPBACK
  ... -- --runner=SparkRunner --spark_master_url=spark://HOST:7077 --environment_type=LOOPBACK
  ... -- --runner=DataflowRunner --project=PROJECT --region=REGION \
         --temp_location=gs://BUCKET/tmp --extra_package=dist/halluc_jax-0.1.0-py3-none-any.whl

(LOOPBACK runs the SDK workers in the submitting process, for a first try; on a cluster use
`--environment_type=DOCKER --sdk_container_image=IMAGE` or PROCESS.)

Limitation: the videos, `<out_dir>/cache/` and `<out_dir>` are read and written with local file
APIs (numpy, os, ArrayRecord), so every worker and this process must see them at the same POSIX
path: one machine, or a cluster with a shared mount (NFS, a cluster file system) for Flink or
Spark. A gs:// or s3:// out_dir is not implemented, so on Dataflow, whose workers share no file
system, it does not work yet (it needs the cache and outcome reads/writes through
tf.io.gfile or fsspec, and the shards written locally then copied).
"""
import json
import os
import socket
import time

import apache_beam as beam

from halluc_jax.targets import extraction

OUTCOMES = 'beam_outcomes.jsonl'


class _ExtractFn(beam.DoFn):
  """process_video on one job; yields its small outcome (a JSON line: video_id, error,
  computed, worker)."""

  def __init__(self):
    super().__init__()
    self._counts = {k: beam.metrics.Metrics.counter('extract', k)
                    for k in ('computed', 'cached', 'failed')}

  def setup(self):
    extraction.init_worker()

  def process(self, job):
    result = extraction.process_video(job)
    failed = result.entries is None
    self._counts['failed' if failed else 'computed' if result.computed else 'cached'].inc()
    worker = f'{socket.gethostname()}:{os.getpid()}'
    yield json.dumps({'video_id': result.video_id, 'error': result.error,
                      'computed': result.computed, 'worker': worker})


def default_pipeline_args(num_workers):
  """The DirectRunner with `num_workers` processes (0: in this process)."""
  if int(num_workers) <= 0:
    return ['--runner=DirectRunner', '--direct_running_mode=in_memory']
  return ['--runner=DirectRunner', f'--direct_num_workers={int(num_workers)}',
          '--direct_running_mode=multi_processing']


def run_pipeline(config, pipeline_args=None):
  """Extracts the targets of config.extract with Beam; returns `extraction.write_outputs`' summary.

  Args:
    config: as for `python -m halluc_jax.targets.extract`.
    pipeline_args: Beam pipeline options (['--runner=...', ...]); None or [] for
      `default_pipeline_args(config.extract.num_workers)`.
  """
  from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top
  plan = extraction.plan_extraction(config)
  args = list(pipeline_args or default_pipeline_args(config.extract.num_workers))
  outcomes_path = os.path.join(plan.out_dir, OUTCOMES)
  start = time.time()
  with beam.Pipeline(options=pipeline_options.PipelineOptions(args)) as pipeline:
    _ = (pipeline
         | 'Videos' >> beam.Create(plan.jobs)
         | 'Spread' >> beam.Reshuffle()
         | 'Extract' >> beam.ParDo(_ExtractFn())
         | 'Outcomes' >> beam.io.WriteToText(outcomes_path, shard_name_template=''))
  outcomes = read_outcomes(plan.out_dir)
  missing = [job[0] for job in plan.jobs if job[0] not in outcomes]
  if missing:
    raise RuntimeError(f'The pipeline returned no outcome for {len(missing)} videos, first '
                       f'{missing[:5]}.')
  # Plan order, so the manifest lists skipped videos in CSV order whatever the runner did.
  results = (_result(job, outcomes[job[0]]) for job in plan.jobs)
  return extraction.write_outputs(config, plan, results, start)


def read_outcomes(out_dir):
  """{video_id: {'error', 'computed', 'worker'}} of the last pipeline run into out_dir."""
  with open(os.path.join(out_dir, OUTCOMES)) as f:
    return {o.pop('video_id'): o for o in map(json.loads, f)}


def _result(job, outcome):
  if outcome['error']:
    return extraction.VideoResult(job[0], None, outcome['error'], True)
  return extraction.cached_result(job, outcome['computed'])


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top
  print(extraction.summary_json(run_pipeline(flags.FLAGS.config, argv[1:])))


if __name__ == '__main__':
  from absl import app  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file('config', 'configs/default.py', 'Config file (ml_collections).',
                                  lock_config=True)
  app.run(main)  # absl stops at `--`: what follows reaches main's argv, for Beam
