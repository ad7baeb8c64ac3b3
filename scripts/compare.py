#!/usr/bin/env python3
"""Runs goro's workloads and its peers' side by side and writes the table.

Called by scripts/compare.sh, which builds everything first. Every run of
every workload is a fresh process; the implementations take turns within
each round (the order rotates from round to round), so drift in the machine
spreads over all of them. Writes the table between the compare markers of
BENCHMARKS.md (a full run, unless --no-write) and prints it; --help says how.
"""
import datetime, glob, os, platform, re, statistics, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOADS = ["spawn", "skynet", "pingpong", "pingpong_1p", "prodcons", "select4", "yield",
             "chained_spawn", "timers", "parked_memory", "syscall_handoff", "hog", "hidden_block",
             "blocked_pingpong", "echo"]
PEERS = ["go", "tokio", "may", "threads"]
TITLES = {"goro": "goro", "go": "Go", "tokio": "Tokio", "may": "may", "threads": "threads"}
# Goals of the benchmark issue: goro's figure relative to the best peer.
# ("max", x): ratio must be <= x; ("min", x): >= x; ("abs", x): goro <= x;
# ("absmin", x): goro >= x.
GOALS = {"spawn": ("max", 0.5), "skynet": ("max", 0.7), "pingpong": ("max", 0.5), "yield": ("max", 0.5),
         "chained_spawn": ("max", 0.7), "prodcons": ("max", 0.8), "select4": ("max", 0.8),
         "timers_p99_lateness": ("max", 0.5), "parked_memory": ("abs", 5.0), "echo": ("min", 1.2),
         "hidden_block_p99": ("abs", 2000.0), "blocked_pingpong_ratio": ("absmin", 0.8)}
# Figures where higher is better besides rates (`/s`).
HIGHER_BETTER = {"blocked_pingpong_ratio"}
BEGIN, END = "<!-- compare:begin -->", "<!-- compare:end -->"


def commands():
    exe = sorted((p for p in glob.glob(f"{ROOT}/target/release/deps/workloads-*")
                  if os.access(p, os.X_OK) and not p.endswith(".d")), key=os.path.getmtime)
    if not exe:
        sys.exit("compare: goro's workloads binary is missing; run scripts/compare.sh")
    cmds = {"goro": [exe[-1], "--child"]}
    rust = f"{ROOT}/benches/peers/rust/target/release"
    for peer in ("tokio", "may", "threads"):
        path = f"{rust}/peer-{peer}"
        cmds[peer] = [path] if os.path.exists(path) else None
    go = f"{ROOT}/target/peer-go"
    cmds["go"] = [go] if os.path.exists(go) else None
    return cmds


def run(cmd, name):
    """Returns ({key: (value, unit)}, None), or (None, the reason there is no figure)."""
    try:
        p = subprocess.run(cmd + [name], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None, "timed out after 600 s"
    if p.returncode == 3:
        lines = p.stderr.strip().splitlines()
        return None, lines[-1] if lines else "not implemented"
    if p.returncode != 0:
        tail = [l for l in p.stderr.splitlines() if l.strip()][:3]
        return None, f"FAILED (exit {p.returncode}): {' / '.join(tail)}"
    res = {}
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) == 3:
            res[f[0]] = (float(f[1]), f[2])
    return res, None


def versions():
    v = {"date": datetime.date.today().isoformat()}
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    v["machine"] = f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}"
    try:
        v["rustc"] = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.split()[1]
    except (OSError, IndexError):
        pass
    go = os.environ.get("GO_BIN")
    if go and os.path.exists(f"{ROOT}/target/peer-go"):
        out = subprocess.run([go, "version"], capture_output=True, text=True).stdout.split()
        if len(out) > 2:
            v["go"] = out[2]
    lock = f"{ROOT}/benches/peers/rust/Cargo.lock"
    if os.path.exists(lock):
        text = open(lock).read()
        for crate in ("tokio", "may", "crossbeam-channel"):
            m = re.search(rf'name = "{crate}"\nversion = "([^"]+)"', text)
            if m:
                v[crate] = m.group(1)
    return v


def fmt(x):
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.0f}"


def cell(vals):
    if not vals:
        return "-"
    med = fmt(statistics.median(vals))
    return med if len(vals) == 1 else f"{med} ({fmt(min(vals))}–{fmt(max(vals))})"


