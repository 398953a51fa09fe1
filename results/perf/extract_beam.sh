#!/bin/bash
# Wall time of target extraction: the CLI (process pool) vs the Beam DirectRunner, 2 processes
# each, on the same videos, fresh and then rerun on the finished folder (all from the cache).
#   bash results/perf/extract_beam.sh DATA_DIR NUM_VIDEOS > results/perf/extract_beam.txt
set -euo pipefail
DATA=$1
N=$2
WORK=$(mktemp -d)
PY=.venv/bin/python
echo "# $(date -u +%F), $(nproc)-core CPU shared with other jobs (load at start: $(cut -d' ' -f1-3 /proc/loadavg)); apache-beam $($PY -c 'import apache_beam; print(apache_beam.__version__)' 2>/dev/null)"
echo "# bash results/perf/extract_beam.sh $DATA $N   (configs/default.py, split train, first $N videos, 2 processes)"
printf '%-13s %-6s %7s %9s %7s %11s %13s\n' tool pass videos computed cached 'process s' 'extraction s'
for tool in extract extract_beam; do
  beam_args=()
  if [ "$tool" = extract_beam ]; then
    beam_args=(-- --runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing)
  fi
  for pass in fresh rerun; do
    /usr/bin/time -f '%e' -o "$WORK/wall" $PY -m halluc_jax.targets.$tool --config configs/default.py \
      --config.data.root="$DATA" --config.data.annotations="$DATA/annotations.csv" \
      --config.extract.split=train --config.extract.max_videos="$N" --config.extract.num_workers=2 \
      --config.extract.progress=False --config.extract.out_dir="$WORK/$tool" "${beam_args[@]}" \
      > "$WORK/summary.json" 2> "$WORK/log"
    # 'extraction s' is the summary's seconds: running the videos and writing the outputs, without
    # the interpreter's start-up, imports and planning that 'process s' includes.
    $PY -c 'import json, sys; s = json.load(open(sys.argv[1])); w = float(open(sys.argv[2]).read())
print("%-13s %-6s %7d %9d %7d %11.1f %13.1f" % (sys.argv[3], sys.argv[4], s["num_videos"],
      s["computed"], s["cached"], w, s["seconds"]))' "$WORK/summary.json" "$WORK/wall" "$tool" "$pass"
  done
done
for shard in "$WORK"/extract/targets-*.array_record; do
  cmp "$shard" "$WORK/extract_beam/$(basename "$shard")" && echo "identical: $(basename "$shard")"
done
echo "# load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$WORK"
