"""The trainer's step on 8 fake CPU devices: every mesh trains the same model as one device.

A tiny model (2 ViViT blocks, two hallucination streams, CENet, alternating update scheme) is
set up by `setup.Setup` (the trainer's) and trained for 3 steps on meshes (data, fsdp, tensor) = (8, 1, 1),
(2, 4, 1), (2, 2, 2) and on a single device. The losses, parameters and optimiser moments must
agree to float32 round-off, and on (2, 2, 2) the parameters and moments must really be split.
A reduced I3D (BatchNorm in every conv, so batch statistics span the devices' shards) trains
the same on (2, 2, 2) as on one device, running averages included.

The device count is fixed when XLA starts, and the rest of the suite runs on one device, so the
training runs happen in subprocesses running this file as a script (`--devices N --out DIR`).
"""
import json
import os
import subprocess
import sys

MESHES = {'single': (1, 1, 1), 'dp8': (8, 1, 1), 'dp2_fsdp4': (2, 4, 1), 'dp2_fsdp2_tp2': (2, 2, 2)}
I3D_MESHES = {'i3d_single': (1, 1, 1), 'i3d_dp2_fsdp2_tp2': (2, 2, 2)}
STEPS = 3
BATCH = 8
STREAMS = {'s_odf': ('odf', 16), 's_off': ('off', 24)}
TINY = {
    'data.num_frames': 4, 'data.crop_size': 16, 'data.batch_size': BATCH, 'data.num_classes': 5,
    'model.backbone.overrides': {'depth': 2, 'width': 32, 'mlp_dim': 64, 'num_heads': 4,
                                 'patch_size': 8},
    # The patch stem: the sharding check below counts split kernels, and the default conv stem's
    # replicated convs are half of this tiny model (tests/test_vivit.py meshes the conv stem).
    'model.backbone.stem': 'patch',
    # Dropout and drop path on: their masks must not depend on how the batch is split.
    'model.backbone.dropout': 0.1, 'model.backbone.stochastic_depth': 0.2,
    'model.streams.sketch_dim': 16, 'model.fusion.out_dim': 24, 'model.cenet.hidden_dim': 8,
    # The paper's co-supervision: both passes update (and keep Adam moments of) the backbone,
    # so both passes' backbone gradients and moments are checked across meshes.
    'loss.hal_pass_trains_backbone': True,
    # Adam divides by sqrt(nu) + eps: a large eps stops it from blowing round-off in gradients
    # that are zero in exact arithmetic (the attention key bias) up to lr-sized updates.
    'optim.warmup_steps': 0, 'optim.lr': 1e-3, 'optim.eps': 1e-3,
}
# configs/i3d.py at 1/8 width, one Inception block per stage, 8 x 32 x 32 clips. At lr 1e-3 this
# tiny BatchNorm net is chaotic: on one device, two equal conv implementations (per-tap 2-D vs
# native 3-D) drift 5-8% apart in Adam moments within 3 steps (max-pool argmax flips); at 1e-4
# they agree to 1e-4, so a mesh's own error shows.
I3D_TINY = {
    'data.num_frames': 8, 'data.crop_size': 32, 'data.batch_size': BATCH, 'data.num_classes': 5,
    'model.backbone.variant': 'w0.125/111',
    'model.streams.use_groups': (),  # configs/i3d.py names three groups; the manifest has two
    'model.streams.sketch_dim': 16, 'model.fusion.out_dim': 24, 'model.cenet.hidden_dim': 8,
    'optim.warmup_steps': 0, 'optim.lr': 1e-4, 'optim.eps': 1e-3,
}


# ---------------------------------------------------------------------------------------------
# Worker (runs in a subprocess with XLA_FLAGS set before jax starts).
# ---------------------------------------------------------------------------------------------
def _config(aux_dir, mesh, i3d=False):
  import configs_for_tests  # pylint: disable=g-import-not-at-top
  return configs_for_tests.load('i3d' if i3d else 'default', 'tiny', {
      **(I3D_TINY if i3d else TINY), 'data.aux_dir': aux_dir,
      'mesh.shape': dict(zip(('data', 'fsdp', 'tensor'), mesh))})


