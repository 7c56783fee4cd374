#!/usr/bin/env bash
# A multi-host ExpertMesh cluster on one Linux machine: network namespaces for two router hosts, two worker hosts
# and a cache host, joined by a bridge (in a namespace of its own) with veth pairs, optionally with netem
# delay/loss on every host's interface. The routers share one expert placement through the cache node. Starts
# the processes on their own addresses, waits for both routers to be SERVING, then:
#   1. greedy tokens through each router, compared with `expertmesh run` in one process;
#   2. `expertmesh bench` through both routers with a rebalance asked of router 1 mid-run (no request may fail);
#   3. `expertmesh bench` through both routers with router 0 killed (SIGKILL) mid-run: the summary counts the
#      requests that failed (those in flight on it, UNAVAILABLE); the others went to router 1;
# and tears everything down on exit.
#
#   deploy/netns/run.sh [--delay 1ms] [--loss 0.1%] [--num-requests 40] [--model DIR]
#
# --delay D is added on each host's egress (tc netem), so a router↔worker round trip gets 2·D; a kernel without
# sch_netem gets the same on router↔worker RPCs from delay_proxy.py instead (and cannot do --loss). Needs root and
# `ip netns`; without them it prints a skip message and exits 0. Needs the packaged CLI (bin/test builds it).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

delay=""
loss=""
requests=40
model="core/src/test/resources/fixtures/deepseek-v3-tiny/f32"
while [ $# -gt 0 ]; do
  case "$1" in
    --delay) delay="${2:?--delay needs a value, e.g. 1ms}"; shift 2 ;;
    --loss) loss="${2:?--loss needs a value, e.g. 0.1%}"; shift 2 ;;
    --num-requests) requests="${2:?--num-requests needs a number}"; shift 2 ;;
    --model) model="${2:?--model needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "netns: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$requests" in ''|*[!0-9]*) echo "netns: --num-requests must be a positive number, got '$requests'" >&2; exit 2 ;; esac
[ -d "$model" ] || { echo "netns: --model $model is not a directory" >&2; exit 2; }

if [ "$(id -u)" != 0 ]; then
  echo "netns: skipped (needs root to create network namespaces)"; exit 0
fi
probe="emprobe$$"
if ! command -v ip >/dev/null || ! ip netns add "$probe" 2>/dev/null; then
  echo "netns: skipped (ip netns is not available here)"; exit 0
fi
ip netns delete "$probe"
# netem when the kernel has it; otherwise --delay falls back to a delaying TCP proxy in front of each worker
# (delay_proxy.py: router↔worker RPCs only), and --loss cannot be emulated.
shaping=none
if [ -n "$delay" ] || [ -n "$loss" ]; then
  ip netns add "$probe"
  if command -v tc >/dev/null && ip netns exec "$probe" tc qdisc add dev lo root netem delay 1ms 2>/dev/null; then
    shaping=netem
  elif [ -n "$loss" ]; then
    ip netns delete "$probe"
    echo "netns: --loss needs the kernel's sch_netem qdisc, which this kernel lacks" >&2; exit 2
  else
    shaping=proxy
    delay_ms=$(python3 -c 'import re,sys
m = re.fullmatch(r"([0-9]*\.?[0-9]+)(us|ms|s)", sys.argv[1])
if not m: sys.exit("netns: --delay must look like 500us, 1ms or 0.01s, got " + repr(sys.argv[1]))
print(float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)])' "$delay")
  fi
  ip netns delete "$probe"
fi
if [ ! -f cli/target/expertmesh-cli.jar ] || [ ! -d cli/target/lib ]; then
  echo "netns: the CLI is not built; run bin/test (or any bin/expertmesh command) first" >&2; exit 1
fi
# As bin/smoke-test: use the jar as built, never rebuild from inside a namespace.
touch cli/target/lib/.complete

id=$(( $$ % 40000 ))
pfx="em${id}"                                        # namespace and interface prefix, unique per run
net="10.$(( 100 + id % 100 )).$(( id / 100 % 250 ))"   # a /24 of its own
declare -A addr=([r]="$net.10" [r1]="$net.14" [w0]="$net.11" [w1]="$net.12" [c]="$net.13")
hosts=(r r1 w0 w1 c)
logs=$(mktemp -d)
pids=()

