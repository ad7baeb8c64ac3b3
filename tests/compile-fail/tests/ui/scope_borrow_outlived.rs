// A scoped G may borrow only what outlives its scope: a local of the scope
// body is gone when the body returns, while the G may still run.
fn main() {
    goro::scope(|s| {
        let local = vec![1, 2, 3];
        s.go(|| local.len());
    });
}
