"""Image ViT checkpoints (timm, big_vision) -> our ViViT ('spatio_temporal', patch stem).

Two layouts (docs/method.md 'Pretrained weights'):

  timm        `patch_embed.proj` [D, 3, p, p], `cls_token`, `pos_embed` [1, (1+)N, D],
              `blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}` (torch Linear
              [out, in], q/k/v fused with bias), `norm` or `fc_norm`, `head`.
  big_vision  flat `.npz` names joined by '/' (an optional 'params/' or 'opt/target/' prefix):
              `embedding` [p, p, 3, D], `pos_embedding` [1, N, D] (or the original ViT's
              `Transformer/posembed_input/pos_embedding`, with a class entry), `cls`,
              `Transformer/encoderblock_N/{LayerNorm_a, MultiHeadDotProductAttention_b/{query,
              key, value, out}, LayerNorm_c, MlpBlock_d/{Dense_0, Dense_1}}` (indices 0, 0, 1, 0
              in big_vision, 1, 1, 2, 3 in the original ViT repository; the scanned layout
              `Transformer/encoderblock/...` holds every block on a leading depth axis),
              `Transformer/encoder_norm`, `head`.

What changes on the way:

* The 2-D patch kernel is inflated to the tubelet: 'central' puts it on the central frame
  (index t // 2) and zeros the others, 'average' puts kernel / t on every frame. On a clip of
  identical frames both give the image model's tokens. 'central' is what scenic's ViViT configs
  use (`central_frame_initializer`; the ViViT paper found it the better start).
* The class token is dropped (our ViViT mean-pools its patch tokens), and with it the class
  entry of the position table. The spatial table is resized to the model's grid if needed
  (posemb.py) and tiled over the model's t' time steps.
* The final norm becomes our `fc_norm`, applied after the mean: exact for timm's
  global_pool='avg' models (their `fc_norm`); for a class-token model's `norm` (timm) or
  `encoder_norm` (big_vision, applied to every token before pooling) it is an initialisation,
  not the same function.
* Every key is used or named in an error; the linear head is returned separately.
"""
import os
import re

import numpy as np

from halluc_jax.models.converters import posemb as posemb_lib

INFLATE_MODES = ('central', 'average')
_BV_PREFIXES = ('opt/target/', 'params/')


def detect_layout(state):
  """'timm' or 'big_vision', from the names of `state`."""
  if 'patch_embed.proj.weight' in state:
    return 'timm'
  if any(k.endswith('embedding/kernel') for k in state):
    return 'big_vision'
  raise ValueError('Not an image ViT checkpoint: no patch_embed.proj.weight (timm) or '
                   f'embedding/kernel (big_vision) among {sorted(state)[:8]}...')