def render(order, units, samples, impls):
    lines = ["| workload | unit | " + " | ".join(TITLES[i] for i in impls) + " | best peer | goro / best | goal |",
             "|---|---|" + "---:|" * len(impls) + "---|---:|---|"]
    for key in order:
        unit = units[key]
        meds = {i: statistics.median(samples[key][i]) for i in impls if samples[key].get(i)}
        peers = {i: m for i, m in meds.items() if i != "goro"}
        pick = max if unit.endswith("/s") or key in HIGHER_BETTER else min
        best = pick(peers, key=peers.get) if peers else None
        ratio = meds["goro"] / peers[best] if best and "goro" in meds and peers[best] else None
        verdict = ""
        if key in GOALS:
            kind, x = GOALS[key]
            if kind == "abs" and "goro" in meds:
                verdict = f"≤ {x:g} {unit}: " + ("met" if meds["goro"] <= x else "**not met**")
            elif kind == "absmin" and "goro" in meds:
                verdict = f"≥ {x:g} {unit}: " + ("met" if meds["goro"] >= x else "**not met**")
            elif kind in ("max", "min") and ratio is not None:
                ok = ratio <= x if kind == "max" else ratio >= x
                verdict = ("≤ " if kind == "max" else "≥ ") + f"{x:g}×: " + ("met" if ok else "**not met**")
        row = [key, unit] + [cell(samples[key].get(i, [])) for i in impls]
        row += [TITLES[best] if best else "-", f"{ratio:.2f}" if ratio is not None else "-", verdict]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


USAGE = """usage: scripts/compare.sh [--runs N] [--peers go,tokio,may,threads] [--no-write] [--write] [WORKLOAD...]

Runs every workload (or the named ones) for goro and its peers, N fresh
processes each (default 5), and prints the table. A full run writes it into
BENCHMARKS.md unless --no-write; a run of named workloads writes only with
--write (it would replace the full table with a partial one).
Workloads: """ + ", ".join(WORKLOADS)


def main():
    args = sys.argv[1:]
    runs, peers = 5, PEERS
    if "-h" in args or "--help" in args:
        print(USAGE)
        return

    def take(flag):
        i = args.index(flag)
        val = args[i + 1]
        del args[i:i + 2]
        return val
    if "--runs" in args:
        runs = int(take("--runs"))
    if "--peers" in args:
        peers = [p for p in take("--peers").split(",") if p in PEERS]
    write = None
    if "--no-write" in args:
        args.remove("--no-write")
        write = False
    if "--write" in args:
        args.remove("--write")
        write = True
    bad = [a for a in args if a not in WORKLOADS]
    if bad:
        sys.exit(f"compare: unknown workload or flag {', '.join(bad)}\n\n{USAGE}")
    names = args or WORKLOADS
    if write is None:
        write = not args
    cmds = commands()
    impls = ["goro"] + [p for p in peers if cmds.get(p)]
    skipped = {p: "not built (see the messages above)" for p in peers if not cmds.get(p)}
    for p, why in skipped.items():
        print(f"compare: {p}: {why}", file=sys.stderr)
    samples, units, order, reasons = {}, {}, [], {}
    for name in names:
        for r in range(runs):
            k = r % len(impls)
            for impl in impls[k:] + impls[:k]:
                if (impl, name) in reasons:
                    continue
                res, why = run(cmds[impl], name)
                if res is None:
                    reasons[(impl, name)] = why
                    print(f"compare: {impl} {name}: {why}", file=sys.stderr)
                    continue
                for key, (val, unit) in res.items():
                    if key not in units:
                        units[key] = unit
                        order.append(key)
                    samples.setdefault(key, {}).setdefault(impl, []).append(val)
            print(f"compare: {name} round {r + 1}/{runs} done", file=sys.stderr)
    v = versions()
    vers = ", ".join(f"{k} {v[k]}" for k in ("rustc", "go", "tokio", "may", "crossbeam-channel") if k in v)
    body = (f"Measured {v['date']} on {v['machine']} with `scripts/compare.sh --runs {runs}`: "
            f"median (min–max) of {runs} fresh-process runs per implementation, "
            f"the implementations alternating within each round. Versions: {vers}.\n\n"
            + render(order, units, samples, impls))
    # The peers say "<peer>: <workload> not run: <why>"; keep the why.
    notes = [f"- {TITLES[i]} `{n}`: {why.removeprefix(f'{i}: {n} not run: ')}" for (i, n), why in sorted(reasons.items())]
    notes += [f"- {TITLES[p]}: {why}" for p, why in skipped.items()]
    if notes:
        body += "\nNo figure (the reason each implementation gave):\n\n" + "\n".join(notes) + "\n"
    print(body)
    if write:
        path = f"{ROOT}/BENCHMARKS.md"
        text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
        if BEGIN not in text or END not in text:
            text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        open(path, "w").write(f"{head}{BEGIN}\n{body}{END}{tail}")
        print(f"compare: wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
