"""Default config: the embedded dataset ('objects' preset), a small ViViT with a conv stem, on CPU.

Every other config imports this one and overrides what it changes. `get_config('tiny')`
(`--config configs/default.py:tiny`, also through every ablation row) is the smallest run that
goes end to end in seconds on a CPU, for tests and smoke runs (in the spirit of big_vision's
`runlocal`); the tests build their configs from it (tests/configs_for_tests.py).

Run:
  python -m halluc_jax.main --config configs/default.py --workdir workdirs/default
  (or `bash run.sh`, which also generates the data and the auxiliary targets)

Result (2026-12-02, seed 0, the `objects` preset, 2-core CPU, results/main_job/): 576
alternating steps of batch 8 (16 epochs) in 15.3 min wall (915 s, alongside another run; 8.6 min
alone before). Val top-1 52.1%, test top-1 47.9% (chance 8.3%, 12 classes); its RGB-only
counterpart (configs/rgb_only.py, same seed) val 58.3%, test 61.5%. Over seeds 0-4 (README
'Ablation on the objects preset', row hal_all_unc_grouped, the same setting): val 55.2 +- 6.2%,
test 50.4 +- 1.7%, paired -1.2 +- 12.3 points against RGB-only (p 0.83). Every head beats the
train-mean predictor on val on 24 of 25 (seed, stream) pairs (test R^2 odf_shape and
sdf_spectral +0.23 to +0.28); the paper's literal loss (configs/hal_all_unc_grouped_literal.py)
held them all on it (docs/method.md, 'Constant target coordinates').
"""
import ml_collections


PRESETS = ('tiny',)


