use crate::{CoreError, Result};
use serde::{Deserialize, Serialize};

/// A dense optical-flow field: horizontal (`u`) and vertical (`v`) displacement in pixels,
/// row-major planes of `width * height` values each.
///
/// The displacement maps a pixel `(x, y)` of the first frame to `(x + u, y + v)` in the second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowField {
    width: usize,
    height: usize,
    u: Vec<f32>,
    v: Vec<f32>,
}

impl FlowField {
    /// A zero field of the given size.
    pub fn zeros(width: usize, height: usize) -> Self {
        let n = width * height;
        Self { width, height, u: vec![0.0; n], v: vec![0.0; n] }
    }

    /// Builds a field from its planes; both must hold `width * height` values.
    pub fn from_planes(width: usize, height: usize, u: Vec<f32>, v: Vec<f32>) -> Result<Self> {
        let n = width * height;
        if u.len() != n || v.len() != n {
            return Err(CoreError::SizeMismatch { left: (u.len(), v.len()), right: (n, n) });
        }
        Ok(Self { width, height, u, v })
    }

    /// Builds a field by evaluating `f(x, y) -> (u, v)` at every pixel.
    pub fn from_fn(width: usize, height: usize, mut f: impl FnMut(usize, usize) -> (f32, f32)) -> Self {
        let mut out = Self::zeros(width, height);
        for y in 0..height {
            for x in 0..width {
                let (a, b) = f(x, y);
                out.u[y * width + x] = a;
                out.v[y * width + x] = b;
            }
        }
        out
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// `(width, height)`.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// Horizontal displacement plane.
    pub fn u(&self) -> &[f32] {
        &self.u
    }

    /// Vertical displacement plane.
    pub fn v(&self) -> &[f32] {
        &self.v
    }

    /// Both planes, mutably (for estimators that write in place).
    pub fn planes_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        (&mut self.u, &mut self.v)
    }

    /// Consumes the field into its planes `(u, v)`.
    pub fn into_planes(self) -> (Vec<f32>, Vec<f32>) {
        (self.u, self.v)
    }

    /// Resizes the field to `width x height`, zeroing it, reusing the allocation when possible.
    pub fn reset(&mut self, width: usize, height: usize) {
        let n = width * height;
        self.width = width;
        self.height = height;
        self.u.clear();
        self.u.resize(n, 0.0);
        self.v.clear();
        self.v.resize(n, 0.0);
    }

    /// Displacement at pixel `(x, y)`; `None` outside the field.
    pub fn get(&self, x: usize, y: usize) -> Option<(f32, f32)> {
        (x < self.width && y < self.height).then(|| {
            let i = y * self.width + x;
            (self.u[i], self.v[i])
        })
    }

    /// Per-pixel magnitude `sqrt(u² + v²)`.
    pub fn magnitude(&self) -> Vec<f32> {
        self.u.iter().zip(&self.v).map(|(a, b)| a.hypot(*b)).collect()
    }

    /// Per-pixel orientation `atan2(v, u)` in radians, in `(-π, π]`.
    pub fn angle(&self) -> Vec<f32> {
        self.u.iter().zip(&self.v).map(|(a, b)| b.atan2(*a)).collect()
    }

    /// Mean magnitude over the field (0 for an empty field).
    pub fn mean_magnitude(&self) -> f32 {
        if self.u.is_empty() {
            return 0.0;
        }
        let s: f64 = self.u.iter().zip(&self.v).map(|(a, b)| f64::from(a.hypot(*b))).sum();
        (s / self.u.len() as f64) as f32
    }

    /// Average end-point error against a reference field of the same size:
    /// mean of `|(u, v) - (u_ref, v_ref)|`.
    pub fn epe(&self, reference: &FlowField) -> Result<f32> {
        self.check_same_size(reference)?;
        if self.u.is_empty() {
            return Err(CoreError::Empty { what: "flow field" });
        }
        let s: f64 = (0..self.u.len())
            .map(|i| f64::from((self.u[i] - reference.u[i]).hypot(self.v[i] - reference.v[i])))
            .sum();
        Ok((s / self.u.len() as f64) as f32)
    }

    /// Average end-point error restricted to an inner window that leaves `border` pixels out on
    /// every side (borders are ill-posed for every estimator).
    pub fn epe_interior(&self, reference: &FlowField, border: usize) -> Result<f32> {
        self.check_same_size(reference)?;
        if self.width <= 2 * border || self.height <= 2 * border {
            return Err(CoreError::InvalidParam {
                name: "border",
                value: border.to_string(),
                reason: "leaves no interior pixels",
            });
        }
        let mut s = 0.0f64;
        let mut n = 0usize;
        for y in border..self.height - border {
            for x in border..self.width - border {
                let i = y * self.width + x;
                s += f64::from((self.u[i] - reference.u[i]).hypot(self.v[i] - reference.v[i]));
                n += 1;
            }
        }
        Ok((s / n as f64) as f32)
    }

    /// Whether every value is finite.
    pub fn is_finite(&self) -> bool {
        self.u.iter().chain(&self.v).all(|x| x.is_finite())
    }

    /// Errors with [`CoreError::SizeMismatch`] unless `other` has the same size.
    pub fn check_same_size(&self, other: &FlowField) -> Result<()> {
        if self.size() != other.size() {
            return Err(CoreError::SizeMismatch { left: self.size(), right: other.size() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magnitude_and_angle_of_known_vectors() {
        let f = FlowField::from_planes(2, 1, vec![3.0, 0.0], vec![4.0, -2.0]).unwrap();
        assert_eq!(f.magnitude(), vec![5.0, 2.0]);
        let a = f.angle();
        assert!((a[0] - (4.0f32).atan2(3.0)).abs() < 1e-6);
        assert!((a[1] + std::f32::consts::FRAC_PI_2).abs() < 1e-6);
        assert!((f.mean_magnitude() - 3.5).abs() < 1e-6);
    }

    #[test]
    fn from_planes_rejects_wrong_lengths() {
        let e = FlowField::from_planes(2, 2, vec![0.0; 4], vec![0.0; 3]).unwrap_err();
        assert!(matches!(e, CoreError::SizeMismatch { .. }));
    }

    #[test]
    fn epe_of_offset_field() {
        let a = FlowField::zeros(4, 4);
        let b = FlowField::from_fn(4, 4, |_, _| (3.0, 4.0));
        assert!((a.epe(&b).unwrap() - 5.0).abs() < 1e-6);
        assert!((a.epe_interior(&b, 1).unwrap() - 5.0).abs() < 1e-6);
        assert!(a.epe_interior(&b, 2).is_err());
        assert!(a.epe(&FlowField::zeros(3, 4)).is_err());
    }
}
