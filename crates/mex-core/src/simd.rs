//! Run-time CPU-feature detection, shared by the hand-written kernels of every mex crate.
//!
//! The kernels follow one pattern: the portable code is an `#[inline(always)]` function; thin
//! safe functions marked `#[target_feature(enable = "...")]` compile it once per instruction set;
//! a dispatcher calls the best one that [`level`] allows. Detection runs once per process.
//!
//! **Override for tests and comparisons:** the environment variable `MEX_SIMD` caps the level,
//! read once, before the first kernel runs: `MEX_SIMD=scalar` (portable code only),
//! `MEX_SIMD=avx2` (no AVX-512), `MEX_SIMD=avx512` (the default: the best the CPU has). It never
//! raises the level above what the CPU supports. Unknown values are ignored.
//!
//! ```
//! use mex_core::simd::{self, SimdLevel};
//! let l = simd::level();
//! assert!(l >= SimdLevel::Scalar);
//! // AVX-512 implies AVX2 in this scheme
//! assert!(!simd::has_avx512() || simd::has_avx2());
//! ```

use std::sync::OnceLock;

/// The instruction sets the kernels are compiled for, from least to most capable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    /// Portable code (SSE2 on x86-64).
    Scalar,
    /// AVX2 with FMA.
    Avx2,
    /// AVX-512 F and VL (with AVX2 and FMA).
    Avx512,
}

/// The name of the environment variable that caps the level (see the module docs).
pub const OVERRIDE_VAR: &str = "MEX_SIMD";

/// The best level this CPU supports, capped by `MEX_SIMD` (detected once per process).
pub fn level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let cap = std::env::var(OVERRIDE_VAR).ok().and_then(|v| parse_level(&v)).unwrap_or(SimdLevel::Avx512);
        detected().min(cap)
    })
}

/// Whether the kernels may use AVX2 and FMA.
#[inline]
pub fn has_avx2() -> bool {
    level() >= SimdLevel::Avx2
}

/// Whether the kernels may use AVX-512 F and VL (and AVX2, FMA).
#[inline]
pub fn has_avx512() -> bool {
    level() >= SimdLevel::Avx512
}

/// Parses a value of `MEX_SIMD` (case-insensitive).
fn parse_level(v: &str) -> Option<SimdLevel> {
    match v.trim().to_ascii_lowercase().as_str() {
        "scalar" | "none" | "portable" => Some(SimdLevel::Scalar),
        "avx2" => Some(SimdLevel::Avx2),
        "avx512" => Some(SimdLevel::Avx512),
        _ => None,
    }
}

/// What the CPU supports, without the override.
fn detected() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
        if avx2
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vl")
        {
            SimdLevel::Avx512
        } else if avx2 {
            SimdLevel::Avx2
        } else {
            SimdLevel::Scalar
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        SimdLevel::Scalar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_values_parse() {
        assert_eq!(parse_level("scalar"), Some(SimdLevel::Scalar));
        assert_eq!(parse_level(" AVX2 "), Some(SimdLevel::Avx2));
        assert_eq!(parse_level("avx512"), Some(SimdLevel::Avx512));
        assert_eq!(parse_level("sse9"), None);
    }

    #[test]
    fn level_never_exceeds_the_cpu() {
        assert!(level() <= detected());
        assert!(SimdLevel::Scalar < SimdLevel::Avx2 && SimdLevel::Avx2 < SimdLevel::Avx512);
    }
}