def get_config(arg=None):
  """Returns the default ConfigDict, or with `arg='tiny'` its smoke-test size (`tiny`)."""
  if arg not in (None, '') + PRESETS:
    raise ValueError(f'configs/default.py: unknown preset {arg!r}; known: {PRESETS}.')
  c = ml_collections.ConfigDict()
  c.seed = 0

  # ---- Data: Kinetics-style CSV annotations + video files (halluc_jax/data). ----
  c.data = ml_collections.ConfigDict()
  c.data.root = 'data/synthetic_objects'  # video paths in the CSV are relative to this
  c.data.annotations = 'data/synthetic_objects/annotations.csv'
  # Annotation format (halluc_jax/data/datasets; README 'The paper's datasets'): 'csv' (the
  # Kinetics / generic CSV above) or a dataset's official files: 'hmdb51', 'ucf101', 'ssv2',
  # 'charades', 'epic_kitchens55', 'toyota_smarthome', 'yupp', 'mpii_cooking'.
  c.data.format = 'csv'
  # '' = the files above; 'tfds:<name>' = a TFDS pack of them (any format; data/tfds_builder.py,
  # `python -m halluc_jax.tools.pack_tfds`) in tfds_data_dir ('' = ~/tensorflow_datasets).
  c.data.source = ''
  c.data.tfds_data_dir = ''
  c.data.split_index = 1  # HMDB-51 / UCF-101: official split 1..3; MPII Cooking cv7: fold 1..7
  # Toyota Smarthome 'cs' | 'cv1' | 'cv2'; YUP++ 'static' | 'moving'; MPII Cooking 'cv7' | 'official'
  c.data.protocol = ''
  c.data.label_field = 'verb'  # EPIC-Kitchens: 'verb' | 'noun' | 'action'
  c.data.val_participants = ()  # EPIC-Kitchens: participants of the 'val' split
  c.data.train_split = 'train'
  c.data.eval_split = 'val'  # evaluated during and at the end of training: select on this
  c.data.test_split = 'test'  # evaluated once at the end, reported ('' = none)
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
  # Workers -> trainer through a pipe (False) or grain's shared memory (True: no copy, for
  # batches of hundreds of MB; leaves the segments of in-flight batches behind when stopped).
  c.data.worker_shared_memory = False
  c.data.read_threads = 1  # grain threads per process (decoding releases the GIL)
  c.data.aux_dir = 'data/synthetic_objects/targets'  # ArrayRecord targets ('' = none)
  # Heads regress z = (y - mean) / std per target dim (train-split stats from the manifest) and
  # end linear; eval reports in the original space (docs/method.md "Target standardisation").
  c.data.standardize_targets = True
  c.data.shuffle_seed = 0
  # Cached features of a frozen backbone instead of videos (data/feature_cache.py; written by
  # `python -m halluc_jax.tools.cache_features`; needs optim.backbone_lr_mult = 0). '' = off.
  c.data.feature_cache = ''
  # YUV -> RGB of decoded frames (data/frame_rgb.py): 'swscale' (PyAV's; the committed results) or
  # 'opencv' (cv2's for plain yuv420p, within 3 levels of it and ~10x cheaper on small frames).
  c.data.rgb_conversion = 'swscale'

  # ---- Fine-tuning augmentation, all off here. In the train step (halluc_jax/data/
  # batch_augment.py), on the classification pass only: mixup, cutmix, random erasing. VideoMAE
  # fine-tuning: mixup 0.8, cutmix 1.0, switch 0.5, random erasing 0.25, RandAugment m7-n4-mstd0.5,
  # repeated augmentation 2 (with loss.label_smoothing 0.1). ----
  c.augment = ml_collections.ConfigDict()
  c.augment.mixup_alpha = 0.0  # Beta(a, a) mixing weight; 0 = off
  c.augment.cutmix_alpha = 0.0  # Beta(a, a) kept area; 0 = off
  c.augment.mix_switch_prob = 0.5  # both on: cutmix with this probability, else mixup
  c.augment.mix_prob = 1.0  # probability that a batch is mixed at all
  c.augment.random_erase_prob = 0.0  # per clip; one box, the same on every frame
  c.augment.random_erase_area = (0.02, 1.0 / 3.0)  # box area as a fraction of the frame
  c.augment.random_erase_aspect = (0.3, 1.0 / 0.3)  # box aspect ratio, log-uniform
  # Host-side, in the input pipeline (both passes see these clips):
  c.augment.randaugment_ops = 0  # RandAugment N, the same ops on every frame (data/randaugment.py); 0 = off
  c.augment.randaugment_magnitude = 7.0  # M in [0, 10]
  c.augment.randaugment_mstd = 0.5  # std of M per op
  c.augment.repeated_aug = 1  # each video R times per batch and epoch (VideoMAE num_sample 2); 1 = off

  # ---- Offline target extraction (halluc_jax/targets/extract.py; `python -m halluc_jax.targets.extract`). ----
  c.extract = ml_collections.ConfigDict()
  # HOG people / Haar cascades ('odf_hog', 'odf_haar') are built in too, but they rarely fire on
  # the embedded dataset's shapes and take ~60% of extraction time, so the default run skips them.
  c.extract.streams = 'odf_shape,odf_mser,sdf_spectral,sdf_motion,off_hofmbh'  # to run
  # Training uses train targets only (as the paper); val/test targets measure hallucination.
  c.extract.split = 'train,val,test'  # 'train', 'all', or a comma list of splits
  c.extract.out_dir = ''  # '' = c.data.aux_dir
  c.extract.frames_per_video = 16  # J, sampled uniformly (detectors, static saliency, flow)
  c.extract.resize_short = 0  # decode at this short side (0 = native; e.g. 240 for real videos)
  c.extract.num_workers = 2  # processes (0 = in-process)
  c.extract.max_videos = 0  # 0 = all (debugging)
  c.extract.records_per_shard = 1024
  c.extract.progress = True  # tqdm bar with ETA
  # The multi-moment descriptor (docs/method.md §3.7; our choices: docs/method.md, 'Descriptor
  # choices'): the paper keeps n' = 3 singular vectors with the largest entry made positive, plus
  # skewness, kurtosis and eigenvalues. On the embedded dataset [mean; u_1] with u_1 oriented
  # along time, with the settings below, lifts the odf_shape probe from 12.6% (paper settings)
  # to 62.1% val top-1 (results/probes/).
  c.extract.n_eig = 1  # n' / n-dagger (paper: 3)
  c.extract.eig_sign = 'time'  # 'max_entry' (paper) | 'time' (u_i points along the arrow of time)
  c.extract.moments = 'mean,eig'  # blocks kept, of 'mean,eig,skew,kurt,eigval' (paper: all)
  c.extract.odf_use_rbf = True  # 1214-style RBF box vectors (docs/method.md §9.7)
  c.extract.stream = ml_collections.ConfigDict()
  # name: (group, source, sketch seed, source params); sketch k of a stream uses seed + k.
  det = {'score_threshold': 0.3, 'max_boxes': 20, 'crop_scores': True}  # docs/method.md §9.16
  for name, group, source, seed, params in (
      # score_threshold 0.9: the shape score grows with area, so this keeps actor-sized objects
      # and drops most of the small distractors (kind probe 55% -> 77%, docs/method.md).
      ('odf_shape', 'odf', 'shape', 11000, dict(det, score_threshold=0.9, segmentation='edges',
                                                min_side=128, grad_threshold=12.0,
                                                min_area_frac=0.002)),
      ('odf_hog', 'odf', 'hog', 12000, dict(det, min_side=192, hit_threshold=0.0, scale=1.1)),
      ('odf_haar', 'odf', 'haar', 13000, dict(det, min_side=144, min_neighbors=3,
                                              scale_factor=1.2)),
      ('odf_mser', 'odf', 'mser', 14000, dict(det, delta=5)),
      ('sdf_spectral', 'sdf', 'spectral', 21000, {}),
      ('sdf_fine', 'sdf', 'fine_grained', 22000, {}),
      ('sdf_motion', 'sdf', 'motion', 23000, {'warmup': 64}),
      # camera='median': HOF of the flow minus its per-frame median (camera shake cancelled)
      ('off_hofmbh', 'off', 'flow', 31000, {'method': 'dis', 'feature': 'hof_mbh',
                                            'camera': 'median'}),
      # BoW / FV of dense trajectories (the group picks the encoding; configs/idt_streams.py).
      ('bow_idt', 'bow', 'idt', 41000, {}), ('fv1_idt', 'fv1', 'idt', 42000, {}),
      ('fv2_idt', 'fv2', 'idt', 43000, {})):
    c.extract.stream[name] = ml_collections.ConfigDict({
        'group': group, 'source': source, 'params': params,
        'd': 128, 'num_sketches': 1, 'seed': seed,  # K = 1 on CPU (paper: K = 8, docs/method.md §9.6)
        'pn': 'sigme', 'pn_params': {'eta': 50.0, 'eps': 1e-6}})
  # The IDT streams' shared settings (halluc_jax/targets/idt_video.py, docs/method.md 'IDT
  # streams'): dense trajectories (descriptors/trajectories.py; IDT's L, grid and pruning), the
  # frames they run on, and the codebook fitted on config.data.train_split only (idt_fit.py):
  # per-part PCA to pca_fraction of 426 dims, k-means words (paper 1000) and a diagonal GMM
  # (paper 256 components), sized for a few hundred CPU videos.
  c.extract.idt = ml_collections.ConfigDict({
      'track_length': 15, 'grid_step': 5, 'quality': 0.001, 'patch_size': 16, 'nxy': 2, 'nt': 3,
      'min_var': 1.7320508075688772, 'max_var': 50.0, 'max_dis': 20.0, 'zero_flow': 0.4,
      'flow_method': 'farneback',
      'resize_short': 0, 'frame_stride': 1, 'max_frames': 0,  # 0: native size, every frame
      'pca_fraction': 0.5, 'bow_words': 256, 'gmm_components': 16, 'kmeans_iters': 25,
      'gmm_iters': 30, 'alpha': 0.5,  # alpha: improved BoW / FV power normalisation
      'fit_videos': 0, 'fit_per_video': 100, 'seed': 0})  # fit_videos 0 = every train video
  # Paper-scale sources are imported (formats: halluc_jax/descriptors/sources/external.py), e.g.
  #   c.extract.stream.odf_frcnn = ConfigDict({'group': 'odf', 'source': 'external_det',
  #       'params': {'path': 'dets/frcnn.jsonl', 'label_space': 171, 'class_score_dim': 0}, ...})

  # ---- Model (halluc_jax/models): ViViT backbone, hallucination streams, fusion, CENet. ----
  c.model = ml_collections.ConfigDict()
  c.model.dtype = 'float32'  # compute dtype ('bfloat16' on accelerators); params stay float32
  c.model.backbone = ml_collections.ConfigDict()
  c.model.backbone.name = 'vivit'  # or 'i3d' (models/i3d.py; configs/i3d.py)
  # ViViT '<size>/<patch>x<tubelet>'; I3D 'full', 'mini', 'w<mult>[/<blocks>]' (models/variants.py)
  c.model.backbone.variant = 'Ti/16x2'
  # Any ViTSize (I3DSize) field; shallow for CPU (3 blocks + the conv stem cost 0.92x the step
  # of 4 blocks + the patch stem, and reach 58% val top-1 against 19%: results/vivit_small_data).
  c.model.backbone.overrides = {'depth': 3}
  c.model.backbone.kind = 'spatio_temporal'  # or 'factorised' (ViViT model 2)
  c.model.backbone.temporal_depth = 2  # temporal blocks of the factorised encoder
  c.model.backbone.posemb = 'learned'  # or 'sincos' (VideoMAE's fixed table)
  c.model.backbone.gelu = 'tanh'  # MLP GELU; 'erf' (exact) for VideoMAE / ViT weights
  c.model.backbone.dropout = 0.0
  c.model.backbone.stochastic_depth = 0.1
  # ViViT tubelet stem (models/vivit.py): 'conv' (stride-2 3x3 convs -> BatchNorm -> GELU, then a
  # 1x1 projection; same token grid) or 'patch' (the linear tubelet embedding of ViViT/VideoMAE,
  # for pretrained weights). From scratch on small data the patch stem learns no motion.
  c.model.backbone.stem = 'conv'
  c.model.backbone.stem_channels = ()  # () = log2(patch) convs from width/12 up: 16-32-64-128
  c.model.backbone.stem_norm = 'batch'  # 'layer' measured at chance; running stats: bn_momentum
  c.model.backbone.stem_time_taps = 1  # frames each conv after the stem's first sees (1 | 3)
  c.model.backbone.bn_momentum = 0.99  # BatchNorm running averages: I3D (TF I3D: 0.999), stem
  # Per-block rematerialisation (models/vivit.py REMAT_POLICIES): 'none' | 'full' |
  # 'dots_saveable' | 'dots_with_no_batch_dims_saveable'. Trades recompute for activation memory.
  c.model.backbone.remat = 'none'
  c.model.streams = ml_collections.ConfigDict()
  c.model.streams.use = ()  # aux streams to hallucinate, () = every stream in the manifest
  c.model.streams.use_groups = ()  # and/or whole groups, e.g. ('odf',); () = no filter
  c.model.streams.dims = {}  # name -> dim when there is no manifest (data.aux_dir = '')
  c.model.streams.groups = {}  # name -> group for weighted-mean fusion, e.g. det1 -> 'odf'
  c.model.streams.sketch_dim = 128  # d per sketch (paper: 128-512), as c.extract.stream.*.d
  c.model.streams.num_sketches = 1  # K sketches per stream (paper default 8, docs/method.md §9.6)
  c.model.streams.haf_dim = 0  # 0 = the streams' dim if they share one, else K * d
  c.model.streams.pn = 'asinhe'  # PN at the end of every head
  # 'batch': BatchNorm on each head's input, so the heads read the features' variation across
  # clips at unit scale; 'none' = the paper's head (docs/method.md, 'Stream heads').
  c.model.streams.input_norm = 'none'
  c.model.streams.pn_params = {'gamma': 100.0}
  c.model.fusion = ml_collections.ConfigDict()
  c.model.fusion.mode = 'concat_sketch'  # or 'weighted_mean' (Eq. 21-22, group levels)
  c.model.fusion.out_dim = 512  # d'_tot of P_tot (0 = no sketch)
  c.model.fusion.seed = 2024  # seed of P_tot
  c.model.fusion.beta = 0.0  # Eq. 22 sharpness (0 = equal weights)
  c.model.fusion.rho = 0.1  # Eq. 22 floor
  c.model.fusion.scores = {}  # name -> w'_i (e.g. probe accuracy); missing = 1
  c.model.fusion.haf_score = 0.0  # 0 = paper's 1 / (|H*| + 1)
  c.model.cenet = ml_collections.ConfigDict()
  c.model.cenet.structure = 'grouped'  # 'diag' | 'grouped' | 'single_block' | 'dense'
  c.model.cenet.hidden_dim = 256
  c.model.cenet.stop_gradient = True  # CENet sees stop_gradient(psi~) (docs/method.md §9.3)
  c.model.cenet.log_diag_clamp = 7.0

  # ---- Losses (halluc_jax/losses.py) and update scheme. ----
  c.loss = ml_collections.ConfigDict()
  c.loss.hallucination = 'uncertainty'  # or 'mse' (docs/method.md §3.8)
  c.loss.kappa = 1.0  # weight of -log|Omega| (1 = twice the Gaussian NLL)
  # Target coordinates constant on the train split (empty count-sketch buckets): 'unit_precision'
  # scores them by their squared error; 'model' (the paper, literally) lets CENet model them,
  # whose precision there then grows without bound (docs/method.md, 'Constant target coordinates').
  c.loss.constant_coords = 'unit_precision'
  c.loss.alpha = 1.0  # total = alpha * hallucination + classification
  c.loss.label_smoothing = 0.0
  c.loss.multi_label = False  # sigmoid BCE instead of softmax CE (Charades, MPII)
  c.loss.update_scheme = 'alternating'  # paper's two passes per step, or 'joint'
  # Pass 1 also updates the backbone (the paper's co-supervision; docs/method.md, 'Stream heads').
  c.loss.hal_pass_trains_backbone = True
  c.loss.cls_pass_trains_streams = True  # pass 2 also updates the stream heads (the paper's)
  c.loss.robust = 'none'  # 'barron': NOT the paper's loss, an MSE ablation (docs/method.md §3.13)
  c.loss.barron_alpha = 1.0
  c.loss.barron_scale = 0.5

  # ---- Training loop (halluc_jax/train.py). ----
  c.train = ml_collections.ConfigDict()
  c.train.num_epochs = 16.0  # ~530 steps of ~1 s on 2 CPU cores (paper: 50-100 epochs)
  c.train.num_train_steps = -1  # > 0 overrides num_epochs
  c.train.log_every = 10  # steps between metric writes / progress lines
  c.train.eval_every = 0  # steps between evaluations; 0 = only at the end
  c.train.checkpoint_every = 50  # steps; also at the end and on SIGTERM
  c.train.nan_policy = 'stop'  # 'stop': NaN/inf loss ends the run; 'skip': drop that update
  # Micro-batches per update: N splits data.batch_size into N micro-batches whose loss sums and
  # gradients are summed before one optimiser update (same update, ~1/N activation memory).
  c.train.grad_accum_steps = 1
  # EMA of the weights, updated every step and used for evaluation and prediction (0 = off;
  # timm's fine-tuning uses ~0.9998 over 100k+ steps: keep 1 / (1 - decay) well below the run's steps).
  c.train.ema_decay = 0.0
  # JAX's persistent compilation cache: a rerun, a resumed run or another seed of the same config
  # loads its compiled programs instead of compiling them again ('' = off; README 'Performance').
  c.train.compilation_cache_dir = '~/.cache/halluc_jax/jax_cache'
  # CPU backend only: split the batch over N host devices, one per core (halluc_jax/host_devices.py;
  # 2 on the 2-core CPU: 0.86x the step of this model, 0.81x I3D-mini's; README 'Performance').
  # 1 = JAX's single CPU device, which every committed result used (pass 2 for new CPU runs: 0.85x
  # the step with the real pipeline beside it). The batch must divide by N.
  c.train.cpu_devices = 1

  # ---- Optimiser (halluc_jax/optim.py); paper: Adam 1e-4 halved every 10 epochs. ----
  # The small from-scratch CPU model gets 16 epochs, so it uses 10x the paper's rate with a
  # cosine decay after a 50-step warm-up (results/vivit_small_data: 2e-3 and 5e-4 did worse).
  c.optim = ml_collections.ConfigDict()
  c.optim.optimizer = 'adamw'  # or 'adam' (the paper's)
  c.optim.lr = 1e-3
  c.optim.schedule = 'cosine'  # 'halve_every' | 'cosine' | 'constant'
  c.optim.halve_every_epochs = 2.0
  c.optim.warmup_steps = 50
  c.optim.final_lr_frac = 0.0  # cosine: end at lr * this
  c.optim.weight_decay = 1e-4  # adamw only; matrices only, not biases/norm scales
  c.optim.stream_weight_decay = -1.0  # the stream heads' own decay; < 0: weight_decay
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-8
  c.optim.mu_dtype = 'float32'  # Adam first moment: 'float32' or 'bfloat16' (nu stays float32)
  c.optim.clip_norm = 1.0  # global-norm clipping; 0 = off
  c.optim.hal_pass_backbone_lr_mult = 1.0  # backbone lr factor in pass 1 (alternating scheme)
  c.optim.backbone_lr_mult = 1.0  # 0 = frozen backbone; ~0.1 for a pretrained one (docs/method.md §9.4)
  c.optim.frozen_groups = ()  # groups never updated, e.g. ('streams', 'cenet') (stage 2, §2.6)
  # Layer-wise lr decay (halluc_jax/models/layer_decay.py): backbone layer i of n learns at
  # lr * decay ** (n - i); 1 = off. VideoMAE fine-tunes ViT-S/B at 0.75 (docs/method.md, 'Fine-tuning recipe').
  c.optim.layer_decay = 1.0

  # ---- Mesh and sharding (halluc_jax/sharding.py). ----
  # ---- Pretrained weights (halluc_jax/init_from.py): a fresh run's backbone from a checkpoint. ----
  c.init_from = ml_collections.ConfigDict()
  c.init_from.path = ''  # '' = from scratch; e.g. a VideoMAE .safetensors / .bin / .pth
  # 'videomae' (needs stem='patch', gelu='erf', posemb='sincos' or, for a checkpoint with a
  # learned pos_embed, 'learned'); 'timm_vit' (.safetensors / .pth) or 'big_vision_vit' (.npz)
  # image ViTs (stem='patch', posemb='learned', gelu='erf', kind='spatio_temporal');
  # 'i3d_pytorch' (pytorch-i3d .pt / .safetensors) or 'i3d_tf' (kinetics-i3d TF1 prefix) onto
  # backbone.name='i3d' of the checkpoint's variant.
  c.init_from.format = 'videomae'
  c.init_from.groups = 'backbone'
  # Image formats: the 2-D patch kernel on the 'central' frame of the tubelet (scenic's ViViT
  # configs) or 'average' (kernel / t on every frame).
  c.init_from.inflate = 'central'
  # Grid of the checkpoint's learned position table, 't,h,w' ('h,w' for images); '' = the
  # model's time size and a square image. A different model grid resizes the table.
  c.init_from.source_grid = ''

  c.mesh = ml_collections.ConfigDict()
  # Data parallel over 'data'; 'fsdp' also splits the batch and shards parameters + optimiser
  # moments; 'tensor' splits attention heads and the MLP hidden layer. -1 = all remaining devices.
  c.mesh.shape = {'data': -1, 'fsdp': 1, 'tensor': 1}
  # Model logical axis -> mesh axis (None = replicated); first free mesh axis wins, so the
  # activations' 'embed' stays whole when 'batch' already took 'fsdp'.
  c.mesh.logical_axis_rules = (
      ('batch', ('data', 'fsdp')), ('embed', 'fsdp'), ('mlp', 'tensor'), ('heads', 'tensor'),
      ('kv', None), ('length', None), ('stream', None), ('fused', None), ('classes', None),
      ('cenet_in', None), ('cenet_hidden', None), ('cenet_out', None),
      # I3D: conv kernels [t, h, w, in, out] and the I3D heads' temporal conv, replicated (12M
      # parameters fit any device; splitting filters would gather at every branch concat).
      ('conv_t', None), ('conv_h', None), ('conv_w', None), ('conv_in', None),
      ('conv_out', None), ('stream_hidden', None))

  # ---- Checkpoints (halluc_jax/checkpointing.py), in <workdir>/checkpoints. ----
  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.keep = 3  # newest N kept
  c.checkpoint.async_save = True  # write in a background thread

  # ---- Multi-process runs (halluc_jax/distributed.py; README "Multi-host"). ----
  c.distributed = ml_collections.ConfigDict()
  # 'auto': the settings below (or $JAX_COORDINATOR_ADDRESS ...) if an address is given, else
  # JAX's own detection on a TPU pod / SLURM / Open MPI job, else one process.
  c.distributed.mode = 'auto'  # 'auto' | 'explicit' | 'off'
  c.distributed.coordinator_address = ''  # 'host:port' of process 0 ('' = $JAX_COORDINATOR_ADDRESS)
  c.distributed.num_processes = 0  # 0 = $JAX_NUM_PROCESSES
  c.distributed.process_id = -1  # -1 = $JAX_PROCESS_ID
  c.distributed.local_device_ids = ''  # e.g. '0,1' ('' = $JAX_LOCAL_DEVICE_IDS or all local)
  c.distributed.initialization_timeout = 300  # seconds to wait for every process to join

  # ---- Dry run (halluc_jax/tools/plan.py): compile the train step, print size and cost, no data. ----
  c.dry_run = False
  c.dry_run_devices = 0  # fake CPU devices; 0 = the mesh size of c.mesh.shape, else real devices

  return tiny(c) if arg == 'tiny' else c


def tiny(c):
  """`c` shrunk to seconds on a CPU: 4 frames of 32 px, a one-block 32-wide ViViT, 2 steps."""
  c.data.num_frames, c.data.frame_stride, c.data.crop_size, c.data.resize_short = 4, 1, 32, 36
  c.data.batch_size, c.data.eval_batch_size, c.data.num_workers = 4, 4, 0
  c.model.backbone.overrides = {'depth': 1, 'width': 32, 'mlp_dim': 64, 'num_heads': 2}
  c.model.streams.sketch_dim, c.model.fusion.out_dim, c.model.cenet.hidden_dim = 8, 32, 16
  c.train.num_train_steps, c.train.log_every, c.train.checkpoint_every = 2, 1, 1
  return c
