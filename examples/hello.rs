//! The smallest goro program: a few goroutines, a sleep, a join.
use std::time::Duration;

fn main() {
    // SAFETY: this program's Gs keep no thread-local state across switch points.
    unsafe {
        goro::run(|| {
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    goro::go(move || {
                        goro::sleep(Duration::from_millis(10 * (4 - i)));
                        println!("hello from goroutine {} (#{i})", goro::current().id());
                        i
                    })
                })
                .collect();
            let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
            println!("sum of results: {sum}");
        })
    };
}
