#!/usr/bin/env bash
# Byte-identity matrix for the vPMU core refactor: every example x {its own, emulated, mediated, none}
# x {intel-icx, amd-zen4}; writes OUT/<example>__<design>__<preset>.json and OUT/SHA256SUMS.
# usage: matrix.sh REPO OUTDIR
set -u
REPO=$1; OUT=$2; mkdir -p "$OUT"; cd "$OUT"
for ex in "$REPO"/examples/*.toml; do
  name=$(basename "$ex" .toml)
  for d in own emulated mediated none; do
    for p in intel-icx amd-zen4; do
      args=(run "$ex" --json "$OUT/${name}__${d}__${p}.json" --set "host.preset=\"$p\"")
      [ "$d" != own ] && args+=(--design "$d")
      python -c "import sys; from vpmu.cli.main import app; sys.argv[0]='vpmu'; app()" "${args[@]}" >"$OUT/${name}__${d}__${p}.log" 2>&1 || echo "rc=$? ${name} ${d} ${p}" >>"$OUT/failures.txt"
    done
  done
done
sha256sum ./*.json > SHA256SUMS
