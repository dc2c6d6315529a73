#!/usr/bin/env bash
# After scripts/gpu-check.sh, on the build machine: fits the GPU's figures
# to the traces the check brought back (RESULTS/traces: the demo, the
# layers and OLMoE as they ran there) with `moec calibrate`, starting from the
# shipped description of that GPU, then predicts again every plan the
# check timed (cost-pairs.txt in RESULTS/logs.tar.gz) and prints the
# cost-model row with the shipped figures and with the fitted ones.
#
# Usage: scripts/gpu-refit.sh RESULTS [CLUSTER]
#   RESULTS  the check's $OUT (table.txt, logs.tar.gz, traces/)
#   CLUSTER  clusters/<CLUSTER>.yaml to start from (default: by the GPU's
#            name in table.txt)
#   TRACES="demo-kjv demo-kjv-bf16"  fit to these traces only (default:
#            all), e.g. to predict the layers from the demo alone.
# Writes RESULTS/fitted-<CLUSTER>.yaml. Needs the gpu-bundle the check ran
# (scripts/gpu-prepare.sh made it here), whose plans the traces are of.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MOEC_BUILD_DIR:-$root/build}"
bundle="${BUNDLE:-$root/gpu-bundle}"
results="${1:?usage: scripts/gpu-refit.sh RESULTS [CLUSTER]}"
cluster="${2:-}"
if [ -z "$cluster" ]; then
  case "$(grep -m1 '^gpu-check on' "$results/table.txt" 2>/dev/null)" in
    *H200*) cluster=8xH200 ;;
    *H100*) cluster=8xH100-SXM ;;
    *B200*) cluster=8xB200 ;;
    *) echo "gpu-refit: no GPU name in $results/table.txt; give CLUSTER" >&2; exit 2 ;;
  esac
fi
[ -f "$root/clusters/$cluster.yaml" ] || { echo "gpu-refit: no clusters/$cluster.yaml" >&2; exit 2; }

# Each trace with its plan: gpu-bundle/NAME.moeb or gpu-bundle/bench/NAME.moeb.
args=()
for trace in "$results"/traces/*.json; do
  [ -s "$trace" ] || continue
  name="$(basename "$trace" .json)"
  if [ -n "${TRACES:-}" ] && [[ " $TRACES " != *" $name "* ]]; then continue; fi
  plan="$bundle/$name.moeb"; [ -f "$plan" ] || plan="$bundle/bench/$name.moeb"
  [ -f "$plan" ] || { echo "gpu-refit: no plan for $trace in $bundle; skipped" >&2; continue; }
  args+=(--plan "$plan" --trace "$trace")
done
[ ${#args[@]} -gt 0 ] || { echo "gpu-refit: no traces with plans in $results/traces" >&2; exit 1; }
fitted="$results/fitted-$cluster.yaml"
"$build/bin/moec" calibrate --cluster "$root/clusters/$cluster.yaml" "${args[@]}" -o "$fitted"

# The check's predicted and measured times, then the fitted predictions.
pairs="$(mktemp)" refit="$(mktemp)"
trap 'rm -f "$pairs" "$refit"' EXIT
tar -xzf "$results/logs.tar.gz" -O ./cost-pairs.txt >"$pairs" 2>/dev/null || true
if [ ! -s "$pairs" ]; then
  echo "gpu-refit: no cost-pairs.txt in $results/logs.tar.gz: nothing to predict again"
  exit 0
fi
while read -r name predicted measured; do
  ms="$("$build/bin/moec" cost "$bundle/bench/$name.moeb" --cluster "$fitted" |
      awk '/ ms per run/ && !found {print $3; found = 1}')" || continue
  [ -n "$ms" ] && echo "$name $ms $measured" >>"$refit"
  printf '%-28s measured %9.2f ms  shipped %9.2f ms  fitted %9.2f ms\n' "$name" "$measured" \
      "$predicted" "${ms:-nan}"
done <"$pairs"
echo "cost-model with clusters/$cluster.yaml: $(python3 "$root/bench/cost_compare.py" "$pairs")"
echo "cost-model with $fitted: $(python3 "$root/bench/cost_compare.py" "$refit")"
