//! goro::net on loopback: echo, many connections, timeouts, errors, UDP,
//! Unix sockets, and parked-on-socket Gs at shutdown.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::bounded;
use goro::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use goro::Runtime;

fn rt(procs: usize) -> Runtime {
    // SAFETY: the test's Gs keep no thread-local state across switch points.
    unsafe { Runtime::builder().procs(procs).build() }.unwrap()
}

fn echo_server(l: TcpListener) {
    for conn in l.incoming() {
        let Ok(mut c) = conn else { return };
        goro::go(move || {
            let mut buf = [0u8; 1024];
            loop {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if c.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

#[test]
fn echo_with_a_thousand_concurrent_clients() {
    bounded(120, || {
        let total = rt(2).block_on(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            goro::go(move || echo_server(l));
            let hs: Vec<_> = (0..1000u64)
                .map(|i| {
                    goro::go(move || {
                        let mut s = TcpStream::connect(addr).unwrap();
                        s.set_nodelay(true).unwrap();
                        let mut sum = 0u64;
                        for k in 0..10u64 {
                            let msg = (i * 100 + k).to_le_bytes();
                            s.write_all(&msg).unwrap();
                            let mut back = [0u8; 8];
                            s.read_exact(&mut back).unwrap();
                            assert_eq!(back, msg);
                            sum += u64::from_le_bytes(back);
                        }
                        sum
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        });
        let expect: u64 = (0..1000u64).map(|i| (0..10).map(|k| i * 100 + k).sum::<u64>()).sum();
        assert_eq!(total, expect);
    });
}

fn raise_nofile(want: u64) -> Result<(), String> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit on our own process with a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err("getrlimit failed".into());
        }
        if lim.rlim_cur >= want {
            return Ok(());
        }
        let new = libc::rlimit { rlim_cur: want, rlim_max: lim.rlim_max.max(want) };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &new) != 0 {
            let soft = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            libc::setrlimit(libc::RLIMIT_NOFILE, &soft);
            if lim.rlim_max < want {
                return Err(format!("RLIMIT_NOFILE hard limit {} < {want} and cannot be raised", lim.rlim_max));
            }
        }
    }
    Ok(())
}

const CONNS: usize = 10_000;

/// The client side of `ten_thousand_connections_open_at_once`, in its own
/// process so that each side needs only ~10,000 descriptors (this machine's
/// hard limit is 20,000, too few for both ends in one process).
#[test]
#[ignore = "child process: its parent test runs it"]
fn ten_thousand_clients_child() {
    if !common::is_child() {
        return;
    }
    raise_nofile(CONNS as u64 + 1000).unwrap();
    let addr: std::net::SocketAddr = std::env::var("GORO_TEST_ADDR").unwrap().parse().unwrap();
    let n = rt(2).block_on(move || {
        let clients: Vec<TcpStream> = (0..CONNS).map(|_| TcpStream::connect(addr).unwrap()).collect();
        // The server writes only once it holds every connection.
        for c in &clients {
            let mut b = [0u8; 1];
            (&*c).read_exact(&mut b).unwrap();
            assert_eq!(&b, b"x");
            (&*c).write_all(b"y").unwrap();
        }
        // Then it closes them all.
        for c in &clients {
            assert_eq!((&*c).read(&mut [0u8; 1]).unwrap(), 0);
        }
        clients.len()
    });
    println!("RESULT {n}");
}

#[test]
fn ten_thousand_connections_open_at_once() {
    raise_nofile(CONNS as u64 + 1000).unwrap_or_else(|why| panic!("cannot hold {CONNS} sockets: {why}"));
    bounded(180, || {
        let rt = rt(2);
        let l = rt.block_on(|| TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = l.local_addr().unwrap().to_string();
        let child = std::thread::spawn(move || {
            common::run_child_for("ten_thousand_clients_child", &[("GORO_TEST_ADDR", &addr)], Duration::from_secs(150))
        });
        let n = rt.block_on(move || {
            let conns: Vec<TcpStream> = (0..CONNS).map(|_| l.accept().unwrap().0).collect();
            // Every connection is open and usable, both ways, at once.
            for c in &conns {
                (&*c).write_all(b"x").unwrap();
            }
            for c in &conns {
                let mut b = [0u8; 1];
                (&*c).read_exact(&mut b).unwrap();
                assert_eq!(&b, b"y");
            }
            conns.len()
        });
        assert_eq!(n, CONNS);
        let out = child.join().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(&format!("RESULT {CONNS}")), "{stdout}");
    });
}

#[test]
fn read_timeout_gives_timed_out() {
    bounded(30, || {
        let check = || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let _server_side = l.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
            assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_millis(30)));
            let t = Instant::now();
            let err = (&s).read(&mut [0u8; 8]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::TimedOut);
            assert!(t.elapsed() >= Duration::from_millis(30));
            assert!(s.set_read_timeout(Some(Duration::ZERO)).is_err());
        };
        rt(1).block_on(check);
        check(); // and on a plain thread
    });
}

#[test]
fn connect_refused_and_bind_in_use_are_errors() {
    bounded(30, || {
        rt(1).block_on(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let err = TcpListener::bind(addr).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AddrInUse);
            drop(l);
            let err = TcpStream::connect(addr).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        });
    });
}

