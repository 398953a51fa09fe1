r"""Packs a dataset into a TFDS dataset of pre-resized encoded clips (data/tfds_builder.py).

  python -m halluc_jax.tools.pack_tfds --config configs/X.py --name NAME \
      [--data_dir ~/tensorflow_datasets] [--short_side 256] [--splits train,val,test] \
      [--beam -- --runner=DirectRunner --direct_num_workers=4 \
                 --direct_running_mode=multi_processing]

Reads config.data's dataset in its own format (data/datasets) with its auxiliary targets
(config.data.aux_dir, when extracted) and writes `<data_dir>/<name>/1.0.0/` (ArrayRecord shards,
TFDS's dataset_info.json, and metadata.json with the record table). --short_side 0 stores the
files as they are; N > 0 re-encodes every video (or segment) at short side N. Train on it with
  python -m halluc_jax.main --config configs/X.py --workdir W \
      --config.data.source=tfds:NAME --config.data.tfds_data_dir=DATA_DIR

--beam runs the example-making step as an Apache Beam pipeline; everything after `--` goes to
Beam's PipelineOptions, so the same command runs on Dataflow (--runner=DataflowRunner --project
P --region R --temp_location gs://B/tmp --setup_file ./setup.py, with --data_dir on gs://),
Flink (--runner=FlinkRunner --flink_master=HOST:8081 --environment_type=LOOPBACK) or Spark
(--runner=SparkRunner). A video that cannot be read is packed empty, counted and reported
(printed, and 'failed_videos' in metadata.json), and training drops it; re-encoded videos are
cached under <data_dir>/downloads/halluc_reencoded/<name>/, so a rerun after an interruption
re-encodes only what is missing.
"""
import json
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from halluc_jax.data import tfds_builder


def main(argv):
  beam_args = argv[1:]
  f = flags.FLAGS
  splits = [s.strip() for s in f.splits.split(',') if s.strip()] or None
  if beam_args and not f.beam:
    raise app.UsageError(f'Unknown arguments {beam_args}; Beam options need --beam.')
  result = tfds_builder.pack(f.config, f.name, f.data_dir, splits=splits,
                             short_side=f.short_side, crf=f.crf,
                             beam_options=beam_args if f.beam else None)
  failed = {s: len(v) for s, v in result['failed_videos'].items()}
  print(json.dumps(dict(result, failed_videos=failed,
                        failed_examples={s: sorted(v)[:10]
                                         for s, v in result['failed_videos'].items() if v}),
                   indent=1))
  if sum(failed.values()):
    print(f'pack_tfds: {sum(failed.values())} videos could not be read and were packed empty '
          '(see failed_examples); training drops them.', file=sys.stderr)


if __name__ == '__main__':
  config_flags.DEFINE_config_file('config', 'configs/default.py', 'Config file (ml_collections).',
                                  lock_config=True)
  flags.DEFINE_string('name', None, 'TFDS dataset name of the pack.', required=True)
  flags.DEFINE_string('data_dir', '~/tensorflow_datasets', 'TFDS data directory.')
  flags.DEFINE_integer('short_side', 0, 'Re-encode at this short side (0: store files as is).')
  flags.DEFINE_integer('crf', 20, 'x264 quality of the re-encode (lower: larger, closer).')
  flags.DEFINE_string('splits', '', 'Comma-separated splits ("" = every split).')
  flags.DEFINE_bool('beam', False, 'Make the examples in an Apache Beam pipeline (options '
                    'after --).')
  app.run(main)
