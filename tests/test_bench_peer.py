"""The PyTorch peer benchmark builds the same model as ours (bench/peer.py, bench/torch_peers.py).

The parameter counts are compared exactly where both sides have the same layers (I3D's
features, ViViT's conv stem and encoder), so a peer that silently differs in size fails. The torch
parts are skipped when the optional '.[bench]' extra is absent.
"""
import sys

import jax
import numpy as np
import pytest

from halluc_jax import setup as setup_lib
from halluc_jax.bench import peer
from halluc_jax.bench import torch_peers


def _ours(case):
  config = peer.case_config(case)
  params = setup_lib.Setup(config, abstract=True).abstract_variables['params']
  count = lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))
  return config, params, count


def test_cases_override_their_configs():
  config = peer.case_config('vivit_s')
  b = config.model.backbone
  assert (b.variant, b.stem, b.posemb, b.stochastic_depth) == ('S/16x2', 'patch', 'sincos', 0.0)
  assert (config.data.crop_size, config.data.batch_size, config.data.num_classes) == (112, 4, 400)
  assert config.data.aux_dir == ''  # RGB only on both sides
  assert peer.case_config('i3d').model.backbone.name == 'i3d'


def test_missing_torch_is_a_clear_error(monkeypatch):
  monkeypatch.setitem(sys.modules, 'torch', None)  # import torch -> ImportError
  with pytest.raises(SystemExit, match=r"\.\[bench\]"):
    torch_peers.require_torch()


def test_i3d_peer_has_our_backbone_parameters_exactly():
  torch = pytest.importorskip('torch')
  pytest.importorskip('transformers')
  config, params, count = _ours('i3d')
  model = peer.peer_model(config)
  assert torch_peers.num_parameters(model.features) == count(params['backbone'])
  clip, labels = torch_peers.synthetic_inputs(2, config.data.num_frames, config.data.crop_size,
                                              config.data.num_classes)
  assert model(clip).shape == (2, config.data.num_classes)
  step = torch_peers.train_step_fn(model)
  assert np.isfinite(step(clip, labels))
  assert torch.isfinite(next(model.parameters())).all()


def test_vivit_peer_has_our_stem_and_encoder_parameters_exactly():
  pytest.importorskip('torch')
  pytest.importorskip('transformers')
  config, params, count = _ours('default')  # the conv stem of the main job's model
  model = peer.peer_model(config)
  videomae = model.model.videomae
  stem = videomae.embeddings.patch_embeddings.projection
  assert torch_peers.num_parameters(stem) == count(params['backbone']['conv_stem'])
  ours_encoder = {k: v for k, v in params['backbone'].items() if k.startswith('encoder')}
  # VideoMAE's qkv has q and v biases only (no key bias): one width-sized vector per block.
  width, depth = 192, dict(config.model.backbone.overrides)['depth']
  assert count(ours_encoder) - torch_peers.num_parameters(videomae.encoder) == depth * width
  clip, _ = torch_peers.synthetic_inputs(2, config.data.num_frames, config.data.crop_size,
                                         config.data.num_classes)
  assert model(clip).shape == (2, config.data.num_classes)