teardown() {
  local rc=$?
  trap - EXIT INT TERM
  # The routers first (they drain), then the rest; SIGKILL whatever is left after 20 s.
  for p in "${pids[@]:0:2}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 80); do
    alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break; sleep 0.25
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for h in "${hosts[@]}" sw; do ip netns delete "$pfx$h" 2>/dev/null || true; done
  if [ $rc != 0 ]; then
    for f in "$logs"/*.log; do [ -f "$f" ] && { echo "--- $(basename "$f") (last 30 lines)"; tail -n 30 "$f"; }; done >&2
    echo "netns: failed (exit $rc)" >&2
  fi
  rm -rf "$logs"
  exit $rc
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The switch: a bridge in a namespace of its own, so nothing is added to the host's network.
ip netns add "${pfx}sw"
ip -n "${pfx}sw" link add br0 type bridge
ip -n "${pfx}sw" link set br0 up
for h in "${hosts[@]}"; do
  ns="$pfx$h"
  ip netns add "$ns"
  ip link add "$pfx$h-a" type veth peer name "$pfx$h-b"
  ip link set "$pfx$h-a" netns "$ns"
  ip -n "$ns" link set "$pfx$h-a" name eth0
  ip link set "$pfx$h-b" netns "${pfx}sw"
  ip -n "${pfx}sw" link set "$pfx$h-b" master br0 up
  ip -n "$ns" addr add "${addr[$h]}/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  if [ $shaping = netem ]; then
    ip netns exec "$ns" tc qdisc add dev eth0 root netem ${delay:+delay "$delay"} ${loss:+loss "$loss"}
  fi
done
case $shaping in
  netem) shaped="netem on every host: delay ${delay:-0} loss ${loss:-0%} per direction" ;;
  proxy) shaped="no sch_netem in this kernel: +$delay per direction on router-worker RPCs (delay_proxy.py)" ;;
  *) shaped="no added delay or loss" ;;
esac
echo "netns: hosts router-0 ${addr[r]}, router-1 ${addr[r1]}, worker-0 ${addr[w0]}, worker-1 ${addr[w1]}," \
  "cache ${addr[c]} ($shaped)"

run_in() { # run_in HOST LOGNAME expertmesh-args...
  local h=$1 name=$2; shift 2
  ip netns exec "$pfx$h" bin/expertmesh "$@" >"$logs/$name.log" 2>&1 &
  pids+=($!)
}
threads=$(( $(nproc) > 2 ? $(nproc) / 3 : 1 ))
run_in c cache-0 cache-node --host "${addr[c]}" --port 5801 --members "${addr[c]}:5801"
run_in w0 worker-0 worker --model "$model" --port 50061 --experts none --threads "$threads"
run_in w1 worker-1 worker --model "$model" --port 50061 --experts none --threads "$threads"
wport=50061
if [ $shaping = proxy ]; then
  # The router reaches each worker through a proxy on the worker's host (port 50062 → the worker's 50061).
  wport=50062
  for h in w0 w1; do
    ip netns exec "$pfx$h" python3 deploy/netns/delay_proxy.py "${addr[$h]}:50062" 127.0.0.1:50061 "$delay_ms" \
      >"$logs/proxy-$h.log" 2>&1 &
    pids+=($!)
  done
fi
# The KV tier is on the bridge, not loopback: the router signs and checks its blocks with a secret made for this
# run (every router of a tier would get the same file). It lives in $logs, removed on exit.
(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$logs/kv-secret")
# The routers are started last but listed first in pids, so teardown stops them first. Both are clients of the
# cache node, so they share one expert placement (and the KV blocks).
router_pids=()
for h in r r1; do
  ip netns exec "$pfx$h" bin/expertmesh serve --model "$model" --port 50051 --threads "$threads" \
    --workers "${addr[w0]}:$wport,${addr[w1]}:$wport" --kv-store hazelcast-client --kv-members "${addr[c]}:5801" \
    --kv-secret-file "$logs/kv-secret" --drain-grace-seconds 5 >"$logs/router-$h.log" 2>&1 &
  router_pids+=($!)
done
pids=("${router_pids[@]}" "${pids[@]}")
r0="${addr[r]}:50051"
r1="${addr[r1]}:50051"

for h in r r1; do
  ip netns exec "$pfx$h" bin/expertmesh health --target "${addr[$h]}:50051" --wait-seconds 300 >/dev/null \
    2>"$logs/health-$h.log" || { echo "netns: router ${addr[$h]} did not become SERVING" >&2; exit 1; }
done
echo "netns: routers SERVING on $r0 and $r1 with workers ${addr[w0]}:$wport, ${addr[w1]}:$wport"

# 1. Greedy output through each router equals one process's.
prompt=0,818,726,297,56,207,375,667
expected=$(bin/expertmesh run --model "$model" --prompt-ids "$prompt" --max-tokens 9 --temperature 0 \
  --ignore-eos --threads 1 2>/dev/null)
for t in "$r0" "$r1"; do
  got=$(ip netns exec "$pfx"c bin/expertmesh generate --target "$t" --prompt-ids "$prompt" \
    --max-tokens 9 --temperature 0 --ignore-eos 2>>"$logs/generate.log")
  if [ "$got" != "$expected" ]; then
    echo "netns: greedy tokens through $t differ from run: '$got' vs '$expected'" >&2; exit 1
  fi
done
echo "netns: greedy tokens through both routers equal run's: $expected"

# bench_both LABEL ACTION: bench through both routers from the cache host; once its warm-up is done, runs ACTION.
bench_both() {
  local label=$1 action=$2 log="$logs/bench-$1.log"
  ip netns exec "$pfx"c bin/expertmesh bench --target "$r0,$r1" --allow-remote --max-concurrency 4 \
    --num-requests "$requests" --warmup 2 --input-len fixed:32 --output-len fixed:32 --seed 1 \
    >"$logs/summary-$label.txt" 2>"$log" &
  local bench=$!
  for _ in $(seq 1 600); do grep -q "warm-up:" "$log" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  $action
  wait $bench || true
  echo "netns: bench through both routers, $label:"
  cat "$logs/summary-$label.txt"
}
rebalance_on_router_1() {
  ip netns exec "$pfx"c bin/expertmesh admin rebalance --target "$r1" >"$logs/rebalance.log" 2>&1 \
    || { echo "netns: the rebalance failed" >&2; cat "$logs/rebalance.log" >&2; exit 1; }
  echo "netns: rebalanced by router 1 mid-run"
}
kill_router_0() {
  kill -KILL "${router_pids[0]}"
  wait "${router_pids[0]}" 2>/dev/null || true   # reaped here, quietly: its death is the point
  echo "netns: router 0 killed (SIGKILL) mid-run"
}

# 2. A rebalance on one router under load through both: no request fails.
bench_both rebalance rebalance_on_router_1
failed=$(awk -F: '/^Failed requests:/ {gsub(/ /, "", $2); print $2}' "$logs/summary-rebalance.txt")
[ "${failed:-x}" = 0 ] || { echo "netns: $failed requests failed during the rebalance" >&2; exit 1; }

# 3. One router killed under load: the summary counts what was in flight on it.
bench_both kill kill_router_0
echo "netns: done"
