"""PyTorch peers of our backbones, for `halluc_jax.bench.peer` (never imported by the trainer;
torch is an optional extra).

Each peer does the work our RGB-only train step does for the same dimensions: forward, softmax
cross-entropy, backward, global-norm clipping and an AdamW update, float32, on the CPU.

  vivit   Hugging Face transformers' `VideoMAEForVideoClassification` (random init, nothing
          downloaded): ViT blocks over tubelet tokens, mean pooling + fc_norm + linear head,
          attention through torch's scaled_dot_product_attention ('sdpa').
  vivit + conv stem  the same model with its tubelet projection replaced by our ConvStem's
          layout (models/vivit.py `conv_stem_layout`: bias-free strided 3-D convs -> BatchNorm
          -> GELU, then a 1x1x1 projection), so the default CPU model has a like-for-like peer.
  i3d     Inception-v1 I3D written here in torch after the published layout (our models/i3d.py
          `layout`: the same filters, kernels, strides; conv3d -> BatchNorm -> ReLU with
          TensorFlow 'SAME' padding), global average pool, dropout-free linear logits.

torch, transformers (and timm) come from the optional extra: `pip install -e '.[bench]'`.
"""
from halluc_jax.models.conv3d import same_padding

BENCH_EXTRA_HINT = ("the PyTorch peer needs torch and transformers: pip install -e '.[bench]'")


def require_torch():
  """(torch, transformers) modules, or SystemExit naming the extra that brings them."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
    import transformers  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise SystemExit(f'{BENCH_EXTRA_HINT} ({e})') from e
  return torch, transformers


def _pad_same(F, x, kernel, stride):
  """x [B, C, T, H, W] padded as TF/lax 'SAME' pads it (models/conv3d.same_padding)."""
  pads = [same_padding(n, k, s) for n, k, s in zip(x.shape[2:], kernel, stride)]
  return F.pad(x, [p for pair in reversed(pads) for p in pair])


def _modules():
  """The torch module classes, defined on first use so this file imports without torch."""
  torch, _ = require_torch()
  nn, F = torch.nn, torch.nn.functional

  class SamePadConv3d(nn.Module):
    """Bias-free (optionally biased) conv3d with TF 'SAME' padding; input [B, C, T, H, W]."""

    def __init__(self, cin, cout, kernel, stride, bias=False):
      super().__init__()
      self.kernel, self.stride = tuple(kernel), tuple(stride)
      self.conv = nn.Conv3d(cin, cout, self.kernel, self.stride, bias=bias)

    def forward(self, x):
      return self.conv(_pad_same(F, x, self.kernel, self.stride))

  class SamePadMaxPool3d(nn.Module):
    """Max pool with TF 'SAME' padding (zeros after a ReLU pad the same as -inf)."""

    def __init__(self, kernel, stride):
      super().__init__()
      self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x):
      return F.max_pool3d(_pad_same(F, x, self.kernel, self.stride), self.kernel, self.stride)

  class Unit3D(nn.Module):
    def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1)):
      super().__init__()
      self.conv = SamePadConv3d(cin, cout, kernel, stride)
      self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01)

    def forward(self, x):
      return F.relu(self.bn(self.conv(x)))

  class Inception(nn.Module):
    def __init__(self, cin, f):
      super().__init__()
      self.b0 = Unit3D(cin, f[0])
      self.b1 = nn.Sequential(Unit3D(cin, f[1]), Unit3D(f[1], f[2], (3, 3, 3)))
      self.b2 = nn.Sequential(Unit3D(cin, f[3]), Unit3D(f[3], f[4], (3, 3, 3)))
      self.b3 = nn.Sequential(SamePadMaxPool3d((3, 3, 3), (1, 1, 1)), Unit3D(cin, f[5]))

    def forward(self, x):
      return torch.cat([self.b0(x), self.b1(x), self.b2(x), self.b3(x)], 1)

  class I3D(nn.Module):
    """Inception-v1 I3D from `layout` ops; input [B, T, H, W, 3] (channels-last, as ours)."""

    def __init__(self, ops, num_classes, in_channels=3):
      super().__init__()
      layers, cin = [], in_channels
      for kind, _, filters, kernel, strides in ops:
        if kind == 'unit':
          layers.append(Unit3D(cin, filters, kernel, strides))
          cin = filters
        elif kind == 'pool':
          layers.append(SamePadMaxPool3d(kernel, strides))
        else:
          layers.append(Inception(cin, filters))
          cin = filters[0] + filters[2] + filters[4] + filters[5]
      self.features = nn.Sequential(*layers)
      self.logits = nn.Linear(cin, num_classes)

    def forward(self, video):
      x = self.features(video.permute(0, 4, 1, 2, 3))
      return self.logits(x.mean((2, 3, 4)))

  class ConvStem(nn.Module):
    """Our ConvStem's layout in torch: [B, 3, T, H, W] -> [B, D, T', H', W']."""

    def __init__(self, layers, width):
      super().__init__()
      mods, cin = [], 3
      for kernel, strides, cout in layers:
        mods += [SamePadConv3d(cin, cout, kernel, strides), nn.BatchNorm3d(cout), nn.GELU()]
        cin = cout
      mods.append(nn.Conv3d(cin, width, 1))
      self.net = nn.Sequential(*mods)

    def forward(self, x):
      return self.net(x)

  class VideoMAEChannelsLast(nn.Module):
    """transformers' VideoMAE classifier fed [B, T, H, W, 3] clips, as our models are."""

    def __init__(self, model):
      super().__init__()
      self.model = model

    def forward(self, video):
      return self.model(pixel_values=video.permute(0, 1, 4, 2, 3)).logits

  return {'I3D': I3D, 'ConvStem': ConvStem, 'VideoMAE': VideoMAEChannelsLast}