#[test]
fn peer_reset_and_zero_length_read_at_eof() {
    bounded(30, || {
        rt(2).block_on(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            // EOF: the peer shuts down its write side.
            let c = TcpStream::connect(addr).unwrap();
            let (s, _) = l.accept().unwrap();
            (&s).write_all(b"bye").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            let mut got = Vec::new();
            (&c).read_to_end(&mut got).unwrap();
            assert_eq!(got, b"bye");
            assert_eq!((&c).read(&mut [0u8; 4]).unwrap(), 0, "zero-length read at EOF");
            // Reset: the peer closes with unread data / SO_LINGER 0.
            let c = TcpStream::connect(addr).unwrap();
            let (s, _) = l.accept().unwrap();
            let lin = libc::linger { l_onoff: 1, l_linger: 0 };
            // SAFETY: setsockopt on a valid socket with a valid struct.
            unsafe {
                libc::setsockopt(
                    std::os::fd::AsRawFd::as_raw_fd(&s),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    &lin as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::linger>() as u32,
                );
            }
            drop(s);
            let err = (&c).read(&mut [0u8; 4]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionReset);
            let mut broken = None;
            for _ in 0..100 {
                if let Err(e) = (&c).write(&[0u8; 1024]) {
                    broken = Some(e.kind());
                    break;
                }
            }
            assert!(matches!(broken, Some(ErrorKind::BrokenPipe) | Some(ErrorKind::ConnectionReset)), "{broken:?}");
        });
    });
}

#[test]
fn a_goroutine_blocked_on_read_does_not_occupy_its_m() {
    bounded(30, || {
        // Neither handoff may start an M here: on a loaded machine the OS
        // can stall the one M long enough for sysmon to take its P away
        // (a hog, or the address lookup's syscall), which is right but not
        // what this test is about. Without them, a reader blocking its M
        // would leave the counter unrun and the test would time out.
        let policy = goro::Policy { hog_handoff: false, syscall_retake: goro::Retake::Never, ..Default::default() };
        // SAFETY: the test's Gs keep no thread-local state across switch points.
        let rt = unsafe { Runtime::builder().procs(1).policy(policy).build() }.unwrap();
        rt.block_on(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, _) = l.accept().unwrap();
            let reader = goro::go(move || {
                let mut b = [0u8; 5];
                (&c).read_exact(&mut b).unwrap();
                b
            });
            // With one P this only runs if the reader parked in the poller.
            let counter = goro::go(|| (0..1000u64).inspect(|_| goro::yield_now()).sum::<u64>());
            assert_eq!(counter.join().unwrap(), 499_500);
            (&s).write_all(b"hello").unwrap();
            assert_eq!(&reader.join().unwrap(), b"hello");
        });
        assert_eq!(rt.stats().threads, 1, "no extra M was needed");
    });
}

