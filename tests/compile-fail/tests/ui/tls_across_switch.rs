// The program from issue 14: an `Rc` taken from a thread-local and used
// after a switch point, on a G that may resume on another thread. Starting
// the runtime must not compile without `unsafe`.
use std::cell::Cell;
use std::rc::Rc;

thread_local!(static R: Rc<Cell<u64>> = Rc::new(Cell::new(0)));

fn main() {
    goro::run(|| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                goro::go(|| {
                    for _ in 0..100_000 {
                        let rc = R.with(|r| r.clone());
                        goro::yield_now();
                        rc.set(rc.get() + 1);
                        drop(rc);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
}
