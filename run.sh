#!/usr/bin/env bash
# The two commands of halluc_jax:
#   bash run.sh          set up .venv if needed, prepare the embedded dataset, run the main job
#   bash run.sh test     set up .venv if needed, run the test suite (extra args go to pytest)
# Other entry points: bash run.sh bench-input | bench-descriptors | bench-overhead | bench-train | shell
set -euo pipefail
cd "$(dirname "$0")"

PY=${PYTHON:-python3}
VENV=.venv
DATA_DIR=${HALLUC_DATA_DIR:-data/synthetic_actions}
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
    echo "[run.sh] generating the embedded 'synthetic actions' dataset in $DATA_DIR"
    "$VENV/bin/python" -m halluc_jax.data.synthetic --out "$DATA_DIR"
  fi
  if [ ! -f "$DATA_DIR/targets/manifest.json" ]; then
    echo "[run.sh] extracting auxiliary targets (detectors, saliency, flow) into $DATA_DIR/targets"
    "$VENV/bin/python" -m halluc_jax.extract --config configs/default.py \
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
    exec "$VENV/bin/python" -m halluc_jax.main --config configs/default.py --workdir "$WORKDIR" "$@"
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
    echo "usage: bash run.sh [main|test|bench-input|bench-descriptors|bench-overhead|bench-train|shell] [args...]" >&2
    exit 2
    ;;
esac
