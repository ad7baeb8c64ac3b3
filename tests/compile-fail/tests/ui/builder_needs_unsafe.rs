// Building a runtime is the same promise as `goro::run`: it needs `unsafe`.
fn main() {
    let rt = goro::Runtime::builder().procs(2).build().unwrap();
    rt.block_on(|| goro::yield_now());
}
