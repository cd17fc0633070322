#!/usr/bin/env bash
# The GPU check (ops/gpu/README.md), run on the lent machine after the pieces arrived, or here on the CPU
# bundle (pack.sh --cpu) as a dry run. Writes check.json (everything measured) and check.log to --out.
#
#   check.sh [--kit DIR] [--out DIR] [--preset vit-s16] [--batch 64] [--steps 20] [--warmup 3] [--torch-device cuda|cpu]
#            [--python PYTHON]
#
#   --kit DIR   where bundle.tar.xz.part-* and bundle.sha256 are (default /tmp/dinostream-kit, where receive.sh
#               puts them); unpacked there once
#   --out DIR   where check.json and check.log go (default: $OUT, else ./gpu-check)
#   --python P  the Python with PyTorch (default: python3, the lent machine's; Debian's is /usr/bin/python3)
#
# (a) the PyTorch reference's fixtures on the device, both runtimes (float32 within 1e-4; bf16/fp16 by their
#     derived tolerances); (b) bench train-step of --preset at --batch with the state kept on the device and
#     with it copied every step, fp32, and bf16 on the device (halving the batch while it does not fit);
#     (c) the reference's step in PyTorch with AMP (bf16) and in float32 on the same device. Each phase's exit
#     status and seconds are recorded; a failing phase does not stop the others.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
kit_dir=/tmp/dinostream-kit
out="${OUT:-$PWD/gpu-check}"
preset=vit-s16; batch=64; steps=20; warmup=3; torch_device=""; python=python3
while [ $# -gt 0 ]; do
  case "$1" in
    --kit) kit_dir="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --preset) preset="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --torch-device) torch_device="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out" "$kit_dir"
work="$(mktemp -d)"
log="$out/check.log"
: > "$log"
say() { echo "[check $(date +%H:%M:%S)] $*" | tee -a "$log" >&2; }
t_start=$(date +%s)
phases="$work/phases.jsonl"; : > "$phases"

# phase NAME CMD...: runs CMD with its output appended to the log, records seconds and exit status.
phase() {
  local name="$1"; shift
  local t0; t0=$(date +%s.%N)
  say "$name: $*"
  "$@" >> "$log" 2>&1
  local rc=$?
  local dt; dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  echo "{\"phase\":\"$name\",\"rc\":$rc,\"seconds\":$dt}" >> "$phases"
  say "$name: rc $rc in ${dt} s"
  return $rc
}

# 1. The bundle: the pieces in --kit (receive.sh put them there), checked, unpacked once.
kit="$kit_dir/dinostream-kit"
if [ ! -x "$kit/jre/bin/java" ]; then
  unpack() {
    cd "$kit_dir" && ls bundle.tar.xz.part-* >/dev/null && cat bundle.tar.xz.part-* > bundle.tar.xz \
      && sha256sum -c bundle.sha256 \
      && { if command -v xz >/dev/null; then xz -dc bundle.tar.xz | tar xf -;
           else python3 -c "import tarfile; tarfile.open('bundle.tar.xz', 'r:xz').extractall('.')"; fi; } \
      && rm -f bundle.tar.xz
  }
  phase unpack unpack || { say "the bundle is incomplete or damaged: pieces in $kit_dir: $(ls "$kit_dir" | tr '\n' ' ')"; }
fi
flavour="$(cat "$kit/FLAVOUR" 2>/dev/null || echo missing)"
java="$kit/jre/bin/java"
cp="$kit/lib/*:$kit/natives"

# 2. The CUDA 13 libraries ONNX Runtime's CUDA provider links (cuDNN 9, cuBLAS, cuFFT, the runtime): from
# the Python environment's nvidia-* packages, else the system's.
dev=(--device cpu)
cuda_json="{}"
if [ "$flavour" = gpu ]; then
  dev=(--device cuda)
  roots=$("$python" -c 'import site, sys; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null)
  roots="$roots /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu /usr/local/nvidia/lib64"
  libdirs=""; found=""
  for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcufft.so.12 libcudnn.so.9 libnvrtc.so.13 libnvJitLink.so.13 libcurand.so.10; do
    f=$(find $roots -name "$lib*" \( -type f -o -type l \) 2>/dev/null | head -1)
    if [ -n "$f" ]; then d=$(dirname "$f"); found="$found\"$lib\":\"$d\","; case ":$libdirs:" in *":$d:"*) ;; *) libdirs="$libdirs:$d" ;; esac
    else found="$found\"$lib\":null,"; fi
  done
  export LD_LIBRARY_PATH="${libdirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  cuda_json="{${found%,}}"
  say "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  nvidia-smi >> "$log" 2>&1
