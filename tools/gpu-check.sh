#!/usr/bin/env bash
# Check a GPU machine in one call (issue 21, part 5), then print one table.
#
#   bash tools/gpu-check.sh [--device cuda|cuda:N|cpu] [--out DIR]
#
# On cuda (about 8 minutes on one GPU): the speed cases with --amp bf16 --compile
# --cuda-graphs; one full-scale SSL pre-training cell (base model, waveform encoder,
# 300 updates, default corpus) for throughput, MFU and peak memory; the quick suite's
# calibration and speaker cells, compared with reports/baseline by `run_all.py compare`.
# Without a GPU (or with --device cpu) the same steps run at a tiny size, to check the
# script's logic. Every step runs even if one fails; the script then exits 1, naming it.
# compare's exit 3 (a regression or an unchecked cell) is reported in the table.
# On cuda each step has a time limit (8 minutes in all); one killed at its limit fails.
# SPEED_CASES overrides the speed cases on cuda (comma-separated, as `speed --cases`).
# --out DIR: the work folder (default: a new one from mktemp); the same DIR again resumes:
# cells and speed rows already in it are kept, not measured again.
set -euo pipefail
cd "$(dirname "$0")/.."

device=auto
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="${2:?--device needs cpu, cuda or cuda:N}"; shift 2 ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    -h | --help) sed -n 2,16p "$0"; exit 0 ;;
    *) echo "gpu-check: unknown option $1; use --device cpu|cuda and --out DIR" >&2; exit 2 ;;
  esac
done

py=${PYTHON:-python}
gpu=$("$py" -c "import torch; print(torch.cuda.is_available())")
if [ "$device" = auto ]; then
  if [ "$gpu" = True ]; then device=cuda; else device=cpu; fi
fi
case "$device" in
  cuda*) [ "$gpu" = True ] || { echo "gpu-check: --device $device but torch sees no GPU; use --device cpu" >&2; exit 2; } ;;
  cpu) ;;
  *) echo "gpu-check: --device $device: use cpu, cuda or cuda:N" >&2; exit 2 ;;
esac
work=${out:-$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")}
mkdir -p "$work"
: >"$work/steps.tsv"

ssl_methods=frontend=wav2vec,quantizer=gumbel,objective=contrastive,labeled=1min
if [ "$device" = cpu ]; then  # the tiny size: the logic, in about a minute on 2 cores
  speed=(--cases NT-Xent --budget 0.1)
  # the log-mel stem: the waveform stem on the quick corpus's test split takes 40 s more here
  ssl=(--set ssl_phoneme.corpus=quick --set ssl_phoneme.model_size=tiny
       --set ssl_phoneme.stem=logmel --set ssl_phoneme.batch_size=2
       --set ssl_phoneme.steps=5 --set ssl_phoneme.ft_steps=2
       --set ssl_phoneme.ft_freeze_steps=1 --set ssl_phoneme.ft_batch_size=2)
  quick=(--methods classifier=mlp,loss=proxy_anchor --seeds 1)
  limits=(0 0 0 0)  # no time limit (0) on a shared CPU
else  # full-scale pre-training on the default corpus (the full one takes long to make)
  # no "pre-training step" case by default: compiling it and its transformers peer at three
  # sizes may not fit 8 minutes; the SSL cell times the real step (add it by SPEED_CASES)
  speed=(--cases "${SPEED_CASES:-batch-hard,Gumbel,ECE}" --budget 0.5
         --amp bf16 --compile --cuda-graphs)
  ssl=(--amp bf16 --set ssl_phoneme.corpus=default --set ssl_phoneme.steps=300
       --set ssl_phoneme.ft_steps=50 --set ssl_phoneme.ft_freeze_steps=10)
  quick=()
  limits=(150 180 120 30)  # seconds per step: 8 minutes in all; a step over its limit fails
fi

step() {  # step NAME LIMIT COMMAND...: output in WORK/NAME.log, status in WORK/steps.tsv
  local name=$1 limit=$2 start=$SECONDS rc=0
  shift 2
  echo "gpu-check: $name ..." >&2
  timeout "$limit" "$@" >"$work/$name.log" 2>&1 || rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" "$limit" >>"$work/steps.tsv"
}

step speed "${limits[0]}" "$py" run_all.py speed --size quick --device "$device" "${speed[@]}" \
  --no-figures --quiet --out "$work/speed"
step ssl "${limits[1]}" "$py" run_all.py --suite full --tasks ssl_phoneme \
  --methods "$ssl_methods" --seeds 1 --device "$device" "${ssl[@]}" --quiet --no-figures \
  --out "$work/ssl"
step quick "${limits[2]}" "$py" run_all.py --suite quick --tasks calibration,speaker \
  ${quick[@]+"${quick[@]}"} --device "$device" --quiet --no-figures --out "$work/quick"
step compare "${limits[3]}" "$py" run_all.py compare "$work/quick" reports/baseline

exec "$py" tools/gpu_check_table.py "$work" --device "$device" --gpu "$gpu"
