"""Default config: the embedded 'synthetic actions' dataset, a tiny ViViT, on CPU.

Every other config imports this one and overrides what it changes.

Run:
  python -m halluc_jax.main --config configs/default.py --workdir workdirs/default
  (or `bash run.sh`, which also generates the data and the auxiliary targets)

Result: (filled in once the trainer lands; see README "Results").
"""
import ml_collections


def get_config():
  """Returns the default ConfigDict."""
  c = ml_collections.ConfigDict()
  c.seed = 0

  # ---- Data: Kinetics-style CSV annotations + video files (halluc_jax/data). ----
  c.data = ml_collections.ConfigDict()
  c.data.root = 'data/synthetic_actions'  # video paths in the CSV are relative to this
  c.data.annotations = 'data/synthetic_actions/annotations.csv'
  c.data.train_split = 'train'
  c.data.eval_split = 'val'
  c.data.num_classes = 12
  c.data.multi_label = False
  c.data.num_frames = 16  # frames per clip
  c.data.frame_stride = 2  # dense sampling stride
  c.data.sampling = 'dense'  # 'dense' (Kinetics-like) or 'uniform' (TSN segments, SSv2-like)
  c.data.crop_size = 64  # model input resolution
  c.data.resize_short = 72  # short side before the crop (eval: centre crop of this)
  c.data.train_crop_area = (0.5, 1.0)  # random-resized-crop area range
  c.data.train_aspect_ratio = (0.75, 1.333)
  c.data.flip = True  # horizontal flip in training; off for direction-sensitive data
  c.data.mean = (0.45, 0.45, 0.45)
  c.data.std = (0.225, 0.225, 0.225)
  c.data.batch_size = 8  # global batch
  c.data.eval_batch_size = 8
  c.data.eval_clips = 2  # multi-view test: clips x crops per video
  c.data.eval_crops = 1
  c.data.num_workers = 2  # grain worker processes decoding videos (0 = in-process)
  c.data.prefetch_buffer = 2
  c.data.aux_dir = 'data/synthetic_actions/targets'  # ArrayRecord targets ('' = none)
  c.data.shuffle_seed = 0

  # ---- Embedded dataset generator (halluc_jax/data/synthetic.py). ----
  c.synthetic = ml_collections.ConfigDict()
  c.synthetic.num_videos = 360
  c.synthetic.size = 96
  c.synthetic.seed = 0

  return c
