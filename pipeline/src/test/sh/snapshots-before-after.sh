#!/usr/bin/env bash
# Snapshot cost of two builds side by side: the same bounded `train` run over the same images, one
# after the other, on one machine, with an in-process broker of its own.
#   BEFORE_JAR=/path/to/old/dinostream.jar AFTER_JAR=pipeline/target/dinostream.jar pipeline/src/test/sh/snapshots-before-after.sh
# (build the old one in a worktree: git worktree add /tmp/old <commit> && (cd /tmp/old && mvn -q -DskipTests -pl pipeline -am package))
set -euo pipefail
: "${BEFORE_JAR:?}" "${AFTER_JAR:?}"
D=$(mktemp -d)
B=127.0.0.1:29555
uptime
java -cp "$AFTER_JAR" dinostream.pipeline.kafka.EmbeddedKafka 29555 "$D/kafka" 2> "$D/kafka.log" &
KPID=$!
trap 'kill $KPID 2>/dev/null' EXIT
sleep 12
cat > "$D/MkTopics.java" <<'JAVA'
import org.apache.kafka.clients.admin.*;
import java.util.*;
public class MkTopics { public static void main(String[] a) throws Exception {
  try (Admin ad = Admin.create(Map.of("bootstrap.servers", a[0]))) {
    List<NewTopic> t = new ArrayList<>();
    for (int i = 1; i < a.length; i++) t.add(new NewTopic(a[i], 1, (short) 1));
    ad.createTopics(t).all().get();
  } } }
JAVA
java -cp "$AFTER_JAR" "$D/MkTopics.java" $B before-images before-emb before-dead after-images after-emb after-dead
for t in before after; do
  java -jar "$AFTER_JAR" produce --bootstrap $B --topic $t-images --source synthetic --limit 1920 2>> "$D/produce.log"
done
for t in before after; do
  jar=$BEFORE_JAR; [ $t = after ] && jar=$AFTER_JAR
  java -jar "$jar" train --bootstrap $B --images-topic $t-images --embeddings-topic $t-emb --dead-letter-topic $t-dead \
     --model-id $t --preset fmnist-small --batch 64 --snapshot-every 2 --checkpoint-interval 5 --bounded --no-embed --probe-size 0 \
     --threads 2 --parallelism 1 --out "$D/$t" > "$D/$t.out" 2> "$D/$t.err"
done
uptime
python3 - "$D" <<'PY'
import json, statistics, sys
d = sys.argv[1]
for t in ["before", "after"]:
    rows = [json.loads(l) for l in open(f"{d}/{t}/metrics.jsonl")]
    ts = [r["time_ms"] for r in rows]
    gaps = [b - a for a, b in zip(ts, ts[1:])][2:]
    sm = sorted(r["step_ms"] for r in rows[3:])
    written = sum(1 for l in open(f"{d}/{t}.err") if "snapshot of model" in l)
    print(f"{t}: {len(rows)} steps, between step ends p50 {statistics.median(gaps):.0f} ms max {max(gaps):.0f} ms, "
          f"train step p50 {sm[len(sm) // 2]:.0f} ms max {sm[-1]:.0f} ms, snapshots written {written}, wall {(ts[-1] - ts[0]) / 1000:.1f} s")
PY