#[test]
fn udp_round_trip() {
    bounded(30, || {
        rt(2).block_on(|| {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b_addr = b.local_addr().unwrap();
            let echo = goro::go(move || {
                let mut buf = [0u8; 64];
                let (n, from) = b.recv_from(&mut buf).unwrap();
                b.send_to(&buf[..n], from).unwrap();
            });
            a.send_to(b"ping", b_addr).unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = a.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&b"ping"[..], b_addr));
            echo.join().unwrap();
            a.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
            assert_eq!(a.recv_from(&mut buf).unwrap_err().kind(), ErrorKind::TimedOut);
        });
    });
}

#[test]
fn unix_socket_round_trip() {
    bounded(30, || {
        rt(2).block_on(|| {
            let path = std::env::temp_dir().join(format!("goro-test-{}.sock", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let l = UnixListener::bind(&path).unwrap();
            let server = goro::go(move || {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 5];
                s.read_exact(&mut buf).unwrap();
                s.write_all(&buf).unwrap();
            });
            let mut c = UnixStream::connect(&path).unwrap();
            c.write_all(b"hello").unwrap();
            let mut back = [0u8; 5];
            c.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"hello");
            server.join().unwrap();
            let _ = std::fs::remove_file(&path);
            let (a, b) = UnixStream::pair().unwrap();
            (&a).write_all(b"x").unwrap();
            let mut one = [0u8; 1];
            (&b).read_exact(&mut one).unwrap();
            assert_eq!(&one, b"x");
        });
    });
}

#[test]
fn shutdown_with_goroutines_parked_on_sockets() {
    bounded(30, || {
        let rt = rt(2);
        let l = Arc::new(rt.block_on(|| TcpListener::bind("127.0.0.1:0").unwrap()));
        let addr = l.local_addr().unwrap();
        let l2 = l.clone();
        // The acceptor keeps the one connection it takes and reads from it.
        let acceptor = rt.spawn(move || {
            let (s, _) = l2.accept()?;
            (&s).read(&mut [0u8; 1]).map(|_| ())
        });
        let readers: Vec<_> = (0..10)
            .map(|_| {
                rt.spawn(move || {
                    let s = TcpStream::connect(addr).unwrap();
                    let mut b = [0u8; 1];
                    (&s).read(&mut b).map(|_| ())
                })
            })
            .collect();
        let in_io_wait = || rt.goroutines().iter().filter(|g| g.wait_reason == goro::WaitReason::IoWait).count();
        common::wait_until("10 readers and the acceptor parked in IO wait", || in_io_wait() == 11);
        drop(rt);
        for r in readers.into_iter().chain([acceptor]) {
            // Dropped at shutdown: the join reports it; nothing hangs.
            let err = r.join().expect_err("a reader parked at shutdown finished");
            let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
            assert!(msg.contains("dropped before it finished"), "{msg}");
        }
    });
}

#[test]
fn sockets_work_from_plain_threads_too() {
    bounded(30, || {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 3];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        });
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"abc").unwrap();
        let mut b = [0u8; 3];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"abc");
        t.join().unwrap();
    });
}

