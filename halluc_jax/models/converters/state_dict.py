"""Reading PyTorch-style checkpoints as flat {name: numpy array} dicts.

Formats: `.safetensors` (read with the `safetensors` package, no torch needed) and torch pickles
(`.bin`, `.pth`, `.pt`; need torch, the optional '.[bench]' extra). Wrappers that training scripts
put around the weights ('model', 'module', 'state_dict' entries, a 'module.' name prefix from
DistributedDataParallel) are removed.
"""
import os

import numpy as np

WRAPPER_KEYS = ('model', 'module', 'state_dict', 'model_state')
WRAPPER_PREFIXES = ('module.', 'model.')


def unwrap(state):
  """The flat weights inside a checkpoint dict: wrapper entries and DDP prefixes removed."""
  for key in WRAPPER_KEYS:
    if isinstance(state, dict) and isinstance(state.get(key), dict):
      state = state[key]
  out = {}
  for name, value in state.items():
    for prefix in WRAPPER_PREFIXES:
      if name.startswith(prefix):
        name = name[len(prefix):]
        break
    out[name] = value
  return out


def to_numpy(value):
  """A torch tensor or array-like as a float32/int numpy array."""
  if hasattr(value, 'detach'):  # torch.Tensor
    value = value.detach().cpu().float().numpy() if value.is_floating_point() else value.numpy()
  return np.asarray(value)


def load(path):
  """{name: numpy array} of the checkpoint at `path` (.safetensors, .bin, .pth, .pt)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'No checkpoint at {path}.')
  if path.endswith('.safetensors'):
    from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top
    return unwrap(load_file(path))
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(f'{path} is a torch pickle: reading it needs torch '
                      "(pip install -e '.[bench]'), or convert it to .safetensors.") from e
  state = torch.load(path, map_location='cpu', weights_only=True)
  return {k: to_numpy(v) for k, v in unwrap(state).items() if hasattr(v, 'shape')}
