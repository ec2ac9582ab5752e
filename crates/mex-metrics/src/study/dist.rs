//! Distribution functions used by the study statistics: the standard normal, Student's t and
//! Fisher's F (CDF and quantile), through the regularised incomplete beta function. No external
//! numeric dependency; accuracy about 1e-13 in the tested ranges (checked against SciPy).

use crate::stats::{gamma_q, ln_gamma};

/// Standard normal CDF `Φ(x)`, through `erfc(z) = Q(1/2, z²)`.
pub(crate) fn norm_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let z = x / std::f64::consts::SQRT_2;
    if z >= 0.0 {
        1.0 - 0.5 * gamma_q(0.5, z * z)
    } else {
        0.5 * gamma_q(0.5, z * z)
    }
}

/// Standard normal survival function `1 − Φ(x)` without cancellation.
pub(crate) fn norm_sf(x: f64) -> f64 {
    norm_cdf(-x)
}

/// Standard normal quantile (Wichura 1988, algorithm AS 241 PPND16; relative error about 1e-16).
#[allow(clippy::excessive_precision)] // the published AS 241 coefficients, verbatim
pub(crate) fn norm_ppf(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        let num =
            (((((((2_509.080_928_730_122_7 * r + 33_430.575_583_588_128) * r + 67_265.770_927_008_7) * r
                + 45_921.953_931_549_87)
                * r
                + 13_731.693_765_509_461)
                * r
                + 1_971.590_950_306_551_3)
                * r
                + 133.141_667_891_784_38)
                * r
                + 3.387_132_872_796_366_5)
                * q;
        let den = ((((((5_226.495_278_852_545 * r + 28_729.085_735_721_943) * r + 39_307.895_800_092_71)
            * r
            + 21_213.794_301_586_597)
            * r
            + 5_394.196_021_424_751)
            * r
            + 687.187_007_492_057_9)
            * r
            + 42.313_330_701_600_91)
            * r
            + 1.0;
        return num / den;
    }
    let mut r = if q < 0.0 { p } else { 1.0 - p };
    r = (-r.ln()).sqrt();
    let val = if r <= 5.0 {
        let r = r - 1.6;
        let num = ((((((7.745_450_142_783_414e-4 * r + 0.022_723_844_989_269_184) * r
            + 0.241_780_725_177_450_6)
            * r
            + 1.270_458_252_452_368_4)
            * r
            + 3.647_848_324_763_204_5)
            * r
            + 5.769_497_221_460_691)
            * r
            + 4.630_337_846_156_546)
            * r
            + 1.423_437_110_749_683_5;
        let den = ((((((1.050_750_071_644_416_9e-9 * r + 5.475_938_084_995_345e-4) * r
            + 0.015_198_666_563_616_457)
            * r
            + 0.148_103_976_427_480_08)
            * r
            + 0.689_767_334_985_1)
            * r
            + 1.676_384_830_183_803_8)
            * r
            + 2.053_191_626_637_759)
            * r
            + 1.0;
        num / den
    } else {
        let r = r - 5.0;
        let num = ((((((2.010_334_399_292_288e-7 * r + 2.711_555_568_743_487_6e-5) * r
            + 0.001_242_660_947_388_078_4)
            * r
            + 0.026_532_189_526_576_124)
            * r
            + 0.296_560_571_828_504_9)
            * r
            + 1.784_826_539_917_291_3)
            * r
            + 5.463_784_911_164_114)
            * r
            + 6.657_904_643_501_103;
        let den = ((((((2.044_263_103_389_939_7e-15 * r + 1.421_511_758_316_446e-7) * r
            + 1.846_318_317_510_054_8e-5)
            * r
            + 7.868_691_311_456_133e-4)
            * r
            + 0.014_875_361_290_850_615)
            * r
            + 0.136_929_880_922_735_8)
            * r
            + 0.599_832_206_555_888)
            * r
            + 1.0;
        num / den
    };
    if q < 0.0 {
        -val
    } else {
        val
    }
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let tiny = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = 1.0 + aa / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = 1.0 + aa / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// Regularised incomplete beta `I_x(a, b)` for `a, b > 0`, `x` in [0, 1].
pub(crate) fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x.is_nan() || a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

