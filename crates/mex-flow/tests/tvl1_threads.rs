//! TV-L1 with five threads: every pass of a pyramid level is a parallel loop over bands of rows
//! (see `Level::run` in `src/tvl1.rs`). The flow must be bit for bit the one-thread flow, with and
//! without the illumination term (`gamma`, a third flow component), for a frame whose coarse
//! levels have fewer bands than threads and for a tall frame with many bands per thread. A test
//! binary of its own, because the number of threads of the global rayon pool can be set only once
//! per process.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex_flow::synth;
use mex_flow::{FlowEstimator, TvL1Config};

#[test]
fn five_threads_give_the_one_thread_flow() {
    rayon::ThreadPoolBuilder::new().num_threads(5).build_global().ok();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    // 72x61: 6 bands of 12 rows on the finest level, one band on the coarsest (under 1024 px);
    // 40x260: 10 bands of 26 rows
    for (w, h) in [(72, 61), (40, 260)] {
        let (f0, f1, _) = synth::deformed_pair(w, h, 2.5, 9);
        for gamma in [0.0, 0.2] {
            let est = TvL1Config { gamma, warps: 2, ..Default::default() }.build().unwrap();
            // inside a pool's worker the iterations run on that one thread
            let a = one.install(|| est.estimate(&f0, &f1).unwrap());
            // outside any pool they run as parallel loops on the global pool's five threads
            let b = est.estimate(&f0, &f1).unwrap();
            assert_eq!(rayon::current_num_threads(), 5);
            let same = a
                .u()
                .iter()
                .zip(b.u())
                .chain(a.v().iter().zip(b.v()))
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(same, "{w}x{h}, gamma {gamma}: the five-thread flow differs from the one-thread flow");
            assert!(
                a.u().iter().any(|&x| x.abs() > 0.1),
                "{w}x{h}, gamma {gamma}: the flow is trivially zero"
            );
        }
    }
}

/// Two estimations started at once from two threads outside the pool (as two users of one
/// library would) share the pool's workers, and both flows are the one-thread flows bit for bit.
#[test]
fn concurrent_estimations_queue_and_match() {
    rayon::ThreadPoolBuilder::new().num_threads(5).build_global().ok();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let est = TvL1Config { warps: 2, ..Default::default() }.build().unwrap();
    let pairs: Vec<_> = [5u64, 6].iter().map(|&seed| synth::deformed_pair(48, 80, 2.0, seed)).collect();
    let want: Vec<_> = pairs.iter().map(|(a, b, _)| one.install(|| est.estimate(a, b).unwrap())).collect();
    let got: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = pairs.iter().map(|(a, b, _)| s.spawn(|| est.estimate(a, b).unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (a, b)) in want.iter().zip(&got).enumerate() {
        let same =
            a.u().iter().zip(b.u()).chain(a.v().iter().zip(b.v())).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(same, "pair {i}: the concurrent flow differs from the one-thread flow");
    }
}
