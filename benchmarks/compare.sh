#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Ours against PyTorch on the two reference models, same session, alternating, per
# configuration (model x batch 64/128/256 x threads 1/2). Ends with one line per
# configuration:  ratio bn-mlp b64 t1: 4.8x   (our training samples/s / PyTorch's).
#
# Usage: benchmarks/compare.sh [--quick] [--rounds R] [--epochs E] [--data DIR] [--no-busy]
#                              [--svg FILE]
#   --quick      one round, bn-mlp and deep-mlp at batch 64 only
#   --rounds R   ours/PyTorch alternations per configuration (default 2)
#   --epochs E   timed epochs per run (default 2; each run also warms up)
#   --data DIR   MNIST IDX files (default $MNIST_DIR, else data/mnist, fetched if missing)
#   --no-busy    skip the runs beside a competing CPU-bound process
#   --svg FILE   also draw the training samples/s chart (docs/benchmarks.svg is one)
#   --budget S   seconds after which an epoch or inference pass is cut and extrapolated to
#                60k samples (default 6; bounds the run when a configuration collapses)
#   --models L, --batches L, --threads L   subsets, e.g. --models bn-mlp --threads "1 2"
# Environment: BENCH_BIN (our benchmark binary; default: build build-bench-clang with clang++
# if present, else build-bench with the default compiler), PYTHON (default /usr/bin/python3,
# Debian's interpreter that has python3-torch).
#
# PyTorch gets its best configuration (measured in docs/benchmarks.md): OpenBLAS (Debian's
# libopenblas0-openmp, loaded through LD_LIBRARY_PATH, so the system's BLAS alternative is
# left alone) with OPENBLAS_CORETYPE unset (this environment sets Haswell, which picks the
# AVX2 kernels instead of AVX-512 ones: 2x slower here), torch.set_num_threads(T), OPENBLAS_NUM_THREADS=T, and with two
# threads GOMP_SPINCOUNT=0 (libgomp's spinning otherwise makes PyTorch 2-3x slower).
# Run time: 302 s measured on an idle 2-core machine (2026-11-22); 18 minutes with the cores
# shared at load 8, before the library's threads stopped collapsing (docs/benchmarks.md).
# --quick or --rounds 1 halve it.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-/usr/bin/python3}
rounds=2 epochs=2 quick=0 busy=1 svg="" budget=6
models=(bn-mlp deep-mlp) batches=(64 128 256) threads=(1 2)
data=${MNIST_DIR:-$repo/data/mnist}
while (($#)); do
  case $1 in
    --quick) quick=1 rounds=1 ;;
    --rounds) rounds=$2; shift ;;
    --epochs) epochs=$2; shift ;;
    --data) data=$2; shift ;;
    --no-busy) busy=0 ;;
    --svg) svg=$2; shift ;;
    --budget) budget=$2; shift ;;
    --models) read -ra models <<<"$2"; shift ;;
    --batches) read -ra batches <<<"$2"; shift ;;
    --threads) read -ra threads <<<"$2"; shift ;;
    -h|--help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

die() { echo "compare.sh: $*" >&2; exit 1; }
start=$(date +%s)

# --- our binary --------------------------------------------------------------------------
bench=${BENCH_BIN:-}
if [[ -z $bench ]]; then
  if command -v clang++ >/dev/null; then
    build=$repo/build-bench-clang cxx=(-DCMAKE_CXX_COMPILER=clang++)
  else
    build=$repo/build-bench cxx=()
  fi
  if [[ ! -f $build/CMakeCache.txt ]]; then
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release "${cxx[@]}" >/dev/null ||
      die "cmake configure failed"
  fi
  cmake --build "$build" -j2 --target bench_train >/dev/null || die "building bench_train failed"
  bench=$build/benchmarks/bench_train
fi
[[ -x $bench ]] || die "$bench is not an executable (BENCH_BIN?)"

# --- data -----------------------------------------------------------------------------------
if [[ ! -e $data/train-images-idx3-ubyte && ! -e $data/train-images-idx3-ubyte.gz ]]; then
  [[ $data == "$repo/data/mnist" ]] || die "no MNIST training images in $data"
  "$repo/scripts/fetch-mnist.sh" "$data" >&2 || die "could not fetch MNIST into $data"
