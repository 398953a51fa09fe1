"""The one set-up (halluc_jax/setup.py) that the trainer, the planner and the benchmarks build."""
import jax
import pytest

from halluc_jax import setup as setup_lib
from halluc_jax.data import aux_targets

import configs_for_tests

# name -> (group, dim): two ODF streams and one SDF stream.
MANIFEST_STREAMS = {'det_a': ('odf', 8), 'det_b': ('odf', 4), 'sal': ('sdf', 6)}


def _config(row='default'):
  return configs_for_tests.load(row, 'tiny', {
      'data.num_classes': 5, 'data.crop_size': 16, 'data.batch_size': 2,
      'model.fusion.out_dim': 16, 'model.cenet.hidden_dim': 8})


@pytest.fixture(name='aux_dir')
def _aux_dir(tmp_path):
  manifest = {'streams': {n: {'dim': d, 'group': g} for n, (g, d) in MANIFEST_STREAMS.items()}}
  aux_targets.write_targets(str(tmp_path), [], manifest)
  return str(tmp_path)


def test_abstract_setup_builds_only_the_streams_in_use(aux_dir):
  """A row that narrows the streams by group gets those heads in the planner's set-up too (the
  planner used to compile every manifest stream), and its batches carry those targets only."""
  config = _config('hal_odf')
  config.data.aux_dir = aux_dir
  setup = setup_lib.Setup(config, abstract=True)
  assert setup.streams.dims == {'det_a': 8, 'det_b': 4}
  assert setup.streams.groups == {'det_a': 'odf', 'det_b': 'odf'}
  assert sorted(setup.abstract_variables['params']['streams']) == ['det_a', 'det_b']
  batch = setup.abstract_batch()
  assert {n: s.shape for n, s in batch['aux'].items()} == {'det_a': (2, 8), 'det_b': (2, 4)}
  assert batch['video'].shape == (2, 4, 16, 16, 3)
  assert batch['video'].sharding == setup.batch_sharding
  # Nothing was allocated: the state is shapes with the trainer's shardings.
  leaves = jax.tree.leaves(setup.abstract_state)
  assert leaves and all(isinstance(x, jax.ShapeDtypeStruct) for x in leaves)


def test_use_groups_naming_an_absent_group_is_an_error(aux_dir):
  config = _config()
  config.data.aux_dir = aux_dir
  config.model.streams.use_groups = ('odf', 'flow')
  with pytest.raises(ValueError, match=r"use_groups names \['flow'\].*groups there: \['odf', 'sdf'\]"):
    setup_lib.streams_in_use(config)


def test_schedule_length_abstract_and_given():
  config = _config()
  config.data.aux_dir = ''
  config.train.num_epochs, config.train.num_train_steps = 2.5, -1  # length from the epochs
  abstract = setup_lib.Setup(config, abstract=True)
  assert (abstract.steps_per_epoch, abstract.total_steps) == (
      setup_lib.ABSTRACT_STEPS_PER_EPOCH, 2500)
  assert setup_lib.schedule_lengths(config, steps_per_epoch=7) == (7, 18)  # ceil(17.5)
  config.train.num_train_steps = 40
  assert setup_lib.schedule_lengths(config, steps_per_epoch=7) == (7, 40)


def test_schedule_length_counts_the_train_split(tiny_dataset):
  config = _config()
  config.data.aux_dir = ''
  config.data.root = str(tiny_dataset)
  config.data.annotations = str(tiny_dataset / 'annotations.csv')
  config.train.num_epochs, config.train.num_train_steps, config.data.num_classes = 3, -1, 12
  from halluc_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  num_train = len(pipeline.load_split(config, 'train'))
  steps = max(1, num_train // 2)
  assert setup_lib.Setup(config).steps_per_epoch == steps
  assert setup_lib.schedule_lengths(config) == (steps, 3 * steps)


def test_training_set_up_refuses_streams_without_targets():
  """Streams given by `model.streams.dims` have no targets to train on: only the dry run takes
  them."""
  config = _config()
  config.data.aux_dir = ''
  config.model.streams.dims = {'s1': 8}
  assert setup_lib.Setup(config, abstract=True).streams.dims == {'s1': 8}
  with pytest.raises(ValueError, match="streams.dims gives streams \\['s1'\\].*aux_dir is ''"):
    setup_lib.Setup(config, steps_per_epoch=1)


def test_tiny_preset_reaches_every_row_and_unknown_presets_fail():
  """`get_config('tiny')` shrinks every ablation row the same way and keeps the row's setting."""
  for row in ('rgb_only', 'hal_odf', 'hal_all_unc_grouped_literal', 'i3d_rgb_only'):
    full, tiny = configs_for_tests.load(row, None), configs_for_tests.load(row, 'tiny')
    assert tiny.name == full.name and tiny.loss.to_dict() == full.loss.to_dict()
    assert (tiny.model.streams.use, tiny.model.streams.use_groups) == (
        full.model.streams.use, full.model.streams.use_groups)
    assert tiny.data.aux_dir == full.data.aux_dir
    assert tiny.data.num_workers == 0 and tiny.train.num_train_steps == 2
    assert tiny.data.crop_size < full.data.crop_size
  assert configs_for_tests.load('i3d', 'tiny').model.backbone.variant == 'w0.125/111'
  with pytest.raises(ValueError, match="unknown preset 'huge'"):
    configs_for_tests.load('hal_sdf', 'huge')
  with pytest.raises(KeyError, match='data.batchsize: no such config field'):
    configs_for_tests.load('default', 'tiny', {'data.batchsize': 4})


def test_the_store_serves_the_streams_in_use_and_the_csv_is_read_once(tiny_dataset, aux_dir,
                                                                       monkeypatch):
  from halluc_jax.data import annotations  # pylint: disable=g-import-not-at-top
  from halluc_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  store = aux_targets.AuxTargetStore(aux_dir, streams=['sal', 'det_b'])
  assert store.dims == {'det_b': 4, 'sal': 6}  # manifest order, the named streams only
  with pytest.raises(ValueError, match=r"Streams \['flow'\] are not in the manifest"):
    aux_targets.AuxTargetStore(aux_dir, streams=['flow'])
  config = _config()
  config.data.root, config.data.num_classes = str(tiny_dataset), 12
  config.data.annotations = str(tiny_dataset / 'annotations.csv')
  reads = []
  real_read = annotations.read_annotations
  monkeypatch.setattr(annotations, 'read_annotations',
                      lambda *a, **k: reads.append(a[2]) or real_read(*a, **k))
  pipeline._read_split.cache_clear()  # pylint: disable=protected-access
  first = pipeline.load_split(config, 'train')
  again = pipeline.load_split(config, 'train')
  pipeline.read_split(config, 'val')
  assert first == again and first is not again and reads == ['train', 'val']
