fn tree(depth: u32, base: u64) -> u64 {
    if depth == 0 {
        return base;
    }
    let hs: Vec<_> = (0..10)
        .map(|i| goro::go(move || tree(depth - 1, base * 10 + i)))
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).sum()
}
fn main() {
    let t = std::time::Instant::now();
    let s = goro::run(|| tree(6, 0));
    println!("{s} {:?}", t.elapsed());
    println!("{:?}", std::time::Instant::now());
}