#[test]
fn udp_connect_send_and_recv() {
    bounded(30, || {
        rt(2).block_on(|| {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            a.connect(ba).unwrap();
            b.connect(aa).unwrap();
            assert_eq!(a.peer_addr().unwrap(), ba);
            // The receiver parks first, then the datagram comes.
            let h = goro::go(move || {
                let mut buf = [0u8; 16];
                let n = b.recv(&mut buf).unwrap();
                b.send(&buf[..n]).unwrap();
                buf[..n].to_vec()
            });
            assert_eq!(a.send(b"ping").unwrap(), 4);
            let mut buf = [0u8; 16];
            let n = a.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"ping");
            assert_eq!(h.join().unwrap(), b"ping");
            // A connected socket takes datagrams from its peer only.
            let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
            stranger.send_to(b"noise", aa).unwrap();
            a.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            let e = a.recv(&mut buf).unwrap_err();
            assert!(matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock), "{e}");
        });
    });
}

#[test]
fn tcp_peek_peer_addr_take_error_and_connect_timeout() {
    bounded(30, || {
        rt(2).block_on(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
            let (s, from) = l.accept().unwrap();
            assert_eq!(c.peer_addr().unwrap(), addr);
            assert_eq!(s.peer_addr().unwrap(), from);
            assert_eq!(c.local_addr().unwrap(), from);
            assert!(c.take_error().unwrap().is_none());
            // peek parks until data comes, and leaves it for read.
            let reader = goro::go(move || {
                let mut b = [0u8; 8];
                let n = s.peek(&mut b).unwrap();
                let peeked = b[..n].to_vec();
                let mut all = [0u8; 5];
                (&s).read_exact(&mut all).unwrap();
                (peeked, all)
            });
            (&c).write_all(b"hello").unwrap();
            let (peeked, all) = reader.join().unwrap();
            assert!(!peeked.is_empty() && b"hello".starts_with(&peeked), "{peeked:?}");
            assert_eq!(&all, b"hello");
            // A refused connect is an error, not a hang (nothing listens on
            // the port the listener had once it is closed).
            drop(l);
            let e = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
        });
    });
}

#[test]
fn a_large_write_to_a_slow_reader_parks_the_g_not_its_m() {
    bounded(60, || {
        let rt = rt(1);
        let (total, other_ran) = rt.block_on(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, _) = l.accept().unwrap();
            const LEN: usize = 8 << 20;
            // One write call of 8 MiB: far more than the socket buffers hold,
            // so the writer parks in IO wait until the reader catches up.
            let writer = goro::go(move || {
                let data = vec![7u8; LEN];
                (&c).write_all(&data).unwrap();
            });
            common::wait_until("the writer parked in IO wait", || goro::dump().lines().any(|l| l.contains("[IO wait")));
            // With one P, this G runs only because the writer's M is free.
            let other_ran = goro::go(|| 42).join().unwrap();
            let mut total = 0;
            let mut buf = vec![0u8; 64 << 10];
            while total < LEN {
                let n = (&s).read(&mut buf).unwrap();
                assert!(n > 0);
                assert!(buf[..n].iter().all(|&b| b == 7));
                total += n;
            }
            writer.join().unwrap();
            (total, other_ran)
        });
        assert_eq!((total, other_ran), (8 << 20, 42));
    });
}

#[test]
fn a_write_timeout_gives_timed_out() {
    bounded(30, || {
        rt(2).block_on(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (_s, _) = l.accept().unwrap(); // never reads
            c.set_write_timeout(Some(Duration::from_millis(50))).unwrap();
            assert_eq!(c.write_timeout().unwrap(), Some(Duration::from_millis(50)));
            let data = vec![1u8; 1 << 20];
            let mut sent = 0usize;
            let e = loop {
                match (&c).write(&data) {
                    Ok(n) => sent += n,
                    Err(e) => break e,
                }
                assert!(sent < 1 << 30, "1 GiB written to a peer that never reads");
            };
            assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
            assert!(sent > 0);
        });
    });
}