fi
[ -n "$torch_device" ] || { [ "$flavour" = gpu ] && torch_device=cuda || torch_device=cpu; }
jopts=(-Xmx16g -XX:MaxDirectMemorySize=16g -Dorg.bytedeco.javacpp.cachedir="$kit_dir/javacpp-cache")
kitmain() { "$java" "${jopts[@]}" -cp "$cp" dinostream.cli.KitMain "$@"; }

phase version kitmain --version

# (a) parity against the committed PyTorch fixtures, the state kept on the device, then copied per step.
for r in device host; do
  phase "parity-$r" sh -c '"$@" > "'"$work"'/parity-'"$r"'.json"' _ "$java" "${jopts[@]}" -cp "$cp" dinostream.cli.KitMain \
    parity --fixtures "$kit/fixtures" "${dev[@]}" --runtime "$r" --json
done

# (b) the step's speed: fp32 with and without the state on the device, bf16 on the device.
bench() {   # NAME BATCH ARGS...: halves the batch while the step does not fit
  local name="$1" b="$2"; shift 2
  while [ "$b" -ge 2 ]; do
    if phase "bench-$name-b$b" sh -c '"$@" > "'"$work"'/bench-'"$name"'.json"' _ "$java" "${jopts[@]}" -cp "$cp" \
         dinostream.cli.KitMain bench train-step --preset "$preset" --batch "$b" --steps "$steps" --warmup "$warmup" \
         --peak-size 0 "${dev[@]}" --json "$@"; then return 0; fi
    b=$((b / 2))
  done
  return 1
}
bench device "$batch" --runtime device
bench host "$batch" --runtime host
bench device-bf16 "$batch" --runtime device --precision bf16

# (c) the PyTorch reference's step on the same device: AMP bf16, and float32.
if [ -f "$work/bench-device.json" ]; then
  "$python" -c 'import json,sys; d=json.load(open(sys.argv[1])); json.dump(d["config"], open(sys.argv[2],"w")); print(d["batch"])' \
    "$work/bench-device.json" "$work/config.json" > "$work/batch" 2>>"$log"
  tb=$(cat "$work/batch" 2>/dev/null || echo "$batch")
  for amp in bf16 none; do
    phase "torch-$amp" sh -c 'PYTHONUNBUFFERED=1 "$@" > "'"$work"'/torch-'"$amp"'.json"' _ "$python" "$kit/torch/torch_step.py" \
      --anchors "$kit/torch" --config "$work/config.json" --batch "$tb" --amp "$amp" --steps "$steps" --warmup "$warmup" \
      --device "$torch_device"
  done
fi

# One JSON of everything.
"$python" - "$work" "$out/check.json" "$flavour" "$cuda_json" "$(( $(date +%s) - t_start ))" "$preset" <<'EOF'
import json, os, sys
work, dest, flavour, cuda, total, preset = sys.argv[1:7]
def load(name):
    p = os.path.join(work, name)
    try:
        return json.load(open(p))
    except Exception:
        return None
res = {"flavour": flavour, "preset": preset, "total_seconds": int(total), "cuda_libraries": json.loads(cuda),
       "phases": [json.loads(l) for l in open(os.path.join(work, "phases.jsonl"))]}
for n in ["parity-device", "parity-host", "bench-device", "bench-host", "bench-device-bf16", "torch-bf16", "torch-none"]:
    res[n.replace("-", "_")] = load(n + ".json")
def ips(d):
    return d.get("images_per_s") if d else None
side = {"dinostream_fp32_device_state": ips(res["bench_device"]), "dinostream_fp32_host_state": ips(res["bench_host"]),
        "dinostream_bf16_device_state": ips(res["bench_device_bf16"]), "pytorch_amp_bf16": ips(res["torch_bf16"]),
        "pytorch_fp32": ips(res["torch_none"])}
res["images_per_s"] = side
a, b = side["dinostream_fp32_device_state"], side["dinostream_fp32_host_state"]
res["device_state_speedup"] = round(a / b, 3) if a and b else None
res["parity_ok"] = bool(res["parity_device"] and res["parity_device"].get("ok") and res["parity_host"] and res["parity_host"].get("ok"))
try:
    res["load_average"] = open("/proc/loadavg").read().split()[:3]
except OSError:
    pass
json.dump(res, open(dest, "w"), indent=1)
print(json.dumps({"parity_ok": res["parity_ok"], "images_per_s": side, "device_state_speedup": res["device_state_speedup"],
                  "total_seconds": res["total_seconds"]}))
EOF
say "done in $(( $(date +%s) - t_start )) s: $out/check.json"
