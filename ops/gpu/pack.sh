#!/usr/bin/env bash
# Packs the GPU check kit (ops/gpu/README.md): a self-contained bundle for a bare GPU machine with no Java
# and no network, compressed and split into pieces that each fit one device call.
#
#   ops/gpu/pack.sh [--cpu] [--anchors DIR] [--out DIR] [--piece-mib N]
#
#   --cpu          ONNX Runtime's CPU natives instead of the CUDA ones: the bundle check.sh dry-runs here
#   --anchors DIR  the PyTorch reference (dino_ref.py) for the side-by-side step (default: ../shared/anchors)
#   --out DIR      where the pieces go (default: ops/gpu/out; ignored by git)
#   --piece-mib N  the largest piece, MiB (default 44: a device call carries 64 MiB, the repository's
#                  tracked files, about 16 MiB, included)
#
# The bundle: a jlink'd Java runtime, dinostream-kit.jar (model, runtime, the step/bench/export/parity
# commands; no Flink, no Kafka), the natives (ONNX Runtime 1.24.1 CPU or CUDA 13 build, oneDNN, OpenCL's
# loader, JavaCPP; unpacked into one class-path folder), the parity fixtures, torch_step.py with
# dino_ref.py, check.sh. It writes bundle.tar.xz.part-NN, bundle.sha256 and sizes.json.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
flavour=gpu
anchors="$root/../shared/anchors"
out="$here/out"
piece_mib=44
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) flavour=cpu; shift ;;
    --anchors) anchors="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --piece-mib) piece_mib="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "pack.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -f "$anchors/dino_ref.py" ] || { echo "pack.sh: no dino_ref.py in $anchors (the PyTorch reference; --anchors DIR)" >&2; exit 2; }

prop() { sed -n "s:.*<$1>\(.*\)</$1>.*:\1:p" "$root/pom.xml" | head -1; }
ort="$(prop onnxruntime.version)"; dnnl="$(prop dnnl.version)"; opencl="$(prop opencl.version)"; javacpp="$(prop javacpp.version)"
classifier=linux-x86_64; [ "$flavour" = gpu ] && classifier=linux-x86_64-gpu

stage="$(mktemp -d)"; trap 'rm -rf "$stage"' EXIT
kit="$stage/dinostream-kit"; mkdir -p "$kit/lib" "$kit/fixtures" "$kit/torch"
t0=$(date +%s)

echo "[pack] building dinostream-kit.jar (mvn package, tests skipped)..." >&2
(cd "$root" && mvn -q -B -o -DskipTests -pl pipeline -am package) >&2 || (cd "$root" && mvn -q -B -DskipTests -pl pipeline -am package) >&2
cp "$root/pipeline/target/dinostream-kit.jar" "$kit/lib/"

echo "[pack] natives: onnxruntime $ort:$classifier, dnnl $dnnl, opencl $opencl, javacpp $javacpp..." >&2
mkdir -p "$stage/jars" "$kit/natives"
for a in "org.bytedeco:onnxruntime:$ort:jar:$classifier" "org.bytedeco:dnnl:$dnnl:jar:linux-x86_64" \
         "org.bytedeco:opencl:$opencl:jar:linux-x86_64" "org.bytedeco:javacpp:$javacpp:jar:linux-x86_64"; do
  (cd "$root" && mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy -Dartifact="$a" -DoutputDirectory="$stage/jars") >&2
done
# Unpacked into one class-path folder: xz compresses the raw libraries better than the jars' deflate
# (the CUDA provider: 183 MB, 116 MB deflated, 104 MB xz).
for j in "$stage"/jars/*.jar; do (cd "$kit/natives" && unzip -q -o "$j" -x 'META-INF/*'); done

echo "[pack] Java runtime (jlink)..." >&2
# jdeps' list for the kit jar, plus what reflection and JNI reach (logging, management for peak RSS and MXBeans).
modules="$(jdeps --ignore-missing-deps --print-module-deps --multi-release 17 "$kit/lib/dinostream-kit.jar" 2>/dev/null || true)"
modules="${modules:+$modules,}java.base,java.logging,java.management,jdk.management,jdk.unsupported,java.sql,java.net.http"
# Uncompressed: xz does better on the whole than on jlink's zip.
jlink --add-modules "$modules" --strip-debug --no-man-pages --no-header-files --compress=0 --output "$kit/jre"

echo "[pack] fixtures, the PyTorch side, check.sh..." >&2
for d in "$root"/model/src/test/resources/fixtures/*/; do
  n="$(basename "$d")"
  [ -f "$d/hparams.json" ] && [ -f "$d/in.safetensors" ] && [ -f "$d/crops.safetensors" ] && [ -f "$d/out.safetensors" ] || continue
  mkdir -p "$kit/fixtures/$n"
  cp "$d"/hparams.json "$d"/in.safetensors "$d"/crops.safetensors "$d"/out.safetensors "$kit/fixtures/$n/"
done
cp "$here/torch_step.py" "$anchors/dino_ref.py" "$kit/torch/"
cp "$here/check.sh" "$kit/"
echo "$flavour" > "$kit/FLAVOUR"

echo "[pack] compressing (xz -6) and splitting into ${piece_mib} MiB pieces..." >&2
rm -rf "$out"; mkdir -p "$out"
unpacked=$(du -sb "$kit" | cut -f1)
(cd "$stage" && tar cf - dinostream-kit) | xz -6 -T0 > "$stage/bundle.tar.xz"
(cd "$out" && split -b "${piece_mib}m" -d -a 2 "$stage/bundle.tar.xz" bundle.tar.xz.part-)
(cd "$stage" && sha256sum bundle.tar.xz | sed 's: .*:  bundle.tar.xz:') > "$out/bundle.sha256"
packed=$(stat -c %s "$stage/bundle.tar.xz")

{
  echo "{"
  echo "  \"flavour\": \"$flavour\","
  echo "  \"unpacked_bytes\": $unpacked,"
  echo "  \"bundle_bytes\": $packed,"
  echo "  \"piece_mib\": $piece_mib,"
  echo "  \"parts\": {"
  first=1
  for p in "$out"/bundle.tar.xz.part-*; do
    [ $first = 1 ] || echo ","
    first=0
    printf '    "%s": %s' "$(basename "$p")" "$(stat -c %s "$p")"
  done
  echo ""
  echo "  },"
  echo "  \"components_bytes\": {"
  echo "    \"jre\": $(du -sb "$kit/jre" | cut -f1),"
  echo "    \"kit_jar\": $(stat -c %s "$kit/lib/dinostream-kit.jar"),"
  echo "    \"natives\": $(du -sb "$kit/natives" | cut -f1),"
  echo "    \"fixtures\": $(du -sb "$kit/fixtures" | cut -f1),"
  echo "    \"torch\": $(du -sb "$kit/torch" | cut -f1)"
  echo "  },"
  echo "  \"pack_seconds\": $(( $(date +%s) - t0 ))"
  echo "}"
} > "$out/sizes.json"
cat "$out/sizes.json"
ls -l "$out" >&2
