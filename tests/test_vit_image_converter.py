"""Image ViT checkpoints -> our ViViT (halluc_jax/models/converters/vit_image.py).

timm: a randomly initialised `timm.models.vision_transformer.VisionTransformer` (built here,
nothing downloaded) with mean pooling and our converted ViViT give the same pooled features on
one frame (tubelet 1) and on a clip of identical frames (tubelet 2, both inflations). A
class-token timm model is not the same function once its token is dropped, so that one is
checked by where every array lands. big_vision has no installable reference: a test-local
exporter writes the timm weights in big_vision's `.npz` layout (its own key map, below) and the
conversion must give the timm path's params.
"""
import flax.linen as nn
import jax
import numpy as np
import pytest

from halluc_jax import init_from
from halluc_jax import setup as setup_lib
from halluc_jax.models import vivit
from halluc_jax.models.converters import posemb
from halluc_jax.models.converters import vit_image
from halluc_jax.models.variants import ViTSize
import configs_for_tests  # pylint: disable=g-bad-import-order

timm = pytest.importorskip('timm')
torch = pytest.importorskip('torch')

WIDTH, DEPTH, HEADS, MLP, PATCH, IMG = 64, 2, 4, 256, 8, 32


def _timm_model(class_token=False, seed=0, img=IMG, width=WIDTH, depth=DEPTH, heads=HEADS,
                mlp_ratio=MLP / WIDTH, patch=PATCH):
  torch.manual_seed(seed)
  model = timm.models.vision_transformer.VisionTransformer(
      img_size=img, patch_size=patch, embed_dim=width, depth=depth, num_heads=heads,
      mlp_ratio=mlp_ratio, class_token=class_token, global_pool='token' if class_token else 'avg',
      num_classes=0).eval()
  with torch.no_grad():  # random non-zero biases, norms and tables, so a dropped one shows
    for name, p in model.named_parameters():
      if name.endswith('bias') or 'norm' in name:
        p.add_(0.1 * torch.randn_like(p))
      if name in ('pos_embed', 'cls_token'):
        p.normal_(0, 0.5)
  return model


def _state(model):
  return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _ours(tubelet):
  return vivit.ViViT(ViTSize(WIDTH, DEPTH, MLP, HEADS, PATCH, tubelet), posemb='learned',
                     stem='patch', gelu='erf')


