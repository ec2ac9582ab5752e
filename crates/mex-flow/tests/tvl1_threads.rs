//! TV-L1's parallel region with five threads: the rows of each pyramid level are split into
//! bands that the threads claim phase by phase; each band recomputes the first flow row of the
//! band below and reads the rows the neighbouring bands publish (see `IterCtx::run`). The flow
//! must be bit for bit the one-thread flow, with and without the illumination term (`gamma`),
//! which adds a third flow component to the published rows, for a frame whose levels have fewer
//! bands than threads (threads then hold tickets past the level's last phase, which must not
//! hang) and for a tall frame with more bands than threads (threads claim several bands per
//! phase). A test binary of its own, because the number of threads of the global rayon pool
//! can be set only once per process.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use mex_flow::synth;
use mex_flow::{FlowEstimator, TvL1Config};

#[test]
fn five_threads_give_the_one_thread_flow() {
    rayon::ThreadPoolBuilder::new().num_threads(5).build_global().ok();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    // 61 rows: 5, 4, 3, 2 and 2 bands on the levels; 260 rows: 20 bands on the finest level
    for (w, h) in [(72, 61), (40, 260)] {
        let (f0, f1, _) = synth::deformed_pair(w, h, 2.5, 9);
        for gamma in [0.0, 0.2] {
            let est = TvL1Config { gamma, warps: 2, ..Default::default() }.build().unwrap();
            // inside a pool's worker the iterations run on that one thread
            let a = one.install(|| est.estimate(&f0, &f1).unwrap());
            // outside any pool they run as a region of the global pool's five threads
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
/// library would): the regions queue instead of waiting for each other forever, and both flows
/// are the one-thread flows bit for bit.
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