def videomae(size, num_frames, crop, num_classes, conv_stem_layers=None):
  """A random-init transformers VideoMAE classifier of ViT `size` (models/variants.ViTSize).

  Args:
    size: our ViTSize (width, depth, num_heads, mlp_dim, patch_size, tubelet).
    num_frames, crop: clip length and side.
    num_classes: classifier width.
    conv_stem_layers: `conv_stem_layout(...)` of our ConvStem to use instead of the linear
      tubelet projection, or None.

  Returns:
    A torch module mapping [B, T, H, W, 3] float clips to logits [B, num_classes].
  """
  _, transformers = require_torch()
  cfg = transformers.VideoMAEConfig(
      image_size=crop, patch_size=size.patch_size, num_frames=num_frames,
      tubelet_size=size.tubelet, hidden_size=size.width, num_hidden_layers=size.depth,
      num_attention_heads=size.num_heads, intermediate_size=size.mlp_dim,
      num_labels=num_classes, use_mean_pooling=True, hidden_dropout_prob=0.0,
      attention_probs_dropout_prob=0.0)
  cfg._attn_implementation = 'sdpa'  # pylint: disable=protected-access
  model = transformers.VideoMAEForVideoClassification(cfg)
  mods = _modules()
  if conv_stem_layers is not None:
    model.videomae.embeddings.patch_embeddings.projection = mods['ConvStem'](
        conv_stem_layers, size.width)
  return mods['VideoMAE'](model)


def i3d(ops, num_classes):
  """The torch I3D of `ops` (models/i3d.layout(size)) with a linear classifier."""
  return _modules()['I3D'](ops, num_classes)


def num_parameters(model):
  return sum(p.numel() for p in model.parameters())


def train_step_fn(model, lr=1e-3, weight_decay=1e-4, clip_norm=1.0):
  """step(clip, labels) -> loss: forward, CE, backward, clip, AdamW (our optimiser's settings)."""
  torch, _ = require_torch()
  opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                          betas=(0.9, 0.999), eps=1e-8)
  model.train()

  def step(clip, labels):
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(clip), labels)
    loss.backward()
    if clip_norm:
      torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    opt.step()
    return float(loss.detach())

  return step


def synthetic_inputs(batch, num_frames, crop, num_classes, seed=0):
  """Random float32 clips [B, T, H, W, 3] and integer labels [B] as torch tensors."""
  torch, _ = require_torch()
  g = torch.Generator().manual_seed(seed)
  clip = torch.randn(batch, num_frames, crop, crop, 3, generator=g)
  labels = torch.randint(0, num_classes, (batch,), generator=g)
  return clip, labels


def set_threads(n):
  """Intra-op threads of torch (one per core by default, as XLA:CPU uses)."""
  torch, _ = require_torch()
  torch.set_num_threads(max(1, int(n)))
  return torch.get_num_threads()