/// A listener's backlog is the system's `somaxconn` (as Go's), not std's
/// 128: a burst of connects to a server that has not accepted yet all
/// complete, without the kernel dropping SYNs (which costs a client a 1 s
/// retransmission: the 900 ms timeout below catches that).
#[test]
fn a_burst_of_connects_fits_in_the_listen_backlog() {
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap().trim().parse().unwrap();
    let n = somaxconn.min(1000);
    bounded(60, move || {
        rt(2).block_on(move || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let clients: Vec<TcpStream> = (0..n)
                .map(|i| {
                    TcpStream::connect_timeout(&addr, Duration::from_millis(900))
                        .unwrap_or_else(|e| panic!("connect {i} of {n} before any accept: {e}"))
                })
                .collect();
            for _ in 0..n {
                l.accept().unwrap();
            }
            assert_eq!(clients.len(), n);
        });
    });
}

#[test]
fn socket_timeouts_of_any_size_are_valid() {
    bounded(30, || {
        rt(2).block_on(|| {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (s, _) = l.accept().unwrap();
            for d in [Duration::MAX, Duration::from_secs(u64::MAX), Duration::from_nanos(u64::MAX) * 2] {
                s.set_read_timeout(Some(d)).unwrap();
                c.set_write_timeout(Some(d)).unwrap();
                let s2 = s.try_clone().unwrap();
                let reader = goro::go(move || {
                    let mut b = [0u8; 1];
                    (&s2).read_exact(&mut b).map(|_| b[0])
                });
                common::wait_until("the reader parked", || common::parked_goroutines() >= 1);
                assert!(!reader.is_finished(), "a read with a timeout of {d:?} ended early");
                (&c).write_all(&[9]).unwrap();
                assert_eq!(reader.join().unwrap().unwrap(), 9, "{d:?}");
            }
        });
    });
}

/// Name resolution (`getaddrinfo`, which may block on DNS) runs as a
/// `goro::syscall`: its P can be handed to another M while it waits.
#[test]
fn host_names_are_resolved_in_a_syscall_not_on_the_p() {
    bounded(30, || {
        let rt = rt(1);
        let (tcp, udp) = rt.block_on(|| {
            let syscalls = || goro::stats().total.syscalls;
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            goro::go(move || drop(l.accept()));
            let before = syscalls();
            let c = TcpStream::connect(("localhost", port)).unwrap();
            let tcp = syscalls() - before;
            drop(c);
            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = u.local_addr().unwrap().port();
            let before = syscalls();
            u.send_to(b"x", ("localhost", port)).unwrap();
            (tcp, syscalls() - before)
        });
        assert!(tcp >= 1, "connect resolved \"localhost\" without a syscall");
        assert!(udp >= 1, "send_to resolved \"localhost\" without a syscall");
    });
}

/// `connect_ctx` (Go's DialContext): connects, or reports the context's end
/// as `TimedOut` / `Interrupted` with the `ContextError` inside, and passes
/// other errors through.
#[test]
fn connect_ctx_connects_or_reports_the_context() {
    use goro::context::{self, ContextError};
    use goro::net::connect_ctx;
    bounded(30, || {
        rt(2).block_on(|| {
            let root = context::background();
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let (ctx, cancel) = context::with_timeout(&root, Duration::from_secs(10));
            let s = connect_ctx(("localhost", addr.port()), &ctx).unwrap();
            assert_eq!(s.peer_addr().unwrap(), addr);
            cancel.cancel();
            let e = connect_ctx(addr, &ctx).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Interrupted);
            assert_eq!(e.get_ref().and_then(|i| i.downcast_ref::<ContextError>()), Some(&ContextError::Canceled));
            let (expired, _c) = context::with_timeout(&root, Duration::from_millis(1));
            expired.done().recv();
            assert_eq!(connect_ctx(addr, &expired).unwrap_err().kind(), ErrorKind::TimedOut);
            // A refused connection is the kernel's error, not the context's.
            drop(l);
            let (ctx, _c) = context::with_timeout(&root, Duration::from_secs(10));
            assert_eq!(connect_ctx(addr, &ctx).unwrap_err().kind(), ErrorKind::ConnectionRefused);
        });
    });
}
