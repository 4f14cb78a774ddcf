//! sync_bench: the workload of bench/chan_bench.c on Rust's
//! std::sync::mpsc::sync_channel(1024), for comparison.
//!
//! P producers (1, 2, 4, 8, 16), each with a cloned SyncSender and blocking
//! send(); one receiver iterating the Receiver (std has no batch receive, so
//! one recv() per item).  Items are [u8; 8] and [u8; 128]; each figure is
//! the median of several runs.  Standard library only:
//!
//!     rustc -O --edition 2021 -o sync_bench bench/rust/sync_bench.rs
//!
//! Output, one line per figure (the format of `chan_bench -m`):
//!     rust,item_size,producers,million_msgs_per_s
//! Progress goes to stderr.  Options: -n ITEMS (per run), -r RUNS.

use std::env;
use std::hint::black_box;
use std::process::exit;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

const CAPACITY: usize = 1024;
const PRODUCERS: [usize; 5] = [1, 2, 4, 8, 16];

/// The value a producer puts in the first 8 bytes of item s (as chan_bench).
fn item_tag(producer: usize, s: u64) -> u64 {
    ((producer as u64) << 40) ^ s
}

/// Millions of messages per second for one run.
fn run_once<const N: usize>(nprod: usize, total: u64) -> f64 {
    let per = total / nprod as u64;
    let (tx, rx) = sync_channel::<[u8; N]>(CAPACITY);
    let start = Arc::new(Barrier::new(nprod + 1));
    let mut handles = Vec::with_capacity(nprod);
    for id in 0..nprod {
        let tx = tx.clone();
        let start = Arc::clone(&start);
        handles.push(thread::spawn(move || {
            let mut item = [id as u8; N];
            start.wait();
            for s in 0..per {
                item[..8].copy_from_slice(&item_tag(id, s).to_le_bytes());
                tx.send(item).expect("receiver gone");
            }
        }));
    }
    // Only the producers keep the channel open, so the loop below ends
    // when the last of them is done.
    drop(tx);

    start.wait();
    let t0 = Instant::now();
    let mut got: u64 = 0;
    let mut sum: u64 = 0;
    for item in rx.iter() {
        let mut tag = [0u8; 8];
        tag.copy_from_slice(&item[..8]);
        sum = sum.wrapping_add(u64::from_le_bytes(tag));
        got += 1;
    }
    let dt = t0.elapsed().as_secs_f64();
    for h in handles {
        h.join().expect("producer panicked");
    }

    let mut want: u64 = 0;
    for p in 0..nprod {
        for s in 0..per {
            want = want.wrapping_add(item_tag(p, s));
        }
    }
    if got != per * nprod as u64 || black_box(sum) != want {
        eprintln!("sync_bench: lost or mangled items: {} of {}", got, per * nprod as u64);
        exit(1);
    }
    got as f64 / dt / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn usage() -> ! {
    eprintln!("usage: sync_bench [-m] [-n ITEMS] [-r RUNS]");
    exit(2);
}

fn main() {
    let mut total: u64 = 3_000_000;
    let mut runs: usize = 5;
    let mut args = env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-m" => {} // always machine-readable; accepted for symmetry with chan_bench
            "-n" => total = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
            "-r" => runs = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage()),
            _ => usage(),
        }
    }
    if total < 16 || runs < 1 {
        usage();
    }
    eprintln!(
        "sync_bench: std::sync::mpsc::sync_channel({}); {} items/run, median of {}; receiver: recv (1 per call)",
        CAPACITY, total, runs
    );
    for size in [8usize, 128] {
        for &np in PRODUCERS.iter() {
            let v: Vec<f64> = (0..runs)
                .map(|_| if size == 8 { run_once::<8>(np, total) } else { run_once::<128>(np, total) })
                .collect();
            let m = median(v);
            println!("rust,{},{},{:.3}", size, np, m);
            eprintln!("  size {:3} P {:2}: rust {:7.2} M/s", size, np, m);
        }
    }
}
