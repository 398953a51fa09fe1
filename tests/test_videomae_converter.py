"""VideoMAE checkpoints -> our ViViT (halluc_jax/models/converters): parity with transformers.

A randomly initialised `transformers.VideoMAEForVideoClassification` (built here, nothing
downloaded) and our ViViT with its converted weights must give the same pooled features and logits
on the same clip, for two sizes, from both checkpoint layouts. Skipped without the '.[bench]' extra
(torch, transformers); the key-coverage tests run everywhere.
"""
import flax.linen as nn
import jax
import numpy as np
import pytest

from halluc_jax.models import vivit
from halluc_jax.models.converters import state_dict as state_dict_lib
from halluc_jax.models.converters import videomae
from halluc_jax.models.variants import ViTSize

SIZES = ((64, 2, 2, 128), (96, 3, 3, 192))  # width, depth, heads, mlp
FRAMES, CROP, PATCH, TUBELET, CLASSES = 4, 32, 16, 2, 5


def _hf_model(width, depth, heads, mlp, seed=0):
  torch = pytest.importorskip('torch')
  transformers = pytest.importorskip('transformers')
  torch.manual_seed(seed)
  cfg = transformers.VideoMAEConfig(
      image_size=CROP, patch_size=PATCH, num_frames=FRAMES, tubelet_size=TUBELET,
      hidden_size=width, num_hidden_layers=depth, num_attention_heads=heads,
      intermediate_size=mlp, num_labels=CLASSES, use_mean_pooling=True)
  model = transformers.VideoMAEForVideoClassification(cfg).eval()
  with torch.no_grad():  # random non-zero biases and norms, so a dropped one shows
    for name, p in model.named_parameters():
      if name.endswith('bias') or 'norm' in name:
        p.add_(0.1 * torch.randn_like(p))
  return model


def _state(model):
  return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def _original_layout(hf):
  """The same weights named as the VideoMAE repository names them (written out independently)."""
  out = {'patch_embed.proj.weight': hf['videomae.embeddings.patch_embeddings.projection.weight'],
         'patch_embed.proj.bias': hf['videomae.embeddings.patch_embeddings.projection.bias'],
         'fc_norm.weight': hf['fc_norm.weight'], 'fc_norm.bias': hf['fc_norm.bias'],
         'head.weight': hf['classifier.weight'], 'head.bias': hf['classifier.bias']}
  depth = 1 + max(int(k.split('.')[3]) for k in hf if k.startswith('videomae.encoder.layer.'))
  for i in range(depth):
    h, o = f'videomae.encoder.layer.{i}.', f'module.blocks.{i}.'
    a = h + 'attention.attention.'
    out[o + 'attn.qkv.weight'] = np.concatenate(
        [hf[a + 'query.weight'], hf[a + 'key.weight'], hf[a + 'value.weight']], 0)
    out[o + 'attn.q_bias'] = hf.get(a + 'query.bias', hf.get(a + 'q_bias'))
    out[o + 'attn.v_bias'] = hf.get(a + 'value.bias', hf.get(a + 'v_bias'))
    for ours, theirs in (('attn.proj', 'attention.output.dense'), ('norm1', 'layernorm_before'),
                         ('norm2', 'layernorm_after'), ('mlp.fc1', 'intermediate.dense'),
                         ('mlp.fc2', 'output.dense')):
      for leaf in ('weight', 'bias'):
        out[f'{o}{ours}.{leaf}'] = hf[f'{h}{theirs}.{leaf}']
  return {'model': out}  # wrapped as the training scripts save it


def _ours(width, depth, heads, mlp):
  return vivit.ViViT(ViTSize(width, depth, mlp, heads, PATCH, TUBELET), posemb='sincos',
                     stem='patch', gelu='erf')


def _rel(a, b):
  return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('layout', ['hf', 'original'])
def test_converted_videomae_gives_transformers_features_and_logits(size, layout):
  torch = pytest.importorskip('torch')
  model = _hf_model(*size)
  hf_state = _state(model)
  state = hf_state if layout == 'hf' else state_dict_lib.unwrap(_original_layout(hf_state))
  params, head = videomae.convert(state, num_heads=size[2])
  clip = np.random.default_rng(1).standard_normal((2, FRAMES, CROP, CROP, 3)).astype(np.float32)
  with torch.no_grad():
    pixels = torch.from_numpy(clip).permute(0, 1, 4, 2, 3)  # [B, T, C, H, W]
    tokens = model.videomae(pixel_values=pixels).last_hidden_state
    want_features = model.fc_norm(tokens.mean(1)).numpy()
    want_logits = model(pixel_values=pixels).logits.numpy()
  ours = _ours(*size)
  # Our tree must be exactly the model's: same names and shapes as its own init.
  init = nn.meta.unbox(ours.init(jax.random.key(0), clip, train=False)['params'])
  assert jax.tree.structure(init) == jax.tree.structure(params)
  assert jax.tree.map(np.shape, init) == jax.tree.map(np.shape, params)
  features = np.asarray(ours.apply({'params': params}, clip, train=False))
  logits = features @ head['kernel'] + head['bias']
  assert _rel(features, want_features) <= 1e-4
  assert _rel(logits, want_logits) <= 1e-4