def _rel(a, b):
  return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _convert(state, tubelet, frames, mode='central', **kw):
  grid = (frames // tubelet, IMG // PATCH, IMG // PATCH)
  return vit_image.convert(state, num_heads=HEADS, tubelet=tubelet, model_grid=grid,
                           inflate_mode=mode, **kw)


@pytest.mark.parametrize('tubelet,frames,mode', [(1, 1, 'central'), (2, 4, 'central'),
                                                 (2, 4, 'average')])
def test_converted_timm_vit_gives_timm_pooled_features(tubelet, frames, mode):
  model = _timm_model()
  params, head, notes = _convert(_state(model), tubelet, frames, mode)
  assert head is None and 'fc_norm <- fc_norm' in notes
  image = np.random.default_rng(1).standard_normal((2, IMG, IMG, 3)).astype(np.float32)
  with torch.no_grad():
    want = model(torch.from_numpy(image).permute(0, 3, 1, 2)).numpy()
  clip = np.repeat(image[:, None], frames, axis=1)  # identical frames
  ours = _ours(tubelet)
  init = nn.meta.unbox(ours.init(jax.random.key(0), clip, train=False)['params'])
  assert jax.tree.structure(init) == jax.tree.structure(params)
  assert jax.tree.map(np.shape, init) == jax.tree.map(np.shape, params)
  got = np.asarray(ours.apply({'params': params}, clip, train=False))
  err = _rel(got, want)
  print(f'timm parity tubelet={tubelet} frames={frames} {mode}: max rel err {err:.2e}')
  assert err <= 1e-4


def test_inflation_modes():
  k = np.random.default_rng(0).standard_normal((2, 2, 3, 4)).astype(np.float32)
  central = vit_image.inflate(k, 3, 'central')
  np.testing.assert_array_equal(central[1], k)
  assert not central[0].any() and not central[2].any()
  np.testing.assert_allclose(vit_image.inflate(k, 2, 'average'), np.stack([k / 2, k / 2]))
  np.testing.assert_array_equal(vit_image.inflate(k, 1, 'average'), k[None])
  with pytest.raises(ValueError, match='inflate'):
    vit_image.inflate(k, 2, 'mean')


def test_class_token_model_drops_the_token_and_maps_norm_to_fc_norm():
  """No output parity (timm reads the class token, which also takes part in attention); every
  array must land where the key map says."""
  model = _timm_model(class_token=True)
  state = _state(model)
  assert state['pos_embed'].shape == (1, 1 + (IMG // PATCH) ** 2, WIDTH)
  params, _, notes = _convert(state, 2, 4)
  assert 'cls token dropped with its position entry' in notes and 'fc_norm <- norm' in notes
  np.testing.assert_array_equal(params['fc_norm']['scale'], state['norm.weight'])
  np.testing.assert_array_equal(params['fc_norm']['bias'], state['norm.bias'])
  table = params['posemb']['pos_embedding']
  np.testing.assert_array_equal(table[0, :16], state['pos_embed'][0, 1:])
  np.testing.assert_array_equal(table[0, 16:], state['pos_embed'][0, 1:])  # tiled over t' = 2
  q = params['encoder']['block_01']['attention']['query']
  np.testing.assert_array_equal(q['kernel'].reshape(WIDTH, WIDTH),
                                state['blocks.1.attn.qkv.weight'][:WIDTH].T)
  np.testing.assert_array_equal(q['bias'].reshape(-1), state['blocks.1.attn.qkv.bias'][:WIDTH])


def test_position_table_resized_to_the_model_grid():
  state = _state(_timm_model(img=48))  # 6x6 patches; the model sees 32 px = 4x4
  params, _, notes = _convert(state, 2, 4)
  want = posemb.resize(state['pos_embed'], (1, 6, 6), (1, 4, 4))
  np.testing.assert_allclose(params['posemb']['pos_embedding'], np.tile(want, (1, 2, 1)), rtol=1e-6)
  assert 'posemb.pos_embedding (image table 6x6 -> 4x4, bicubic, tiled over 2 time steps)' in notes
  with pytest.raises(ValueError, match='holds 16 positions; the checkpoint table has 36'):
    _convert(state, 2, 4, source_grid=(4, 4))
  with pytest.raises(ValueError, match="source_grid='h,w'"):
    _convert(dict(state, pos_embed=state['pos_embed'][:, :35]), 2, 4)


def to_big_vision(state, scanned=False, prefix='params/'):
  """The timm weights in big_vision's .npz layout: an independent key map (big_vision's vit.py
  module names), flax kernels [in, out] and q/k/v split into heads [D, H, Dh]."""
  d = state['patch_embed.proj.weight'].shape[0]
  dh = d // HEADS
  out = {'embedding/kernel': state['patch_embed.proj.weight'].transpose(2, 3, 1, 0),
         'embedding/bias': state['patch_embed.proj.bias'],
         'pos_embedding': state['pos_embed'],
         'Transformer/encoder_norm/scale': state['fc_norm.weight'],
         'Transformer/encoder_norm/bias': state['fc_norm.bias']}
  depth = 1 + max(int(k.split('.')[1]) for k in state if k.startswith('blocks.'))
  blocks = []
  for i in range(depth):
    s = lambda n: state[f'blocks.{i}.{n}']  # pylint: disable=cell-var-from-loop
    blk = {'LayerNorm_0/scale': s('norm1.weight'), 'LayerNorm_0/bias': s('norm1.bias'),
           'LayerNorm_1/scale': s('norm2.weight'), 'LayerNorm_1/bias': s('norm2.bias'),
           'MlpBlock_0/Dense_0/kernel': s('mlp.fc1.weight').T, 'MlpBlock_0/Dense_0/bias': s('mlp.fc1.bias'),
           'MlpBlock_0/Dense_1/kernel': s('mlp.fc2.weight').T, 'MlpBlock_0/Dense_1/bias': s('mlp.fc2.bias'),
           'MultiHeadDotProductAttention_0/out/kernel': s('attn.proj.weight').T.reshape(HEADS, dh, d),
           'MultiHeadDotProductAttention_0/out/bias': s('attn.proj.bias')}
    for j, part in enumerate(('query', 'key', 'value')):
      w, b = s('attn.qkv.weight')[j * d:(j + 1) * d], s('attn.qkv.bias')[j * d:(j + 1) * d]
      blk[f'MultiHeadDotProductAttention_0/{part}/kernel'] = w.T.reshape(d, HEADS, dh)
      blk[f'MultiHeadDotProductAttention_0/{part}/bias'] = b.reshape(HEADS, dh)
    blocks.append(blk)
  if scanned:
    out.update({f'Transformer/encoderblock/{k}': np.stack([b[k] for b in blocks]) for k in blocks[0]})
  else:
    out.update({f'Transformer/encoderblock_{i}/{k}': v for i, b in enumerate(blocks) for k, v in b.items()})
  return {prefix + k: v for k, v in out.items()}


def to_original_vit(state):
  """The original ViT repository's names: other module indices, the table under Transformer."""
  renames = (('MultiHeadDotProductAttention_0/', 'MultiHeadDotProductAttention_1/'),
             ('LayerNorm_1/', 'LayerNorm_2/'), ('MlpBlock_0/', 'MlpBlock_3/'),
             ('pos_embedding', 'Transformer/posembed_input/pos_embedding'))
  out = {}
  for name, value in to_big_vision(state, prefix='').items():
    for old, new in renames:
      name = name.replace(old, new) if name.startswith('Transformer/') or old == name else name
    out[name] = value
  return out


@pytest.mark.parametrize('layout', ['big_vision', 'scanned', 'original_vit'])
def test_big_vision_npz_gives_the_timm_params(tmp_path, layout):
  state = _state(_timm_model())
  want, _, _ = _convert(state, 2, 4)
  path = str(tmp_path / 'vit.npz')
  exported = to_original_vit(state) if layout == 'original_vit' else to_big_vision(
      state, scanned=layout == 'scanned')
  if layout == 'original_vit':
    assert 'Transformer/encoderblock_0/MlpBlock_3/Dense_0/kernel' in exported
    assert 'Transformer/posembed_input/pos_embedding' in exported
  np.savez(path, **exported)
  got, _, notes = _convert(vit_image.load_npz(path), 2, 4)
  assert 'fc_norm <- Transformer/encoder_norm' in notes
  assert jax.tree.structure(got) == jax.tree.structure(want)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=0), got, want)


def test_every_key_is_used_or_named_in_the_error():
  state = _state(_timm_model())
  with pytest.raises(ValueError, match=r'blocks\.0\.ls1\.gamma'):
    _convert(dict(state, **{'blocks.0.ls1.gamma': np.ones(WIDTH, np.float32)}), 2, 4)
  missing = dict(state)
  del missing['blocks.1.mlp.fc2.bias']
  with pytest.raises(ValueError, match=r'blocks\.1\.mlp\.fc2\.bias'):
    _convert(missing, 2, 4)
  bv = to_big_vision(state, prefix='')
  with pytest.raises(ValueError, match='pre_logits/kernel'):
    _convert(dict(bv, **{'pre_logits/kernel': np.zeros((WIDTH, WIDTH), np.float32)}), 2, 4)
  del bv['Transformer/encoderblock_1/MlpBlock_0/Dense_1/bias']
  with pytest.raises(ValueError, match='encoderblock_1/MlpBlock_0/Dense_1/bias'):
    _convert(bv, 2, 4)
  with pytest.raises(ValueError, match='Not an image ViT'):
    _convert({'conv1.weight': np.zeros(3)}, 2, 4)
  with pytest.raises(ValueError, match='heads'):
    vit_image.convert(to_big_vision(state), num_heads=2, tubelet=2, model_grid=(2, 4, 4))


def _config(path):
  c = configs_for_tests.load('default', 'tiny')  # Ti/16x2, width 32, 1 block, 2 heads; 4 x 32 px
  b = c.model.backbone
  b.stem, b.posemb, b.gelu = 'patch', 'learned', 'erf'
  c.data.aux_dir = ''
  c.init_from.path, c.init_from.format, c.init_from.inflate = path, 'timm_vit', 'average'
  return c


def test_init_from_apply_loads_a_timm_checkpoint(tmp_path):
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  state = _state(_timm_model(class_token=True, img=48, width=32, depth=1, heads=2, mlp_ratio=2,
                             patch=16))
  path = str(tmp_path / 'vit.safetensors')
  save_file(state, path)
  config = _config(path)
  setup = setup_lib.Setup(config, abstract=True, steps_per_epoch=4)
  fresh = setup.init_state()
  loaded = init_from.apply(config, fresh)
  got = jax.device_get(loaded.params['backbone'])
  want, notes = init_from.converted_variables(config.init_from, config)
  assert any(n.startswith('posemb.pos_embedding (image table 3x3 -> 2x2') for n in notes)
  for path_, value in jax.tree_util.tree_leaves_with_path(want['params']['backbone']):
    leaf = got
    for key in path_:
      leaf = leaf[key.key]
    np.testing.assert_array_equal(leaf, value)
  np.testing.assert_allclose(got['tubelet_embed']['kernel'][0],
                             state['patch_embed.proj.weight'].transpose(2, 3, 1, 0) / 2)
  for bad, match in (({'kind': 'factorised'}, 'spatio_temporal'), ({'posemb': 'sincos'}, "'learned'")):
    config = _config(path)
    config.model.backbone.update(bad)
    with pytest.raises(ValueError, match=match):
      init_from.apply(config, fresh)
