//! Blocking syscalls and hogs under each policy: runs the `syscall_handoff`
//! and `hog` workloads of docs/workloads.md (procs = 2) and prints a table.
//!
//!     cargo run --release --example syscall_handoff

use std::time::Duration;

use goro::{Policy, Retake};

use goro_workloads::sysload;
use sysload::SysSize;

fn main() {
    let retakes = [
        ("After(20us) (Go)", Retake::After(Duration::from_micros(20))),
        ("After(1ms)", Retake::After(Duration::from_millis(1))),
        ("Immediate", Retake::Immediate),
        ("Never", Retake::Never),
    ];
    println!("syscall_handoff: 100 compute Gs x 1000 chunks of ~10us, plus 4 Gs x 10 syscalls of 50 ms (procs = 2)\n");
    println!("| syscall_retake | compute time (ms) | vs no blockers |");
    println!("|---|---:|---:|");
    for (name, r) in retakes {
        let policy = Policy { syscall_retake: r, ..Policy::default() };
        let (ms, ratio) = sysload::syscall_handoff(&sysload::runtime(&policy), SysSize::FULL);
        println!("| {name} | {ms:.1} | {ratio:.2}x |");
    }
    println!("\nhog: a G doing 100 sleeps of 1 ms while 2 Gs spin 200 ms without a runtime call (procs = 2)\n");
    println!("| policy | sleeper time (ms) |");
    println!("|---|---:|");
    let base = Policy::default();
    let off = Policy { hog_handoff: false, ..Policy::default() };
    println!("| no spinners (baseline) | {:.1} |", sysload::hog(&sysload::runtime(&base), SysSize::FULL, 0));
    println!("| hog_handoff on (default) | {:.1} |", sysload::hog(&sysload::runtime(&base), SysSize::FULL, 2));
    println!(
        "| hog_handoff off (cooperative only, as Tokio) | {:.1} |",
        sysload::hog(&sysload::runtime(&off), SysSize::FULL, 2)
    );
}