@pytest.mark.parametrize('gelu', vivit.GELUS)
def test_mlp_gelu_is_the_exact_or_the_tanh_formula(gelu):
  from scipy import special  # pylint: disable=g-import-not-at-top
  x = np.linspace(-4, 4, 64, dtype=np.float32).reshape(2, 32)
  block = vivit.MlpBlock(8, gelu=gelu)
  params = nn.meta.unbox(block.init(jax.random.key(0), x, train=False))
  got = np.asarray(block.apply(params, x, train=False))
  p = params['params']
  h = x @ np.asarray(p['fc1']['kernel']) + np.asarray(p['fc1']['bias'])
  if gelu == 'erf':
    h = 0.5 * h * (1 + special.erf(h / np.sqrt(2)))
  else:
    h = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h ** 3)))
  want = h @ np.asarray(p['fc2']['kernel']) + np.asarray(p['fc2']['bias'])
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _tiny_original_state(width=8, heads=2):
  rng = np.random.default_rng(0)
  r = lambda *s: rng.standard_normal(s).astype(np.float32)
  state = {'patch_embed.proj.weight': r(width, 3, 2, 4, 4), 'patch_embed.proj.bias': r(width),
           'blocks.0.attn.qkv.weight': r(3 * width, width), 'blocks.0.attn.q_bias': r(width),
           'blocks.0.attn.v_bias': r(width), 'fc_norm.weight': r(width), 'fc_norm.bias': r(width)}
  for name, shape in (('attn.proj', (width, width)), ('norm1', None), ('norm2', None),
                      ('mlp.fc1', (16, width)), ('mlp.fc2', (width, 16))):
    state[f'blocks.0.{name}.weight'] = r(*shape) if shape else r(width)
    state[f'blocks.0.{name}.bias'] = r(shape[0] if shape else width)
  return state


def test_every_key_is_used_or_named_in_the_error():
  state = _tiny_original_state()
  params, head = videomae.convert(state, num_heads=2)
  assert head is None and params['encoder']['block_00']['attention']['query']['kernel'].shape == (8, 2, 4)
  with pytest.raises(ValueError, match=r'blocks\.0\.attn\.extra'):
    videomae.convert(dict(state, **{'blocks.0.attn.extra': np.zeros(3)}), num_heads=2)
  missing = dict(state)
  del missing['blocks.0.mlp.fc2.weight']
  with pytest.raises(ValueError, match=r'blocks\.0\.mlp\.fc2\.weight'):
    videomae.convert(missing, num_heads=2)
  with pytest.raises(ValueError, match='Not a VideoMAE checkpoint'):
    videomae.convert({'conv1.weight': np.zeros(3)}, num_heads=2)
  with pytest.raises(ValueError, match='not divisible'):
    videomae.convert(state, num_heads=3)


def test_safetensors_checkpoints_load_without_torch(tmp_path):
  safetensors_numpy = pytest.importorskip('safetensors.numpy')
  state = _tiny_original_state()
  path = str(tmp_path / 'model.safetensors')
  safetensors_numpy.save_file(state, path)
  loaded = state_dict_lib.load(path)
  assert sorted(loaded) == sorted(state)
  np.testing.assert_array_equal(loaded['blocks.0.attn.qkv.weight'], state['blocks.0.attn.qkv.weight'])
  with pytest.raises(FileNotFoundError):
    state_dict_lib.load(str(tmp_path / 'absent.pth'))


def test_sincos_checkpoint_converts_for_other_frame_counts_and_resolutions():
  """The fixed table is not in the checkpoint: ours is recomputed for any grid, as transformers
  recomputes its own for a config with other num_frames / image_size and the same weights."""
  torch = pytest.importorskip('torch')
  transformers = pytest.importorskip('transformers')
  size = SIZES[0]
  small = _hf_model(*size)
  params, _ = videomae.convert(_state(small), num_heads=size[2])
  frames, crop = 8, 48  # grid 4x3x3 instead of 2x2x2
  cfg = transformers.VideoMAEConfig(**dict(small.config.to_dict(), num_frames=frames, image_size=crop))
  big = transformers.VideoMAEForVideoClassification(cfg).eval()
  big.load_state_dict(small.state_dict())
  clip = np.random.default_rng(2).standard_normal((2, frames, crop, crop, 3)).astype(np.float32)
  with torch.no_grad():
    tokens = big.videomae(pixel_values=torch.from_numpy(clip).permute(0, 1, 4, 2, 3)).last_hidden_state
    want = big.fc_norm(tokens.mean(1)).numpy()
  got = np.asarray(_ours(*size).apply({'params': params}, clip, train=False))
  assert _rel(got, want) <= 1e-4
