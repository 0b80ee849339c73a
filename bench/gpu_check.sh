#!/usr/bin/env bash
# The GPU checks of issues 12 and 13, as one command on a machine with an NVIDIA GPU and no internet.
#
#   bash bench/gpu_check.sh PART...      PART: probe | loop | speed | augab | models | quality | supstudy   (in the order given)
#
# What the machine must be given (it reaches no package index): the wheels of the packages its Python lacks in .whl/
# (fastai and its small pure-Python dependencies, fastprogress 1.0.3 -- 1.1 imports python-fasthtml --, lightly 1.6.0
# for speed.py's comparison; `pip download --no-deps --python-version 3.12 ...`), and Fashion-MNIST's four gzip IDX
# files in .fmnist/ (copied from /usr/share/datasets/fashion-mnist). Results go to $OUT (default bench/results/gpu):
#   probe    one `simclr-nb run` of every stage at the GPU preset's model size, with few epochs: the seconds per
#            pretraining epoch, per fine-tuning step and per distillation epoch that size the `gpu` preset of quality.py
#   loop     bench/gpu_loop.py --device cuda (ResNet-50 fine-tuning step: LARS per tensor or foreach, checkpoint each epoch or
#            every 30 s, no callbacks, supervised Adam, a plain PyTorch loop, compiled and CUDA-graph loops); LOOP_ONLY="a b"
#            runs only those variants, LOOP_JSON names the result file (default gpu_loop_cuda.json)
#   speed    bench/speed.py --device cuda (the kit against lightly, augmentation share, roofline at 8192^3 matmuls);
#            SPEED_ARGS adds arguments (e.g. "--widths 0.25 --no-lightly"), SPEED_JSON names the result file
#   augab    bench/augment_ab.py --device cuda: the augmentation of this tree against revision AB_REV (default 2fe7a23, before the
#            colour jitter stopped synchronising with the GPU), the same images and parameters, interleaved rounds
#   models   bench/models.py --device cuda (ResNet-50 1x and 2x+SK at 224 px, bf16 channels-last, share of the matmul peak)
#   quality  bench/quality.py --preset gpu (ResNet-50 1x on all of Fashion-MNIST)
#   supstudy bench/supervised_study.py at the gpu preset's size (ResNet-50 1x, batch 128, 200 steps, 0.2%): the kit's supervised
#            weight decay and Adam settings one at a time, and the plain reference, 3 seeds on validation (about 3 minutes
#            by the step times of gpu_loop.py; not yet run)
# Each part has its own time limit (LOOP_S, SPEED_S, MODELS_S, PROBE_S, QUALITY_S, SUPSTUDY_S seconds), so that one that runs long leaves
# the others their time; a stopped part still leaves the JSON its script wrote after every finished section.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/gpu}; mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
if [ -d .whl ] && ! python3 -c "import fastai" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl >>"$LOG" 2>&1 \
    || { echo "wheel install failed" | tee -a "$LOG"; exit 1; }
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
[ -d .fmnist ] && export SIMCLR_NB_DATA=$PWD/.fmnist
{ date -u; nvidia-smi -L; python3 -c "import torch, fastai, simclr_nb; print('torch', torch.__version__, 'fastai', fastai.__version__, torch.cuda.get_device_name())"; } >>"$LOG" 2>&1
part() { local name=$1 limit=$2; shift 2; echo "== $name ($(date -u +%T), limit ${limit}s): $*" | tee -a "$LOG"
  local t0=$SECONDS; timeout "$limit" "$@" >>"$LOG" 2>&1; local rc=$?
  echo "== $name rc=$rc in $((SECONDS - t0)) s" | tee -a "$LOG"; }
for p in "$@"; do case $p in
  probe) part probe "${PROBE_S:-150}" python3 -c "import sys; from simclr_nb.cli import main; sys.argv[0] = 'simclr-nb'; main()" run --dataset fashion_mnist --image-size 28 --depth 50 --width 1 \
           --pretrain-epochs 2 --pretrain-bs 512 --temperature 0.5 --color-strength 1.0 --label-fractions 0.01 --seeds 0 \
           --finetune-steps 300 --finetune-bs 128 --supervised-steps 300 --distill-epochs 1 --distill-bs 512 \
           --student-depth 50 --student-width 0.5 --out runs/gpu_probe --device cuda
         cp runs/gpu_probe/metrics.json "$OUT/probe_metrics.json" 2>/dev/null ;;
  loop) part loop "${LOOP_S:-120}" python3 bench/gpu_loop.py --device cuda ${LOOP_ONLY:+--only $LOOP_ONLY} --out "$OUT/${LOOP_JSON:-gpu_loop_cuda.json}" ;;
  speed) part speed "${SPEED_S:-200}" python3 bench/speed.py --device cuda --steps-small 10 --steps-large 10 $([ -n "${SPEED_COMPILE:-}" ] && echo --compile || echo --no-compile) \
           ${SPEED_ARGS:-} --out "$OUT/${SPEED_JSON:-speed_cuda.json}" ;;
  augab) part augab "${AUGAB_S:-120}" python3 bench/augment_ab.py --rev "${AB_REV:-2fe7a23}" --device cuda --threads 16 --rounds 40 \
           --out "$OUT/augment_ab_cuda.json" ;;
  models) part models "${MODELS_S:-120}" python3 bench/models.py --device cuda --out "$OUT" ;;
  quality) part quality "${QUALITY_S:-420}" python3 bench/quality.py --preset gpu --device cuda
           cp bench/results/quality_gpu.json bench/results/quality_gpu.md "$OUT"/ 2>/dev/null ;;
  supstudy) part supstudy "${SUPSTUDY_S:-300}" python3 bench/supervised_study.py --depth 50 --width 1 --bs 128 --steps 200 --device cuda \
             --out "$OUT/supervised_study_cuda.json" ;;
  *) echo "unknown part $p" | tee -a "$LOG" ;;
esac; done
