use crate::{CoreError, Result};
use serde::{Deserialize, Serialize};

/// A facial movement in frame indices: `onset <= apex <= offset` (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Interval {
    /// First frame of the movement.
    pub onset: usize,
    /// Frame of greatest intensity.
    pub apex: usize,
    /// Last frame of the movement.
    pub offset: usize,
}

impl Interval {
    /// Builds an interval, checking `onset <= apex <= offset`.
    pub fn new(onset: usize, apex: usize, offset: usize) -> Result<Self> {
        if !(onset <= apex && apex <= offset) {
            return Err(CoreError::InvalidParam {
                name: "interval",
                value: format!("onset {onset}, apex {apex}, offset {offset}"),
                reason: "need onset <= apex <= offset",
            });
        }
        Ok(Self { onset, apex, offset })
    }

    /// Number of frames, `offset - onset + 1` (saturating at `usize::MAX` for the one interval
    /// `[0, usize::MAX]` whose length does not fit).
    pub fn len(&self) -> usize {
        (self.offset - self.onset).saturating_add(1)
    }

    /// Always false: an interval holds at least one frame.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Duration in seconds at `fps` frames per second (counting `len()` frames).
    pub fn duration_s(&self, fps: f64) -> f64 {
        self.len() as f64 / fps
    }

    /// Intersection over union of the frame sets `[onset, offset]` (inclusive), as in the MEGC
    /// spotting protocol.
    pub fn iou(&self, other: &Interval) -> f64 {
        frame_iou((self.onset, self.offset), (other.onset, other.offset))
    }
}

/// Intersection over union of two inclusive frame ranges `(first, last)` (each `first <= last`),
/// `|A ∩ B| / |A ∪ B|`: the MEGC spotting overlap, exact for any `usize` bounds.
///
/// ```
/// assert_eq!(mex_core::frame_iou((0, 9), (5, 14)), 5.0 / 15.0);
/// ```
pub fn frame_iou(a: (usize, usize), b: (usize, usize)) -> f64 {
    // In u128: lengths up to 2^64 and their sum cannot overflow.
    let len = |(lo, hi): (usize, usize)| u128::from(hi as u64) - u128::from(lo as u64) + 1;
    let lo = a.0.max(b.0);
    let hi = a.1.min(b.1);
    let inter = if hi >= lo { u128::from(hi as u64) - u128::from(lo as u64) + 1 } else { 0 };
    let union = len(a) + len(b) - inter;
    inter as f64 / union as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_counts_frames_inclusively() {
        let a = Interval::new(0, 2, 9).unwrap(); // 10 frames
        let b = Interval::new(5, 6, 14).unwrap(); // 10 frames, 5 shared
        assert!((a.iou(&b) - 5.0 / 15.0).abs() < 1e-12);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&Interval::new(20, 20, 20).unwrap()), 0.0);
        assert!(Interval::new(3, 2, 4).is_err());
    }

    #[test]
    fn extremes_do_not_overflow() {
        let m = usize::MAX;
        let top = Interval::new(m - 2, m - 1, m).unwrap();
        assert_eq!(top.len(), 3);
        assert_eq!(top.iou(&top), 1.0);
        let all = Interval::new(0, 0, m).unwrap();
        assert_eq!(all.len(), m);
        assert_eq!(all.iou(&all), 1.0);
        assert!(all.iou(&top) > 0.0);
    }
}
