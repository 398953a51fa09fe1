#!/usr/bin/env bash
# The large-scale protocol on the embedded data (docs/method.md, 'Frozen backbone and cached
# features'): the objects-trained I3D (configs/i3d_rgb_only_from_objects.py's source), frozen,
# on the motion preset: cache its features, time training from the cache against the video
# pipeline, then stage 1 (streams + heads on the cache), stage 2 (streams frozen, HAF + PredNet)
# and the same stage-1 config from decoded videos for comparison. Run from the repository root
# after the transfer source exists (workdirs/transfer/i3d_objects_s0.safetensors).
set -euo pipefail
PY=.venv/bin/python
D=data/synthetic_motion
W=workdirs/feature_cache
mkdir -p "$W" results/feature_cache
DATA="--config.data.root=$D --config.data.annotations=$D/annotations.csv --config.data.aux_dir=$D/targets"
FROZEN="--config.optim.backbone_lr_mult=0 --config.init_from.path=workdirs/transfer/i3d_objects_s0.safetensors --config.init_from.format=i3d_pytorch"
# shellcheck disable=SC2086
[ -f "$W/cache/manifest.json" ] || $PY -m halluc_jax.tools.cache_features --config configs/i3d.py --out "$W/cache" --views 4 $DATA $FROZEN \
  | tee results/feature_cache/cache_features.txt
# shellcheck disable=SC2086
[ -s results/feature_cache/bench_train.txt ] || $PY -m halluc_jax.bench.train --config configs/i3d.py --data_dir "$D" --steps 10 --warmup 3 \
  --feature_cache "$W/cache" $FROZEN | tee results/feature_cache/bench_train.txt
for seed in 0 1 2; do
  # shellcheck disable=SC2086
  $PY -m halluc_jax.main --config configs/i3d.py --workdir "$W/stage1_cached_s$seed" $DATA $FROZEN \
    --config.name=i3d_frozen_stage1_cached --config.seed=$seed --config.data.shuffle_seed=$seed \
    --config.data.feature_cache="$W/cache" > "$W/stage1_cached_s$seed.log" 2>&1
  # shellcheck disable=SC2086
  $PY -m halluc_jax.main --config configs/i3d.py --workdir "$W/stage2_cached_s$seed" $DATA \
    --config.name=i3d_frozen_stage2_cached --config.optim.backbone_lr_mult=0 --config.seed=$seed \
    --config.data.shuffle_seed=$seed --config.data.feature_cache="$W/cache" \
    "--config.optim.frozen_groups=('streams','cenet')" --config.init_from.format=run \
    --config.init_from.path="$W/stage1_cached_s$seed" --config.init_from.groups=streams,cenet \
    > "$W/stage2_cached_s$seed.log" 2>&1
done
# The same stage-1 run from decoded videos (frozen backbone, fresh crops every epoch): seed 0.
# shellcheck disable=SC2086
$PY -m halluc_jax.main --config configs/i3d.py --workdir "$W/stage1_video_s0" $DATA $FROZEN \
  --config.name=i3d_frozen_stage1_video --config.seed=0 --config.data.shuffle_seed=0 \
  > "$W/stage1_video_s0.log" 2>&1
for wd in "$W"/stage*_s?; do
  $PY -m halluc_jax.tools.tables --export "$wd" --results_dir results/feature_cache/runs || true
done
