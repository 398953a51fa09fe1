"""VideoMAE / VideoMAE V2 checkpoints -> our ViViT ('spatio_temporal', patch stem).

Both layouts users have are read (docs/method.md 'Pretrained weights'):

  original  the VideoMAE / VideoMAE V2 repositories' `.pth`: `patch_embed.proj`,
            `blocks.N.{norm1, attn.qkv, attn.q_bias, attn.v_bias, attn.proj, norm2, mlp.fc1,
            mlp.fc2}`, `fc_norm` (or `norm`), `head`, optionally a learned `pos_embed`.
  hf        Hugging Face transformers (`VideoMAEForVideoClassification`, safetensors or
            `pytorch_model.bin`): `videomae.embeddings.patch_embeddings.projection`,
            `videomae.encoder.layer.N.{attention.attention.{query,key,value}, q_bias / v_bias or
            query.bias / value.bias, attention.output.dense, layernorm_before, intermediate.dense,
            output.dense, layernorm_after}`, `fc_norm`, `classifier`.

Both are first renamed to the original layout, then mapped onto our tree: torch Linear weights
[out, in] are transposed; q/k/v split into heads [D, H, Dh]; the key has no bias in VideoMAE, so
ours is zero; the tubelet conv [D, 3, t, p, p] becomes [t, p, p, 3, D]. Every checkpoint key is
either used or named in the error; the classifier head is returned separately (ours is HAF +
PredNet, which a checkpoint's linear head does not fill). The model must use `posemb='sincos'`
(VideoMAE's fixed table) unless the checkpoint has a learned `pos_embed` (then 'learned'; init_from
resizes it to the model's grid with posemb.py), and `gelu='erf'`.
"""
import re

import numpy as np

_HF_RENAMES = (
    (r'^videomae\.embeddings\.patch_embeddings\.projection\.', 'patch_embed.proj.'),
    (r'^videomae\.encoder\.layer\.(\d+)\.attention\.attention\.(q_bias|v_bias)$', r'blocks.\1.attn.\2'),
    (r'^videomae\.encoder\.layer\.(\d+)\.attention\.attention\.query\.bias$', r'blocks.\1.attn.q_bias'),
    (r'^videomae\.encoder\.layer\.(\d+)\.attention\.attention\.value\.bias$', r'blocks.\1.attn.v_bias'),
    (r'^videomae\.encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.weight$',
     r'blocks.\1.attn.\2.weight'),
    (r'^videomae\.encoder\.layer\.(\d+)\.attention\.output\.dense\.', r'blocks.\1.attn.proj.'),
    (r'^videomae\.encoder\.layer\.(\d+)\.layernorm_before\.', r'blocks.\1.norm1.'),
    (r'^videomae\.encoder\.layer\.(\d+)\.layernorm_after\.', r'blocks.\1.norm2.'),
    (r'^videomae\.encoder\.layer\.(\d+)\.intermediate\.dense\.', r'blocks.\1.mlp.fc1.'),
    (r'^videomae\.encoder\.layer\.(\d+)\.output\.dense\.', r'blocks.\1.mlp.fc2.'),
    (r'^videomae\.layernorm\.', 'norm.'),
    (r'^classifier\.', 'head.'),
)


def detect_layout(state):
  """'hf' or 'original', from the names of `state`."""
  if any(k.startswith('videomae.') for k in state):
    return 'hf'
  if any(k.startswith('blocks.') for k in state):
    return 'original'
  raise ValueError('Not a VideoMAE checkpoint: no videomae.* (transformers) or blocks.* '
                   f'(original) weights among {sorted(state)[:8]}...')


def to_original_layout(state):
  """HF names -> the original repository's; q/k/v weights are concatenated into `attn.qkv`."""
  out, qkv = {}, {}
  for name, value in state.items():
    new = name
    for pattern, repl in _HF_RENAMES:
      new, n = re.subn(pattern, repl, name)
      if n:
        break
    m = re.match(r'^blocks\.(\d+)\.attn\.(query|key|value)\.weight$', new)
    if m:
      qkv.setdefault(int(m.group(1)), {})[m.group(2)] = value
      continue
    out[new] = value
  for block, parts in qkv.items():
    if set(parts) != {'query', 'key', 'value'}:
      raise ValueError(f'Block {block} has {sorted(parts)} of query/key/value weights.')
    out[f'blocks.{block}.attn.qkv.weight'] = np.concatenate(
        [parts['query'], parts['key'], parts['value']], 0)
  return out