def _batches(config):
  """STEPS fixed random batches shaped like the input pipeline's."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  d = config.data
  out = []
  for _ in range(STEPS):
    out.append({
        'video': rng.normal(size=(BATCH, d.num_frames, d.crop_size, d.crop_size, 3)).astype(
            np.float32),
        'label': rng.integers(0, d.num_classes, BATCH).astype(np.int32),
        'valid': np.ones(BATCH, np.float32),
        'aux': {n: rng.normal(size=(BATCH, dim)).astype(np.float32)
                for n, (_, dim) in STREAMS.items()},
        'aux_mask': {n: np.ones(BATCH, np.float32) for n in STREAMS},
        'aux_bad': np.zeros(BATCH, np.int32)})
  return out


def _spec(array):
  return [a if a is None or isinstance(a, str) else list(a) for a in array.sharding.spec]


def _run_mesh(name, mesh, aux_dir, out_dir, i3d=False):
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from halluc_jax import setup as setup_lib  # pylint: disable=g-import-not-at-top
  from halluc_jax.data import pipeline  # pylint: disable=g-import-not-at-top

  config = _config(aux_dir, mesh, i3d)
  config.train.num_train_steps = 100
  setup = setup_lib.Setup(config, steps_per_epoch=10)
  state = setup.init_state()
  losses = []
  batches = [pipeline.device_put_batch(b, setup.batch_sharding) for b in _batches(config)]
  with setup.context():
    lowered = setup.jit_train_step().lower(state, batches[0])
    step = lowered.compile()
    for batch in batches:
      state, metrics = step(state, batch)
      losses.append(float(metrics['loss']))
  # The model's head / MLP activation constraints, as the lowered program carries them.
  tensor_constraints = [line for line in lowered.as_text().splitlines()
                        if 'sharding_constraint' in line and '"tensor"' in line]
  arrays = {'losses': np.asarray(losses)}
  info = {'mesh': {k: int(v) for k, v in setup.mesh.shape.items()}, 'specs': {},
          'shard_shapes': {}, 'param_bytes': 0, 'param_bytes_device0': 0,
          'tensor_constraints': len(tensor_constraints)}
  for prefix, tree in (('params', state.params), ('opt', state.opt_state),
                       ('stats', state.batch_stats)):
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
      key = prefix + jax.tree_util.keystr(path)
      arrays[key] = np.asarray(jax.device_get(leaf))
      info['specs'][key] = _spec(leaf)
      info['shard_shapes'][key] = list(leaf.addressable_shards[0].data.shape)
      if prefix == 'params':
        info['param_bytes'] += leaf.nbytes
        info['param_bytes_device0'] += leaf.addressable_shards[0].data.nbytes
  np.savez(os.path.join(out_dir, f'{name}.npz'), **arrays)
  with open(os.path.join(out_dir, f'{name}.json'), 'w') as f:
    json.dump(info, f)


def _main(argv):
  num_devices, out_dir = int(argv[argv.index('--devices') + 1]), argv[argv.index('--out') + 1]
  os.environ['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={num_devices}'
  os.environ['JAX_PLATFORMS'] = 'cpu'
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update('jax_disable_most_optimizations', True)  # tiny model: compile time rules
  aux_dir = os.path.join(out_dir, 'aux')  # a manifest is all setup.Setup reads of the targets
  os.makedirs(aux_dir, exist_ok=True)
  with open(os.path.join(aux_dir, 'manifest.json'), 'w') as f:
    json.dump({'streams': {n: {'dim': dim, 'group': g} for n, (g, dim) in STREAMS.items()}}, f)
  for runs, i3d in ((MESHES, False), (I3D_MESHES, True)):
    for name, mesh in runs.items():
      if mesh[0] * mesh[1] * mesh[2] == num_devices:
        _run_mesh(name, mesh, aux_dir, out_dir, i3d)


# ---------------------------------------------------------------------------------------------
# Tests.
# ---------------------------------------------------------------------------------------------
if __name__ != '__main__':
  import numpy as np  # pylint: disable=g-import-not-at-top
  import pytest  # pylint: disable=g-import-not-at-top

  @pytest.fixture(scope='module')
  def runs(tmp_path_factory):
    """{mesh name: (npz arrays, json info)} from the two worker processes (1 and 8 devices)."""
    out = tmp_path_factory.mktemp('mesh_equivalence')
    env = dict(os.environ)
    env.pop('XLA_FLAGS', None)
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__), '--devices', str(n),
                               '--out', str(out)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for n in (1, 8)]
    for proc in procs:  # both at once: each is mostly single-threaded compilation
      output, _ = proc.communicate(timeout=900)
      assert proc.returncode == 0, output[-4000:]
    result = {}
    for name in {**MESHES, **I3D_MESHES}:
      with open(out / f'{name}.json') as f:
        result[name] = (dict(np.load(out / f'{name}.npz')), json.load(f))
    return result

  @pytest.mark.parametrize('name', [n for n in {**MESHES, **I3D_MESHES} if 'single' not in n])
  def test_mesh_trains_like_one_device(runs, name):
    ref, _ = runs['i3d_single' if name.startswith('i3d') else 'single']
    got, info = runs[name]
    assert info['mesh'] == dict(zip(('data', 'fsdp', 'tensor'),
                                    {**MESHES, **I3D_MESHES}[name]))
    assert set(got) == set(ref)
    assert np.isfinite(ref['losses']).all() and len(ref['losses']) == STEPS
    assert len(set(ref['losses'].round(5))) == STEPS  # the model really trains
    # Measured: losses agree to ~5e-6 relative, leaves to ~2e-4 (round-off of the reordered
    # reductions, grown over 3 Adam steps); a wrong gradient reduction or dropout mask is O(1).
    np.testing.assert_allclose(got['losses'], ref['losses'], rtol=5e-5)
    for key in ref:
      if key == 'losses':
        continue
      if ref[key].dtype.kind != 'f':  # step counters
        np.testing.assert_array_equal(got[key], ref[key], err_msg=key)
        continue
      # Normwise per leaf: single elements of Adam moments can cancel to round-off size. The
      # floor covers leaves whose exact gradient is zero (the attention key bias: noise only).
      rms = lambda x: float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
      assert rms(got[key] - ref[key]) <= 2e-3 * rms(ref[key]) + 1e-8, key

  def test_fsdp_and_tensor_parallel_shard_params_and_moments(runs):
    _, info = runs['dp2_fsdp2_tp2']
    specs, shapes = info['specs'], info['shard_shapes']
    block = "params['backbone']['encoder']['block_00']"
    want = {"['mlp']['fc1']['kernel']": (['fsdp', 'tensor'], [16, 32]),
            "['mlp']['fc2']['kernel']": (['tensor', 'fsdp'], [32, 16]),
            "['attention']['query']['kernel']": (['fsdp', 'tensor', None], [16, 2, 8]),
            "['attention']['out']['kernel']": (['tensor', None, 'fsdp'], [2, 8, 16])}
    for suffix, (spec, shard_shape) in want.items():
      assert specs[block + suffix] == spec, suffix
      assert shapes[block + suffix] == shard_shape, suffix
      # Both passes' Adam moments (mu, nu) of that kernel are split the same way.
      moments = [k for k in specs if k.startswith('opt') and k.endswith(
          "['backbone']['encoder']['block_00']" + suffix)]
      assert len(moments) >= 4, (suffix, moments)
      for k in moments:
        assert specs[k] == spec and shapes[k] == shard_shape, k
    # Each device holds well under half of the parameters (kernels split 4 ways, the rest 2 or 1).
    assert info['param_bytes_device0'] < 0.4 * info['param_bytes']
    # The model's activation constraints reached the program (the mesh was in context): q, k,
    # v and the attention output split by heads, the MLP hidden layer by mlp, in both blocks
    # and both passes (the backward pass adds its own).
    assert info['tensor_constraints'] >= 2 * 2 * 5, info['tensor_constraints']
    dp_info = runs['dp8'][1]
    assert dp_info['param_bytes_device0'] == dp_info['param_bytes']  # pure DP: replicated

  def test_i3d_backbone_is_replicated_and_its_statistics_train(runs):
    """The conv rules replicate I3D's kernels (configs/default.py); its BatchNorm running
    averages live in batch_stats['backbone'] and moved (compared across meshes above)."""
    got, info = runs['i3d_dp2_fsdp2_tp2']
    kernel = "params['backbone']['Mixed_5c']['b1b']['conv3d']['kernel']"
    assert info['specs'][kernel] == [None] * 5
    stats = [k for k in got if k.startswith("stats['backbone']")]
    assert len(stats) == 2 * 21  # mean and var of 3 stem units + 3 blocks x 6 units
    assert any(np.abs(got[k]).max() > 0 for k in stats if k.endswith("['mean']"))


if __name__ == '__main__':
  _main(sys.argv)
