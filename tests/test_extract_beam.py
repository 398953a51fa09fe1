"""The Beam pipeline (DirectRunner) against the extraction CLI on the same real videos: the same
bytes, failures counted not fatal, a rerun from the cache."""
import os
import shutil

import pytest

from halluc_jax.data import aux_targets
from halluc_jax.targets import extract
from halluc_jax.targets import extract_beam
from halluc_jax.targets import extraction

IN_PROCESS = ['--runner=DirectRunner', '--direct_running_mode=in_memory']


def shard_records(out_dir):
  """{shard file name: [record bytes]} of a target folder."""
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  shards = {}
  for name in sorted(os.listdir(out_dir)):
    if name.startswith('targets-') and name.endswith('.array_record'):
      reader = array_record_module.ArrayRecordReader(os.path.join(out_dir, name))
      shards[name] = reader.read_all()
      reader.close()
  return shards


def manifest_of(out_dir):
  manifest = aux_targets.read_manifest(str(out_dir))
  del manifest['created']  # the one field that differs between two runs
  return manifest


@pytest.fixture(scope='module')
def cli_run(extract_config, tmp_path_factory):
  config = extract_config(tmp_path_factory.mktemp('cli'))
  return config, extract.run_extraction(config)


@pytest.fixture(scope='module')
def beam_run(extract_config, tmp_path_factory):
  """Two SDK worker processes, as `-- --direct_num_workers=2 ...` on the command line."""
  config = extract_config(tmp_path_factory.mktemp('beam'), num_workers=2)
  return config, extract_beam.run_pipeline(config)


def test_beam_writes_the_same_bytes_as_the_cli(cli_run, beam_run, extract_dataset):
  (cli_config, cli_summary), (beam_config, beam_summary) = cli_run, beam_run
  cli_shards = shard_records(cli_config.extract.out_dir)
  assert sum(map(len, cli_shards.values())) == extract_dataset[1]
  assert shard_records(beam_config.extract.out_dir) == cli_shards
  assert manifest_of(beam_config.extract.out_dir) == manifest_of(cli_config.extract.out_dir)
  assert sorted(beam_summary['computed']) == sorted(cli_summary['computed'])
  assert len(beam_summary['computed']) == extract_dataset[1] and not beam_summary['cached']


def test_a_failing_video_is_counted_and_the_pipeline_completes(beam_run, extract_dataset):
  config, summary = beam_run
  corrupt_id = extract_dataset[2]
  assert list(summary['skipped']) == [corrupt_id]
  assert 'VideoReadError' in summary['skipped'][corrupt_id]
  manifest = aux_targets.read_manifest(config.extract.out_dir)
  assert manifest['skipped_videos'] == summary['skipped']
  assert manifest['num_videos'] == extract_dataset[1]  # every other video has its record
  outcomes = extract_beam.read_outcomes(config.extract.out_dir)
  assert len(outcomes) == extract_dataset[1] + 1
  assert outcomes[corrupt_id]['error'] == summary['skipped'][corrupt_id]


def test_two_worker_processes_shared_the_videos(beam_run):
  workers = [o['worker'] for o in extract_beam.read_outcomes(beam_run[0].extract.out_dir).values()]
  assert len(set(workers)) == 2
  assert not any(w.endswith(f':{os.getpid()}') for w in workers)  # none ran in this process


def test_rerun_recomputes_nothing(beam_run, extract_config, extract_dataset, tmp_path):
  config, _ = beam_run
  out_dir = tmp_path / 'rerun'
  shutil.copytree(config.extract.out_dir, out_dir)
  again = extract_beam.run_pipeline(extract_config(out_dir), IN_PROCESS)
  assert again['computed'] == []
  assert len(again['cached']) == extract_dataset[1]
  assert list(again['skipped']) == [extract_dataset[2]]  # failures are retried, never cached
  assert shard_records(out_dir) == shard_records(config.extract.out_dir)
  assert manifest_of(out_dir) == manifest_of(config.extract.out_dir)


def test_a_worker_that_cannot_see_the_cache_is_an_error(beam_run, extract_config, tmp_path):
  """A video reported done whose cache file this process cannot read (workers on another file
  system) stops the run with a pointer to the cause instead of losing its targets."""
  config, _ = beam_run
  out_dir = tmp_path / 'unshared'
  shutil.copytree(config.extract.out_dir, out_dir)
  plan = extraction.plan_extraction(extract_config(out_dir))
  job = plan.jobs[0]
  os.remove(job[-1])
  with pytest.raises(RuntimeError, match='storage the workers share'):
    extraction.cached_result(job, computed=True)