fi

# --- PyTorch's environment --------------------------------------------------------------------
"$python" -c 'import torch' 2>/dev/null ||
  die "$python has no torch (apt-get install python3-torch; plain python3 may be another interpreter)"
openblas=""
for d in /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/x86_64-linux-gnu/openblas-pthread; do
  if [[ -e $d/libblas.so.3 ]]; then openblas=$d; break; fi
done
torch_env=(env -u OPENBLAS_CORETYPE)
if [[ -n $openblas ]]; then
  torch_env+=(LD_LIBRARY_PATH="$openblas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
else
  echo "compare.sh: WARNING: no OpenBLAS found; PyTorch will use the system BLAS, which on" \
       "Debian may be the reference BLAS (~2 GFLOP/s): apt-get install libopenblas0-openmp" \
       "for a fair baseline. The ratios below are then meaningless." >&2
fi

log=$(mktemp -t compare.XXXXXX)
trap 'rm -f "$log"' EXIT

ours() {  # model batch threads [extra args]
  local m=$1 b=$2 t=$3
  shift 3
  "$bench" --data "$data" --models "$m" --batches "$b" --threads "$t" --epochs "$epochs" \
    --warmup 0 --warmup-steps 50 --infer-passes 2 --epoch-budget "$budget" --no-split "$@" | grep '^RESULT impl=ours' | sed "s/\$/ tag=${tag:-main}/" >>"$log"
}
theirs() {  # model batch threads
  local m=$1 b=$2 t=$3 spin=()
  ((t > 1)) && spin=(GOMP_SPINCOUNT=0)
  "${torch_env[@]}" "${spin[@]}" "$python" "$repo/benchmarks/pytorch_baseline.py" --data "$data" \
    --model "$m" --batch "$b" --threads "$t" --epochs "$epochs" --warmup 0 --warmup-steps 50 \
    --infer-passes 2 --epoch-budget "$budget" | grep '^RESULT' | sed "s/\$/ tag=${tag:-main}/" >>"$log"
}

load=$(cut -d' ' -f1-3 /proc/loadavg)
peak=$("$bench" --peak-only)  # its first line names the CPU, family and model (bench_util.hpp)
echo "compare.sh: $(sed -n 's/^bench_train: //p' <<<"$peak"), $(nproc) CPUs," \
     "load average at start: $load"
echo "  ours:    $bench"
sed -n 's/^  \(build\|FMA peak\|cores\)/  ours: \1/p' <<<"$peak"
echo "  PyTorch: $("$python" -c 'import torch; print("torch", torch.__version__)'), BLAS" \
     "${openblas:-system default}, OPENBLAS_CORETYPE unset, GOMP_SPINCOUNT=0 with 2 threads"

((quick)) && batches=(64)
for r in $(seq 1 "$rounds"); do
  for m in "${models[@]}"; do
    for b in "${batches[@]}"; do
      for t in "${threads[@]}"; do
        # alternate which side goes first, so a drift in machine load does not favour one
        if ((r % 2)); then ours "$m" "$b" "$t"; theirs "$m" "$b" "$t"
        else theirs "$m" "$b" "$t"; ours "$m" "$b" "$t"; fi
        printf '  round %d/%d %-8s b%-3d t%d done (%ds)\n' "$r" "$rounds" "$m" "$b" "$t" \
          $(($(date +%s) - start))
      done
    done
  done
done

# Beside a competing CPU-bound process: two threads must not lose to one.
if ((busy)); then
  timeout 120 sh -c 'while :; do :; done' &
  pid=$!
  tag=busy
  for t in 1 2; do ours bn-mlp 64 "$t" --no-validate; done
  for t in 1 2; do theirs bn-mlp 64 "$t"; done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  tag=main
fi

echo "  load average at end: $(cut -d' ' -f1-3 /proc/loadavg); total $(($(date +%s) - start)) s"
"$python" - "$log" "$svg" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    key = (kv["tag"], kv["impl"], kv["model"], int(kv["batch"]), int(kv["threads"]))
    r = rows.setdefault(key, {"epochs": [], "infer": [], "cpu": [], "partial": 0})
    r["partial"] += int(kv.get("partial", 0))
    r["epochs"] += [float(x) for x in kv["epoch_list"].split(",")]
    r["infer"].append(float(kv["infer_sps"]))
    r["cpu"].append(float(kv["cpu_s"]))
    if float(kv.get("cross_core_ns", 0)) > 0:  # ours, two threads or more
        r.setdefault("cross", []).append(float(kv["cross_core_ns"]))

def summary(key):
    r = rows.get(key)
    if not r:
        return None
    e = r["epochs"]
    return {"med": statistics.median(e), "min": min(e), "max": max(e), "n": len(e),
            "sps": 60000 / statistics.median(e), "infer": statistics.median(r["infer"]),
            "cpu": statistics.median(r["cpu"]), "partial": r["partial"], "cross": r.get("cross", [])}

configs = sorted({k[2:] for k in rows if k[0] == "main"}, key=lambda c: (c[0] != "bn-mlp", c[1], c[2]))
print()
print("| model | batch | threads | ours s/epoch median [min, max] | PyTorch s/epoch median [min, max] "
      "| ours train samples/s | PyTorch train samples/s | ratio | ours infer/s | PyTorch infer/s | infer ratio |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
ratios = []
cut = lambda s: f", {s['partial']} cut" if s["partial"] else ""
for m, b, t in configs:
    o, p = summary(("main", "ours", m, b, t)), summary(("main", "pytorch", m, b, t))
    if not o or not p:
        continue
    ratio = p["med"] / o["med"]
    ratios.append((m, b, t, ratio))
    print(f"| {m} | {b} | {t} | {o['med']:.3f} [{o['min']:.3f}, {o['max']:.3f}] (n={o['n']}{cut(o)}) "
          f"| {p['med']:.3f} [{p['min']:.3f}, {p['max']:.3f}] (n={p['n']}{cut(p)}) | {o['sps']:.0f} | {p['sps']:.0f} "
          f"| {ratio:.2f}x | {o['infer']:.0f} | {p['infer']:.0f} | {o['infer'] / p['infer']:.2f}x |")
print("\nprocess CPU s/epoch (median; equal to the wall time on an idle machine with 1 thread, "
      "higher wall means time-sharing); with two threads, the ns a cache line took to the other "
      "core and back, measured after each of our runs' epochs (the median of each run):")
for m, b, t in configs:
    o, p = summary(("main", "ours", m, b, t)), summary(("main", "pytorch", m, b, t))
    if o and p:
        cross = "; cross-core " + ", ".join(f"{x:.0f}" for x in o["cross"]) + " ns" if o["cross"] else ""
        print(f"  {m} b{b} t{t}: ours {o['cpu']:.3f} (wall {o['med']:.3f}), PyTorch {p['cpu']:.3f} (wall {p['med']:.3f}){cross}")

busy = [(i, t, summary(("busy", i, "bn-mlp", 64, t))) for i in ("ours", "pytorch") for t in (1, 2)]
if any(s for _, _, s in busy):
    print("\nbeside a competing CPU-bound process (bn-mlp b64):")
    for i, t, s in busy:
        if s:
            print(f"  {i} t{t}: {s['med']:.3f} s/epoch [{s['min']:.3f}, {s['max']:.3f}]")

print("\ntargets:")
def best(impl, m, b):
    c = [(summary(("main", impl, m, b, t)), t) for t in (1, 2)]
    c = [(s["med"], t) for s, t in c if s]
    return min(c) if c else None
def check(name, ok, detail):
    print(f"  {'MET    ' if ok else 'NOT MET'} {name}: {detail}")
ob, pb = best("ours", "bn-mlp", 64), best("pytorch", "bn-mlp", 64)
if ob and pb:
    check(">= 4x PyTorch's best, bn-mlp b64", pb[0] / ob[0] >= 4,
          f"ours t{ob[1]} {ob[0]:.3f} s vs PyTorch t{pb[1]} {pb[0]:.3f} s = {pb[0] / ob[0]:.2f}x")
for m, b, t, ratio in ratios:
    if (m, b, t) == ("bn-mlp", 64, 1):
        check(">= 3.5x at 1 thread, bn-mlp b64", ratio >= 3.5, f"{ratio:.2f}x")
for m, t, limit in (("bn-mlp", 1, 0.42), ("bn-mlp", 2, 0.28), ("deep-mlp", 1, 1.4)):
    s = summary(("main", "ours", m, 64, t))
    if s:
        check(f"{m} b64 epoch on {t} core{'s' if t > 1 else ''} <= {limit} s", s["med"] <= limit,
              f"{s['med']:.3f} s (best batch: " + ", ".join(
                  f"b{b} {summary(('main', 'ours', m, b, t))['med']:.3f}"
                  for b in (64, 128, 256) if summary(("main", "ours", m, b, t))) + ")")
slower = [(m, b) for m, b, t in configs if t == 1 and summary(("main", "ours", m, b, 2))
          and summary(("main", "ours", m, b, 2))["med"] > summary(("main", "ours", m, b, 1))["med"]]
pairs = [(m, b) for m, b, t in configs if t == 1 and summary(("main", "ours", m, b, 2))]
if pairs:
    check("two threads never slower than one (ours)", not slower,
          "slower at " + ", ".join(f"{m} b{b}" for m, b in slower) if slower
          else f"t2 <= t1 in all {len(pairs)} pairs")
b1, b2 = summary(("busy", "ours", "bn-mlp", 64, 1)), summary(("busy", "ours", "bn-mlp", 64, 2))
if b1 and b2:
    check("two threads never slower than one beside a busy process (ours, bn-mlp b64)",
          b2["med"] <= b1["med"], f"t1 {b1['med']:.3f} s, t2 {b2['med']:.3f} s")

if sys.argv[2]:  # the chart: per configuration, ours and PyTorch's samples/s, min-max whiskers
    cfg = [(m, b, t, summary(("main", "ours", m, b, t)), summary(("main", "pytorch", m, b, t)))
           for m, b, t in configs]
    cfg = [c for c in cfg if c[3] and c[4]]
    w, h, left, top, bottom = 90 + 70 * len(cfg), 420, 70, 40, 70
    scale = max(60000 / s["min"] for c in cfg for s in c[3:5]) * 1.08
    y = lambda v: top + (h - top - bottom) * (1 - v / scale)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="14">training samples/s, 60k-sample '
           f'epochs (median; whiskers: fastest and slowest epoch)</text>']
    tick = 20000 if scale > 60000 else 10000
    for v in range(0, int(scale) + 1, tick):
        out.append(f'<line x1="{left}" x2="{w - 10}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 5}" y="{y(v) + 4:.1f}" text-anchor="end">{v // 1000}k</text>')
    for i, (m, b, t, o, p) in enumerate(cfg):
        x0 = left + 10 + 70 * i
        for j, (s, color) in enumerate(((o, "#1f77b4"), (p, "#ff7f0e"))):
            x = x0 + 26 * j
            out.append(f'<rect x="{x}" y="{y(s["sps"]):.1f}" width="24" height="{y(0) - y(s["sps"]):.1f}" fill="{color}"/>'
                       f'<line x1="{x + 12}" x2="{x + 12}" y1="{y(60000 / s["max"]):.1f}" '
                       f'y2="{y(60000 / s["min"]):.1f}" stroke="black"/>')
        out.append(f'<text x="{x0 + 25}" y="{y(o["sps"]) - 6:.1f}" text-anchor="middle">{p["med"] / o["med"]:.1f}x</text>'
                   f'<text x="{x0 + 25}" y="{h - bottom + 14}" text-anchor="middle">{m.split("-")[0]}</text>'
                   f'<text x="{x0 + 25}" y="{h - bottom + 27}" text-anchor="middle">b{b} t{t}</text>')
    out.append(f'<rect x="{left}" y="{h - 26}" width="12" height="12" fill="#1f77b4"/>'
               f'<text x="{left + 16}" y="{h - 16}">backprop</text>'
               f'<rect x="{left + 90}" y="{h - 26}" width="12" height="12" fill="#ff7f0e"/>'
               f'<text x="{left + 106}" y="{h - 16}">PyTorch 1.13 + OpenBLAS, best configuration</text></svg>')
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {sys.argv[2]}")

print()
for m, b, t, ratio in ratios:
    print(f"ratio {m} b{b} t{t}: {ratio:.1f}x")
EOF
