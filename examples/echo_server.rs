//! A TCP echo server: one goroutine per connection, parked on the poller
//! while it waits. Serves until Ctrl-C, printing connection counts.
//!
//!     cargo run --release --example echo_server [-- 127.0.0.1:7878]
//!     (then e.g. `nc 127.0.0.1 7878`)

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use goro::net::TcpListener;

static STOP: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_sigint(_: libc::c_int) {
    STOP.store(1, Ordering::SeqCst);
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7878".into());
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    // SAFETY: this program's Gs keep no thread-local state across switch points.
    unsafe {
        goro::run(move || {
            let l = match TcpListener::bind(&addr) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("cannot listen on {addr}: {e}");
                    return;
                }
            };
            println!("echo server on {} (Ctrl-C stops it)", l.local_addr().unwrap());
            let open = Arc::new(AtomicU64::new(0));
            let total = Arc::new(AtomicU64::new(0));
            {
                let (open, total) = (open.clone(), total.clone());
                goro::go(move || {
                    for conn in l.incoming() {
                        let mut c = match conn {
                            Ok(c) => c,
                            Err(e) => {
                                eprintln!("accept: {e}");
                                continue;
                            }
                        };
                        let open = open.clone();
                        open.fetch_add(1, Ordering::Relaxed);
                        total.fetch_add(1, Ordering::Relaxed);
                        goro::go(move || {
                            let mut buf = [0u8; 4096];
                            while let Ok(n) = c.read(&mut buf) {
                                if n == 0 || c.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                            open.fetch_sub(1, Ordering::Relaxed);
                        });
                    }
                });
            }
            let mut last = (u64::MAX, u64::MAX);
            while STOP.load(Ordering::SeqCst) == 0 {
                goro::sleep(Duration::from_millis(200));
                let now = (open.load(Ordering::Relaxed), total.load(Ordering::Relaxed));
                if now != last {
                    println!("connections: {} open, {} served", now.0, now.1);
                    last = now;
                }
            }
            println!("\nstopping: {} connections served", total.load(Ordering::Relaxed));
        })
    };
}