def inflate(kernel, tubelet, mode):
  """A 2-D patch kernel [p, p, 3, D] as a tubelet kernel [t, p, p, 3, D] ('central'/'average')."""
  if mode not in INFLATE_MODES:
    raise ValueError(f'config.init_from.inflate={mode!r}; expected one of {INFLATE_MODES}.')
  kernel = np.asarray(kernel, np.float32)
  if mode == 'average':
    return np.repeat(kernel[None] / tubelet, tubelet, axis=0)
  out = np.zeros((tubelet,) + kernel.shape, np.float32)
  out[tubelet // 2] = kernel
  return out


def _take(state, name, used):
  used.add(name)
  return np.asarray(state[name])


def _timm_blocks(state, num_heads, used):
  """Our encoder tree from timm's `blocks.N.*`."""
  depth = 1 + max(int(m.group(1)) for m in (re.match(r'^blocks\.(\d+)\.', k) for k in state)
                  if m)

  def linear(n):  # torch Linear [out, in] -> flax [in, out]
    return {'kernel': _take(state, f'{n}.weight', used).T, 'bias': _take(state, f'{n}.bias', used)}

  def norm(n):
    return {'scale': _take(state, f'{n}.weight', used), 'bias': _take(state, f'{n}.bias', used)}

  encoder = {}
  for i in range(depth):
    p = f'blocks.{i}'
    qkv_w = _take(state, f'{p}.attn.qkv.weight', used)
    qkv_b = _take(state, f'{p}.attn.qkv.bias', used)
    width = qkv_w.shape[1]
    if qkv_w.shape != (3 * width, width) or width % num_heads:
      raise ValueError(f'{p}.attn.qkv.weight has shape {qkv_w.shape}; expected [3D, D] with D '
                       f'divisible by num_heads={num_heads}.')
    dh = width // num_heads
    proj = linear(f'{p}.attn.proj')
    attention = {name: {'kernel': qkv_w[j * width:(j + 1) * width].T.reshape(width, num_heads, dh),
                        'bias': qkv_b[j * width:(j + 1) * width].reshape(num_heads, dh)}
                 for j, name in enumerate(('query', 'key', 'value'))}
    attention['out'] = {'kernel': proj['kernel'].reshape(num_heads, dh, width),
                        'bias': proj['bias']}
    encoder[f'block_{i:02d}'] = {
        'norm1': norm(f'{p}.norm1'), 'norm2': norm(f'{p}.norm2'), 'attention': attention,
        'mlp': {'fc1': linear(f'{p}.mlp.fc1'), 'fc2': linear(f'{p}.mlp.fc2')}}
  return encoder


def _from_timm(state, num_heads, used):
  """(encoder-side params, 2-D kernel, table or None, has cls, head or None, final norm name)."""
  w = _take(state, 'patch_embed.proj.weight', used)  # [D, 3, p, p]
  params = {'encoder': _timm_blocks(state, num_heads, used)}
  final = [n for n in ('fc_norm', 'norm') if f'{n}.weight' in state]
  if len(final) != 1:
    raise ValueError(f'Expected one final norm (fc_norm or norm), found {final}.')
  params['fc_norm'] = {'scale': _take(state, f'{final[0]}.weight', used),
                       'bias': _take(state, f'{final[0]}.bias', used)}
  head = None
  if 'head.weight' in state:
    head = {'kernel': _take(state, 'head.weight', used).T, 'bias': _take(state, 'head.bias', used)}
  table = _take(state, 'pos_embed', used) if 'pos_embed' in state else None
  has_cls = 'cls_token' in state
  used.add('cls_token')
  return (params, w.transpose(2, 3, 1, 0), _take(state, 'patch_embed.proj.bias', used), table,
          has_cls, head, final[0])


def _bv_block_names(state, block):
  """{'norm1', 'norm2', 'attention', 'mlp'} -> module prefix inside one big_vision block."""
  subs = sorted({k[len(block):].split('/')[0] for k in state if k.startswith(block)})
  index = lambda s: int(s.split('_')[-1])
  by_kind = {kind: sorted((s for s in subs if s.startswith(kind + '_')), key=index)
             for kind in ('LayerNorm', 'MultiHeadDotProductAttention', 'MlpBlock')}
  if [len(v) for v in by_kind.values()] != [2, 1, 1]:
    raise ValueError(f'{block}: expected two LayerNorms, one attention and one MlpBlock, '
                     f'have {subs}.')
  ln, (mha,), (mlp,) = by_kind.values()
  return {'norm1': block + ln[0], 'norm2': block + ln[1], 'attention': block + mha,
          'mlp': block + mlp}


def _from_big_vision(state, num_heads, used):
  """As _from_timm, from big_vision names (prefix already removed)."""
  scanned = any(k.startswith('Transformer/encoderblock/') for k in state)
  if scanned:
    depth = int(np.shape(state['Transformer/encoderblock/LayerNorm_0/scale'])[0])
    blocks = ['Transformer/encoderblock/'] * depth
  else:
    depth = 1 + max(int(m.group(1)) for m in
                    (re.match(r'^Transformer/encoderblock_(\d+)/', k) for k in state) if m)
    blocks = [f'Transformer/encoderblock_{i}/' for i in range(depth)]
  encoder = {}
  for i, block in enumerate(blocks):
    names = _bv_block_names(state, block)

    def leaf(n, k, i=i):  # a scanned array holds every block on its first axis
      get = lambda name: _take(state, name, used)[i] if scanned else _take(state, name, used)
      return {k: get(f'{n}/{k}'), 'bias': get(f'{n}/bias')}

    attention = {}
    for part in ('query', 'key', 'value', 'out'):
      attention[part] = leaf(f"{names['attention']}/{part}", 'kernel')
    heads = attention['query']['kernel'].shape[1]
    if heads != num_heads:
      raise ValueError(f'{names["attention"]} has {heads} heads; the model has {num_heads}.')
    encoder[f'block_{i:02d}'] = {
        'norm1': leaf(names['norm1'], 'scale'), 'norm2': leaf(names['norm2'], 'scale'),
        'attention': attention,
        'mlp': {'fc1': leaf(f"{names['mlp']}/Dense_0", 'kernel'),
                'fc2': leaf(f"{names['mlp']}/Dense_1", 'kernel')}}
  params = {'encoder': encoder,
            'fc_norm': {'scale': _take(state, 'Transformer/encoder_norm/scale', used),
                        'bias': _take(state, 'Transformer/encoder_norm/bias', used)}}
  head = None
  if 'head/kernel' in state:
    head = {'kernel': _take(state, 'head/kernel', used), 'bias': _take(state, 'head/bias', used)}
  table = None
  for name in ('pos_embedding', 'Transformer/posembed_input/pos_embedding'):
    if name in state:
      table = _take(state, name, used)
  has_cls = 'cls' in state
  used.add('cls')
  return (params, _take(state, 'embedding/kernel', used), _take(state, 'embedding/bias', used),
          table, has_cls, head, 'Transformer/encoder_norm')


def _strip_prefix(state):
  for prefix in _BV_PREFIXES:
    if any(k.startswith(prefix + 'embedding/') for k in state):
      return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
  return state


def _spatial_table(table, has_cls, given):
  """The patch entries [N, D] of a table [1, (1+)N, D] and its image grid (h, w)."""
  table = np.asarray(table, np.float32).reshape(-1, table.shape[-1])
  n = table.shape[0]
  if given is not None:
    grid = tuple(given[-2:])
    if len(given) == 3 and given[0] != 1:
      raise ValueError(f'config.init_from.source_grid={given}: an image table has t = 1.')
    cls_entries = n - int(np.prod(grid))
    if cls_entries not in (0, 1) or (cls_entries and not has_cls):
      raise ValueError(f'config.init_from.source_grid={given} holds {int(np.prod(grid))} '
                       f'positions; the checkpoint table has {n} '
                       f'(with{"" if has_cls else "out"} a class token).')
  else:
    side = lambda m: int(round(np.sqrt(max(m, 0))))
    cls_entries = 1 if has_cls and side(n - 1) ** 2 == n - 1 and n > 1 else 0
    grid = (side(n - cls_entries),) * 2
    if grid[0] * grid[1] != n - cls_entries:
      raise ValueError(f'Cannot infer the image grid of a {n}-entry position table (square '
                       "assumed): set config.init_from.source_grid='h,w'.")
  return table[cls_entries:], grid, bool(cls_entries)


def convert(state, *, num_heads, tubelet, model_grid, inflate_mode='central', source_grid=None,
            spatial='bicubic'):
  """An image ViT state dict (timm or big_vision layout) -> our ViViT's backbone params.

  Args:
    state: {name: numpy array} (`state_dict.load`, or an .npz's arrays).
    num_heads: attention heads of the model.
    tubelet: the model's tubelet (frames per token).
    model_grid: (t', h', w') token grid of the model.
    inflate_mode: 'central' or 'average' (INFLATE_MODES).
    source_grid: the table's image grid (h, w) or (1, h, w); None = square, inferred.
    spatial: interpolation of the table over space ('bicubic' or 'linear').

  Returns:
    (params, head or None, notes): notes names what was inflated, resized, dropped or renamed.

  Raises:
    ValueError: a missing weight, a shape that does not fit, or a key nothing uses (named).
  """
  layout = detect_layout(state)
  used = set()
  try:
    if layout == 'timm':
      params, k2d, bias, table, has_cls, head, final = _from_timm(state, num_heads, used)
    else:
      state = _strip_prefix(state)
      params, k2d, bias, table, has_cls, head, final = _from_big_vision(state, num_heads, used)
  except KeyError as e:
    raise ValueError(f'The checkpoint lacks {e.args[0]!r} (have e.g. {sorted(state)[:6]}).') from e
  unused = sorted(set(state) - used)
  if unused:
    raise ValueError(f'Checkpoint keys not mapped onto the ViViT: {unused}.')
  if table is None:
    raise ValueError('The checkpoint has no learned position table; image formats need one.')
  params['tubelet_embed'] = {'kernel': inflate(k2d, tubelet, inflate_mode), 'bias': bias}
  notes = [f'tubelet_embed.kernel (2-D patch kernel inflated over {tubelet} frames, '
           f'{inflate_mode})', f'fc_norm <- {final}']
  spatial_table, grid, dropped_cls = _spatial_table(table, has_cls, source_grid)
  if has_cls:
    notes.append('cls token dropped' + (' with its position entry' if dropped_cls else ''))
  t, h, w = model_grid
  image = posemb_lib.resize(spatial_table, (1,) + grid, (1, h, w), spatial)
  params['posemb'] = {'pos_embedding': np.tile(image, (1, t, 1))}
  notes.append(f'posemb.pos_embedding (image table {grid[0]}x{grid[1]} -> {h}x{w}'
               f'{", " + spatial if grid != (h, w) else ""}, tiled over {t} time steps)')
  return params, head, notes


def load_npz(path):
  """{name: numpy array} of a big_vision / original-ViT `.npz` checkpoint."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'No checkpoint at {path}.')
  with np.load(path, allow_pickle=False) as f:
    return {k: f[k] for k in f.files}
