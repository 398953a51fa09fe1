"""Paper scale: ViViT-B/16x2 spatio-temporal on Kinetics-400, 16 frames at 224 px, bf16.

The large-scale protocol of docs/method.md §2.6 / Table 10 with the streams of its best Kinetics row
(+ BoW/FV + OFF): bow, fv1, fv2, off, each d = 128 per sketch and K = 8 sketches (docs/method.md §9.6),
uncertainty loss with grouped Cholesky blocks, concat + count sketch to d'_tot = 2000 (docs/method.md §2.4).
ViT-B is not one of the "large backbones" that docs/method.md §9.4 freezes, so it is fine-tuned at 0.1x the
learning rate, co-supervised by the hallucination pass (the paper's two passes per step).
Batch: 64 clips = 8 per device on 8 devices. Stream dims come from `model.streams.dims`; set
`data.aux_dir` to the extracted targets (manifest dims must match) for a real run.

Dry run (no data, 8 fake CPU devices):
  python -m halluc_jax.tools.plan --config configs/vivit_b16x2_k400.py --devices 8
Result (2-core CPU box, jax 0.10.2; compile 40 s wall when the box is quiet, 250 s under load):
  parameters 95,863,344 = backbone 87,440,640 + streams 3,149,824 + haf 787,456
      + cenet 3,681,024 + prednet 804,400
  forward of one clip: 365.9 GFLOPs = 182.9 GMACs (analytic backbone 180.3 GMACs)
  train step: 17.47 TFLOPs per device, 139.8 TFLOPs on 8 devices = 2.18 TFLOPs per clip
      (5.97 forwards: the two forward+backward passes of the alternating scheme)
  memory per device (CPU compile): arguments 1.85 GiB, temporaries 35.3 GiB, total 37.2 GiB
Train:
  python -m halluc_jax.main --config configs/vivit_b16x2_k400.py --workdir workdirs/b16x2_k400 \
      --config.data.aux_dir=<targets dir>
"""
import os
import runpy

# By path, so the config loads from any working directory (no package import of configs/).
_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'default.py')

K400_STREAMS = ('bow', 'fv1', 'fv2', 'off')  # Table 10's best K400 row: + BoW/FV + OFF


def get_config(variant='B/16x2', backbone_lr_mult=0.1):
  """Returns the ConfigDict; `variant` and `backbone_lr_mult` serve the ViViT-L config too."""
  c = runpy.run_path(_DEFAULT)['get_config']()
  c.name = 'vivit_' + variant.replace('/', '').lower() + '_k400'

  d = c.data
  d.root = 'data/kinetics400'  # Kinetics CSV layout: <root>/<split>/<id>_<start>_<end>.mp4
  d.annotations = 'data/kinetics400/annotations.csv'
  d.train_split, d.eval_split = 'train', 'val'
  d.num_classes = 400
  d.num_frames = 16
  d.frame_stride = 4  # 16 x 4 = 64 frames (~2.1 s at 30 fps), VideoMAE's K400 sampling
  d.crop_size = 224
  d.resize_short = 256
  d.train_crop_area = (0.08, 1.0)
  d.batch_size = 64  # global: 8 clips per device on 8 devices
  d.eval_batch_size = 64
  d.eval_clips, d.eval_crops = 4, 3  # ViViT's multi-view test
  d.num_workers = 16
  d.prefetch_buffer = 4
  d.aux_dir = ''  # no manifest here: dims from c.model.streams.dims

  m = c.model
  m.dtype = 'bfloat16'  # docs/method.md §9.18: bf16 compute, float32 params and loss
  m.backbone.variant = variant
  m.backbone.overrides = {}  # the full depth of the variant
  m.backbone.kind = 'spatio_temporal'
  m.backbone.stem = 'patch'  # the linear tubelet embedding that ViViT/VideoMAE weights have
  m.backbone.stochastic_depth = 0.1
  m.streams.sketch_dim, m.streams.num_sketches = 128, 8
  m.streams.dims = {name: 128 * 8 for name in K400_STREAMS}
  m.fusion.mode, m.fusion.out_dim = 'concat_sketch', 2000
  m.cenet.structure = 'grouped'

  c.loss.hallucination = 'uncertainty'
  c.loss.update_scheme = 'alternating'
  c.loss.hal_pass_trains_backbone = backbone_lr_mult > 0

  c.train.num_epochs = 30.0
  c.train.log_every = 50
  c.train.checkpoint_every = 1000
  c.optim.optimizer = 'adamw'
  c.optim.lr = 1e-4
  c.optim.schedule = 'halve_every'
  c.optim.halve_every_epochs = 10.0
  c.optim.backbone_lr_mult = backbone_lr_mult
  return c
