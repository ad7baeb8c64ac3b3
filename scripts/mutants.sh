#!/usr/bin/env bash
# Mutation testing of goro's core modules with cargo-mutants: each mutant is
# a small deliberate bug (a condition flipped, a function returning a
# default, an operator swapped); a mutant that no test catches ("missed") is
# a hole in the suite. Too slow for every CI run on 2 cores (docs/testing.md
# has the times): run the modules an issue touches before resolving it.
#
#   scripts/mutants.sh                 # every core module, one after another
#   scripts/mutants.sh runq sync       # some of them
#   scripts/mutants.sh --list          # the modules, their files and tests
#   MUTANTS_TIMEOUT=60 scripts/mutants.sh synctest   # seconds a mutant's tests may take (default 300)
#   MUTANTS_ITERATE=1 scripts/mutants.sh chan        # skip the mutants an earlier run caught
#   MUTANTS_RE='Chan<T>::eq' scripts/mutants.sh chan  # only the mutants whose name matches
#
# Results: target/mutants/<module>/mutants.out/{caught,missed,timeout,unviable}.txt;
# the script ends non-zero if any module has a missed mutant that is not in
# docs/testing.md's list of equivalent mutants.
set -euo pipefail
cd "$(dirname "$0")/.."

# module | files (globs) | test targets (any package of the workspace; `lib`:
# the libraries' unit tests) | name regex (optional)
# Each module runs its crate's model checks and the facade's integration
# tests that exercise it (not the doc tests, not trybuild).
MODULES=(
    "runq|runtime/src/runq.rs|runq_rules loom_runq sched syscall shutdown|"
    "park_token|runtime/src/park_token.rs|loom_park sched chan shutdown lock_os_thread exit|"
    "opstate|chan/src/opstate.rs|loom_opstate chan select|"
    "ring|chan/src/ring.rs|loom_ring chan select lib|"
    "chan|chan/src/chan.rs chan/src/sudog.rs chan/src/lock.rs|chan select deadlock synctest lib shutdown|"
    "select|chan/src/select.rs|select chan deadlock synctest shutdown lib|"
    "sync|runtime/src/sync/*.rs|sync context deadlock synctest lib|"
    "time|chan/src/time.rs runtime/src/timer.rs|chan sched synctest select context deadlock scaling shutdown lib|"
    "idle|runtime/src/sched.rs|sched syscall lock_os_thread runq_rules lib|wakep|spinning|may_spin|pidle|startm|stopm|steal|runq|globrunq|global_batch|spin_allowed|takes_runnext"
    "lock_os_thread|runtime/src/lock_os_thread.rs|lock_os_thread shutdown|"
    "takeover|runtime/src/takeover.rs|loom_hog hog|"
    "hog|runtime/src/hog.rs|loom_hog hog syscall|"
    "synctest|runtime/src/synctest.rs|synctest lib|"
)

if [[ "${1:-}" == "--list" ]]; then
    for m in "${MODULES[@]}"; do
        IFS='|' read -r name files tests re <<<"$m"
        echo "$name: $files (tests: ${tests}${re:+; mutants matching $re})"
    done
    exit 0
fi

if ! command -v cargo-mutants >/dev/null 2>&1; then
    cargo install --locked cargo-mutants
fi

want=("$@")
missed_total=0
for m in "${MODULES[@]}"; do
    IFS='|' read -r name files tests re <<<"$m"
    # The regex field may itself contain '|': take everything after the 3rd field.
    re="$(cut -d'|' -f4- <<<"$m")"
    if ((${#want[@]})) && [[ ! " ${want[*]} " == *" $name "* ]]; then
        continue
    fi
    # cargo-mutants' baseline tests only the mutated crate, where the
    # facade's test targets do not exist: the suite is green on main (CI),
    # so the baseline is skipped and the timeouts are given.
    args=(--workspace --test-workspace=true --baseline=skip --timeout "${MUTANTS_TIMEOUT:-300}" --build-timeout 900
        --output "target/mutants/$name")
    for f in $files; do args+=(-f "$f"); done
    # The test targets go to every cargo call (`--cargo-arg`), the build
    # too: building only them, not every test, bench and example of the
    # workspace, halves the time of a mutant.
    for t in $tests; do
        # `lib`: the unit tests of the workspace's libraries.
        if [[ "$t" == lib ]]; then args+=(--cargo-arg=--lib); else args+=(--cargo-arg=--test "--cargo-arg=$t"); fi
    done
    [[ -n "${MUTANTS_ITERATE:-}" ]] && args+=(--iterate)
    # MUTANTS_RE: only the mutants whose name matches (a rerun of some).
    re="${MUTANTS_RE:-$re}"
    [[ -n "$re" ]] && args+=(--re "$re")
    echo "== $name: cargo mutants ${args[*]}"
    mkdir -p "target/mutants/$name"
    start=$(date +%s)
    # Exit status 2 (missed) and 3 (timeouts) are read from the outcome
    # files below; anything else is a failure of the run itself.
    status=0
    cargo mutants "${args[@]}" || status=$?
    echo "== $name: $(($(date +%s) - start)) s, exit $status"
    out="target/mutants/$name/mutants.out"
    if [[ ! -f "$out/outcomes.json" ]] || ((status != 0 && status != 2 && status != 3)); then
        echo "cargo mutants failed for $name (exit $status)"
        exit 1
    fi
    if [[ -s "$out/missed.txt" ]]; then
        # Missed mutants that docs/testing.md does not list as equivalent
        # (only that section counts: the rest names mutants caught since).
        equivalent="$(sed -n '/^### Equivalent mutants/,/^##[^#]/p' docs/testing.md)"
        while IFS= read -r line; do
            # Matched without the line and column, which move with edits.
            key="$(sed -E 's/:[0-9]+:[0-9]+:/:/' <<<"$line")"
            if ! grep -qF -- "$key" <<<"$equivalent"; then
                echo "MISSED ($name): $line"
                missed_total=$((missed_total + 1))
            fi
        done <"$out/missed.txt"
    fi
done
if ((missed_total > 0)); then
    echo "$missed_total missed mutant(s): add a test that catches each, or list it in docs/testing.md with the reason"
    exit 1
fi
