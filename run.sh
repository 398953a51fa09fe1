#!/usr/bin/env bash
# The two commands of halluc_jax:
#   bash run.sh          set up .venv if needed, prepare the embedded dataset, run the main job
#   bash run.sh test     set up .venv if needed, run the test suite (extra args go to pytest)
# Other entry points: bash run.sh ablation | bench-input | bench-descriptors | bench-overhead |
#   bench-train | shell
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
VENV=.venv
# The embedded dataset (data/README.md): the 'objects' preset of the generator, the default
# config's data. HALLUC_PRESET=motion HALLUC_DATA_DIR=data/synthetic_motion gives the hard one.
PRESET=${HALLUC_PRESET:-objects}
DATA_DIR=${HALLUC_DATA_DIR:-data/synthetic_$PRESET}
WORKDIR=${HALLUC_WORKDIR:-workdirs/default}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[run.sh] creating $VENV"
    "$PY" -m venv "$VENV"
  fi
  # Reinstall only when pyproject.toml changed since the last successful install.
  local stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    echo "[run.sh] installing halluc_jax and its dependencies into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e '.[test]'
    rm -f "$VENV"/.installed-*
    touch "$stamp"
  fi
}

prepare_data() {
  if [ ! -f "$DATA_DIR/annotations.csv" ]; then
    echo "[run.sh] generating the embedded dataset (preset '$PRESET') in $DATA_DIR"
    "$VENV/bin/python" -m halluc_jax.data.synthetic --out "$DATA_DIR" --preset "$PRESET"
  fi
  if [ ! -f "$DATA_DIR/targets/manifest.json" ]; then
    echo "[run.sh] extracting auxiliary targets (detectors, saliency, flow) into $DATA_DIR/targets"
    "$VENV/bin/python" -m halluc_jax.targets.extract --config configs/default.py \
      --config.data.root="$DATA_DIR" --config.data.annotations="$DATA_DIR/annotations.csv" \
      --config.data.aux_dir="$DATA_DIR/targets"
  fi
}