/// `x` with `I_x(a, b) = p` by bisection to machine precision (the CDF is monotone).
fn beta_inc_inv(a: f64, b: f64, p: f64) -> f64 {
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if beta_inc(a, b, mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Student's t CDF with `df > 0` degrees of freedom (used by the tests of the quantile).
#[cfg(test)]
pub(crate) fn t_cdf(t: f64, df: f64) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    let x = df / (df + t * t);
    let tail = 0.5 * beta_inc(df / 2.0, 0.5, x);
    if t < 0.0 {
        tail
    } else {
        1.0 - tail
    }
}

/// Two-sided p-value of a t statistic, `2 · P(T > |t|)`.
pub(crate) fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    beta_inc(df / 2.0, 0.5, df / (df + t * t))
}

/// Student's t quantile.
pub(crate) fn t_ppf(p: f64, df: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.5 {
        return 0.0;
    }
    let tail = if p < 0.5 { p } else { 1.0 - p };
    // P(T < -t) = I_x(df/2, 1/2) / 2 with x = df / (df + t²).
    let x = beta_inc_inv(df / 2.0, 0.5, 2.0 * tail);
    let t = (df * (1.0 - x) / x).sqrt();
    if p < 0.5 {
        -t
    } else {
        t
    }
}

/// Survival function of Fisher's F with `(d1, d2)` degrees of freedom.
pub(crate) fn f_sf(f: f64, d1: f64, d2: f64) -> f64 {
    if f.is_nan() {
        return f64::NAN;
    }
    if f <= 0.0 {
        return 1.0;
    }
    // P(F > f) = I_{d2/(d2 + d1 f)}(d2/2, d1/2)
    beta_inc(d2 / 2.0, d1 / 2.0, d2 / (d2 + d1 * f))
}

/// Quantile of Fisher's F with `(d1, d2)` degrees of freedom (real-valued, as Satterthwaite's
/// degrees of freedom of ICC(2,1) are).
pub(crate) fn f_ppf(p: f64, d1: f64, d2: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) || !(d1 > 0.0 && d2 > 0.0) {
        return f64::NAN;
    }
    // P(F <= f) = I_x(d1/2, d2/2), x = d1 f / (d1 f + d2); work on the smaller tail for accuracy.
    if p > 0.5 {
        // P(F > f) = I_y(d2/2, d1/2), y = d2 / (d2 + d1 f) = 1 - x
        let y = beta_inc_inv(d2 / 2.0, d1 / 2.0, 1.0 - p);
        d2 * (1.0 - y) / (d1 * y)
    } else {
        let x = beta_inc_inv(d1 / 2.0, d2 / 2.0, p);
        d2 * x / (d1 * (1.0 - x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        // scipy.stats.norm.cdf(1.96), norm.ppf(0.975), norm.ppf(1e-10)
        assert!((norm_cdf(1.96) - 0.975_002_104_851_779_5).abs() < 1e-14);
        assert!((norm_ppf(0.975) - 1.959_963_984_540_054).abs() < 1e-14);
        assert!((norm_ppf(1e-10) + 6.361_340_902_404_056).abs() < 1e-12);
        // scipy.stats.t.ppf(0.975, 10), t.cdf(-2.0, 5)
        assert!((t_ppf(0.975, 10.0) - 2.228_138_851_986_274).abs() < 1e-12);
        assert!((t_cdf(-2.0, 5.0) - 0.050_969_739_414_929_174).abs() < 1e-13);
        // scipy.stats.f.ppf(0.975, 5, 12.5), f.sf(3.0, 4, 20)
        assert!((f_ppf(0.975, 5.0, 12.5) - 3.825_867_884_862_612_6).abs() < 1e-11);
        assert!((f_sf(3.0, 4.0, 20.0) - 0.043_200_998_334_214_09).abs() < 1e-13);
    }
}