def _linear(state, name, used):
  used.update({f'{name}.weight', f'{name}.bias'})
  return {'kernel': np.asarray(state[f'{name}.weight']).T,
          'bias': np.asarray(state[f'{name}.bias'])}


def _norm(state, name, used):
  used.update({f'{name}.weight', f'{name}.bias'})
  return {'scale': np.asarray(state[f'{name}.weight']),
          'bias': np.asarray(state[f'{name}.bias'])}


def convert(state, num_heads):
  """A VideoMAE state dict (either layout) -> (backbone params, head params or None).

  Args:
    state: {name: numpy array}, e.g. `state_dict.load(path)`.
    num_heads: attention heads of the model (the checkpoint does not record it).

  Returns:
    (params of our ViViT backbone, {'kernel': [D, C], 'bias': [C]} of the checkpoint's linear
    classifier or None).

  Raises:
    ValueError: a missing weight, a shape that does not fit, or a key nothing uses (named).
  """
  if detect_layout(state) == 'hf':
    state = to_original_layout(state)
  used = set()
  try:
    w = np.asarray(state['patch_embed.proj.weight'])  # [D, 3, t, p, p]
    params = {'tubelet_embed': {'kernel': w.transpose(2, 3, 4, 1, 0),
                                'bias': np.asarray(state['patch_embed.proj.bias'])}}
    used.update({'patch_embed.proj.weight', 'patch_embed.proj.bias'})
    width = w.shape[0]
    if width % num_heads:
      raise ValueError(f'Width {width} is not divisible by num_heads={num_heads}.')
    head_dim = width // num_heads
    depth = 1 + max(int(m.group(1)) for m in
                    (re.match(r'^blocks\.(\d+)\.', k) for k in state) if m)
    encoder = {}
    for i in range(depth):
      p = f'blocks.{i}'
      qkv = np.asarray(state[f'{p}.attn.qkv.weight'])  # [3D, D]
      if qkv.shape != (3 * width, width):
        raise ValueError(f'{p}.attn.qkv.weight has shape {qkv.shape}; expected {(3 * width, width)}.')
      used.add(f'{p}.attn.qkv.weight')
      heads = lambda m: m.T.reshape(width, num_heads, head_dim)  # [out, in] -> [D, H, Dh]
      biases = {}
      for short in ('q', 'v'):
        key = f'{p}.attn.{short}_bias'
        biases[short] = np.asarray(state[key]) if key in state else np.zeros(width, np.float32)
        used.add(key)
      proj = _linear(state, f'{p}.attn.proj', used)
      encoder[f'block_{i:02d}'] = {
          'norm1': _norm(state, f'{p}.norm1', used),
          'norm2': _norm(state, f'{p}.norm2', used),
          'attention': {
              'query': {'kernel': heads(qkv[:width]), 'bias': biases['q'].reshape(num_heads, head_dim)},
              'key': {'kernel': heads(qkv[width:2 * width]),
                      'bias': np.zeros((num_heads, head_dim), qkv.dtype)},
              'value': {'kernel': heads(qkv[2 * width:]), 'bias': biases['v'].reshape(num_heads, head_dim)},
              'out': {'kernel': proj['kernel'].reshape(num_heads, head_dim, width),
                      'bias': proj['bias']}},
          'mlp': {'fc1': _linear(state, f'{p}.mlp.fc1', used),
                  'fc2': _linear(state, f'{p}.mlp.fc2', used)}}
    params['encoder'] = encoder
    final = 'fc_norm' if 'fc_norm.weight' in state else 'norm'
    params['fc_norm'] = _norm(state, final, used)
  except KeyError as e:
    raise ValueError(f'The checkpoint lacks {e.args[0]!r} (have e.g. {sorted(state)[:6]}).') from e
  if 'pos_embed' in state:  # a learned table [1, N, D] (a fixed sincos one is recomputed)
    params['posemb'] = {'pos_embedding': np.asarray(state['pos_embed']).reshape(1, -1, width)}
    used.add('pos_embed')
  head = None
  if 'head.weight' in state:
    head = _linear(state, 'head', used)
  unused = sorted(set(state) - used)
  if unused:
    raise ValueError(f'Checkpoint keys not mapped onto the ViViT: {unused}.')
  return params, head