cmd=${1:-main}
[ $# -gt 0 ] && shift
case "$cmd" in
  test)
    setup
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  main)
    setup
    prepare_data
    # configs/default.py: the ViViT with the conv stem and all five hallucination streams, the
    # backbone that learns most in the CPU budget (README 'Main job'). Then its RGB-only
    # counterpart (configs/rgb_only.py, the same config without streams) for comparison
    # (HALLUC_BASELINE=0 skips it), and both side by side with a paired test across seeds.
    data_flags=(--config.data.root="$DATA_DIR" --config.data.annotations="$DATA_DIR/annotations.csv")
    "$VENV/bin/python" -m halluc_jax.main --config "${HALLUC_CONFIG:-configs/default.py}" \
      --workdir "$WORKDIR" "${data_flags[@]}" --config.data.aux_dir="$DATA_DIR/targets" "$@"
    if [ "${HALLUC_BASELINE:-1}" != 0 ]; then
      echo "[run.sh] the RGB-only counterpart (configs/rgb_only.py) in $WORKDIR-rgb_only"
      "$VENV/bin/python" -m halluc_jax.main --config configs/rgb_only.py \
        --workdir "$WORKDIR-rgb_only" "${data_flags[@]}" "$@"
      "$VENV/bin/python" -m halluc_jax.tools.tables --workdirs "$WORKDIR,$WORKDIR-rgb_only" \
        --baseline rgb_only
    fi
    ;;
  ablation)
    # The embedded reproduction table (README 'Ablation on the objects preset'): every row's
    # config (HALLUC_ROWS) x HALLUC_SEEDS, HALLUC_PARALLEL runs at a time, extra args to every run; a run that
    # already has its eval result is skipped, an interrupted one resumes from its checkpoint.
    # Every finished run is exported as a small JSON summary into HALLUC_RESULTS_DIR (commit
    # those: workdirs do not outlive the machine; halluc_jax/evaluation/results_io.py), and the table is
    # rendered from them. Every run reads DATA_DIR (the preset's data; a row without targets,
    # data.aux_dir = '' as in rgb_only, keeps none); HALLUC_PRESET=motion runs the hard preset.
    setup
    prepare_data
    default_abl_dir=workdirs/ablation; [ "$PRESET" = objects ] || default_abl_dir=workdirs/ablation_$PRESET
    ABL_DIR=${HALLUC_ABLATION_DIR:-$default_abl_dir}
    RES_DIR=${HALLUC_RESULTS_DIR:-results/ablation/$PRESET}
    mkdir -p "$ABL_DIR"
    rows=${HALLUC_ROWS:-rgb_only hal_odf hal_sdf hal_off hal_all_mse hal_all_unc_diag hal_all_unc_grouped}
    for seed in ${HALLUC_SEEDS:-0 1 2}; do for row in $rows; do echo "$row $seed"; done; done |
      ABL_DIR="$ABL_DIR" RES_DIR="$RES_DIR" VENV="$VENV" DATA_DIR="$DATA_DIR" EXTRA="$*" \
      xargs -P "${HALLUC_PARALLEL:-1}" -L 1 bash -c '
        row=$0; seed=$1; wd="$ABL_DIR/${row}_s$seed"
        data_flags="--config.data.root=$DATA_DIR --config.data.annotations=$DATA_DIR/annotations.csv"
        # The target folder of the row, moved under DATA_DIR (targets, or e.g. targets_idt); none: RGB only.
        targets=$("$VENV/bin/python" -c "import os, runpy, sys
print(os.path.basename(str(runpy.run_path(sys.argv[1])[\"get_config\"]().data.aux_dir).rstrip(\"/\")))" "configs/$row.py")
        [ -n "$targets" ] && data_flags="$data_flags --config.data.aux_dir=$DATA_DIR/$targets"
        export_run() {
          "$VENV/bin/python" -m halluc_jax.tools.tables --export "$wd" --results_dir "$RES_DIR" \
            || echo "[run.sh] $wd: not exported to $RES_DIR (see above)"
        }
        [ -f "$wd/eval/eval_latest.json" ] && { echo "[run.sh] $wd done already"; export_run; exit 0; }
        t0=$(date +%s)
        # shellcheck disable=SC2086  # data_flags, EXTRA: whitespace-separated --config.x=y flags
        "$VENV/bin/python" -m halluc_jax.main --config "configs/$row.py" --workdir "$wd" \
          --config.seed="$seed" --config.data.shuffle_seed="$seed" $data_flags $EXTRA > "$wd.log" 2>&1 \
          || { echo "[run.sh] $wd failed: see $wd.log"; exit 0; }
        echo "{\"wall_seconds\": $(( $(date +%s) - t0 ))}" > "$wd/timing.json"
        echo "[run.sh] $wd: $(grep "^Result" "$wd.log" | tail -1)"
        export_run'
    files=""; for row in $rows; do files="$files${files:+,}$RES_DIR/${row}_s*.json"; done
    exec "$VENV/bin/python" -m halluc_jax.tools.tables --results "$files" --out "$ABL_DIR/table.md"
    ;;
  bench-input)
    setup
    prepare_data
    exec "$VENV/bin/python" -m halluc_jax.bench.input --data_dir "$DATA_DIR" "$@"
    ;;
  bench-descriptors)
    setup
    prepare_data
    exec "$VENV/bin/python" -m halluc_jax.bench.descriptors --data_dir "$DATA_DIR" "$@"
    ;;
  bench-overhead)
    setup
    exec "$VENV/bin/python" -m halluc_jax.bench.overhead "$@"
    ;;
  bench-train)
    setup
    prepare_data
    exec "$VENV/bin/python" -m halluc_jax.bench.train --config configs/default.py --data_dir "$DATA_DIR" "$@"
    ;;
  shell)
    setup
    exec "$VENV/bin/python" "$@"
    ;;
  *)
    echo "usage: bash run.sh [main|test|ablation|bench-input|bench-descriptors|bench-overhead|bench-train|shell] [args...]" >&2
    exit 2
    ;;
esac
