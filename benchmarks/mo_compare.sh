#!/usr/bin/env bash
# The multi-objective comparisons of docs/results.md: 30 seeds per agent, 500 evaluations per search,
# NAS-Bench-201 (accuracy against params, accuracy against FLOPs) and NAS-Bench-Macro (accuracy against
# params). Each writes results.csv, summary.md (hypervolume and IGD against the exact front), fronts.csv,
# best_so_far.png and hypervolume.png into its folder under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
export NAS_GYM_DATA="${NAS_GYM_DATA:-$(cd ../shared/data && pwd)}"
out="${1:-runs/mo}"
agents=random,mo-evolution,mo-reinforce
time .venv/bin/nas-gym compare --env NASBench201-v0 --agents "$agents" --seeds 30 --episodes 500 \
    --objectives accuracy,params --out "$out/nb201-params"
time .venv/bin/nas-gym compare --env NASBench201-v0 --agents "$agents" --seeds 30 --episodes 500 \
    --objectives accuracy,flops --out "$out/nb201-flops"
time .venv/bin/nas-gym compare --env NASBenchMacro-v0 --agents "$agents" --seeds 30 --episodes 500 \
    --objectives accuracy,params --out "$out/macro-params"
