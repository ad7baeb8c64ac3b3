//! A broadcast chat server, the classic Go demo: one goroutine per client
//! reads lines and sends them to a broker goroutine, which `select`s over
//! joins, leaves and messages and fans each message out to every client's
//! outgoing channel.
//!
//!     cargo run --release --example chat [-- 127.0.0.1:7879]
//!     (then connect with several `nc 127.0.0.1 7879`)

use std::io::{BufRead, BufReader, Write};
use std::sync::Arc;

use goro::chan::Chan;
use goro::net::{TcpListener, TcpStream};

struct Client {
    name: String,
    out: Chan<String>,
}

fn broker(joins: Chan<Client>, leaves: Chan<String>, messages: Chan<String>) {
    let mut clients: Vec<Client> = Vec::new();
    loop {
        goro::select! {
            recv(joins) -> c => {
                let Some(c) = c else { return };
                broadcast(&clients, format!("* {} joined ({} here)\n", c.name, clients.len() + 1));
                clients.push(c);
            }
            recv(leaves) -> name => {
                let Some(name) = name else { return };
                clients.retain(|c| c.name != name);
                broadcast(&clients, format!("* {name} left\n"));
            }
            recv(messages) -> m => {
                let Some(m) = m else { return };
                broadcast(&clients, m);
            }
        }
    }
}

/// Never blocks the broker: a client too slow to keep up loses messages.
fn broadcast(clients: &[Client], msg: String) {
    print!("{msg}");
    for c in clients {
        let _ = c.out.try_send(msg.clone());
    }
}

fn serve(conn: TcpStream, joins: Chan<Client>, leaves: Chan<String>, messages: Chan<String>) {
    let conn = Arc::new(conn);
    let name = conn.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".into());
    let out: Chan<String> = Chan::new(64);
    // Writer: drains this client's channel onto its socket.
    {
        let (conn, out) = (conn.clone(), out.clone());
        goro::go(move || {
            for m in &out {
                if (&*conn).write_all(m.as_bytes()).is_err() {
                    break;
                }
            }
        });
    }
    let _ = (&*conn).write_all(format!("welcome, you are {name}\n").as_bytes());
    joins.send(Client { name: name.clone(), out: out.clone() }).unwrap();
    for line in BufReader::new(&*conn).lines() {
        let Ok(line) = line else { break };
        messages.send(format!("{name}: {line}\n")).unwrap();
    }
    leaves.send(name).unwrap();
    out.close();
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7879".into());
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
            println!("chat server on {}", l.local_addr().unwrap());
            let (joins, leaves, messages) = (Chan::new(0), Chan::new(0), Chan::new(64));
            {
                let (j, lv, m) = (joins.clone(), leaves.clone(), messages.clone());
                goro::go(move || broker(j, lv, m));
            }
            for conn in l.incoming() {
                match conn {
                    Ok(c) => {
                        let (j, lv, m) = (joins.clone(), leaves.clone(), messages.clone());
                        goro::go(move || serve(c, j, lv, m));
                    }
                    Err(e) => eprintln!("accept: {e}"),
                }
            }
        })
    };
}
