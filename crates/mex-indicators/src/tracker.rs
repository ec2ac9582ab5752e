//! The streaming tracker: one [`IndicatorTracker::push`] per frame, one
//! [`IndicatorTracker::finish`] per recording.
//!
//! Memory: the tracker keeps 23 numbers per frame (time, EAR, asymmetry, regional activity,
//! mouth-corner positions), about 0.2 kB: an hour at 30 fps holds about 22 MB.
//! Nothing else grows with the recording. The blink detectors and every per-recording
//! statistic (baselines, medians, percentiles, noise floors) run in `finish`, because they need
//! the whole recording (a robust baseline, SciPy's prominences).
//!
//! Frames without a face are left out of every indicator (never zero-filled) and counted in
//! `n_frames − n_face_frames`. A recording with no face at all is an error
//! ([`Error::NoFace`]) rather than a summary of nulls.

use crate::asymmetry::{asymmetry_unchecked, motion_asymmetry, percent_asymmetry, LandmarkAsymmetry};
use crate::expressivity::{expressivity_score, noise_floor, RegionMotion};
use crate::eyes::{
    detect_blinks_adaptive, detect_blinks_opendbm, ear_68, ear_baseline, inter_blink_intervals, Blink,
    BlinkConfig, EarSample,
};
use crate::geometry::check_68;
use crate::regions::{Region, Side, N_REGIONS};
use crate::stats::{mean, quantile_sorted, sd};
use crate::{Error, Result};
use mex_core::{Interval, Landmarks};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings of the indicators.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IndicatorConfig {
    /// Blink detectors.
    pub blinks: BlinkConfig,
    /// Shortest time with a face over which a rate (blinks or movements per minute) is
    /// reported, seconds; below it the rate is null with the reason.
    pub min_rate_time_s: f64,
    /// `k` of the noise floor `median + k · scaled MAD` of regional activity.
    pub noise_floor_mads: f64,
    /// Fewest frames with motion for activity statistics and noise floors.
    pub min_motion_frames: usize,
    /// Smallest peak mouth-corner excursion (inter-ocular distances) for which the Emotrics
    /// percent asymmetry is reported (below it the ratio is one of two noises).
    pub min_excursion_iod: f64,
}

impl Default for IndicatorConfig {
    fn default() -> Self {
        Self {
            blinks: BlinkConfig::default(),
            min_rate_time_s: 20.0,
            noise_floor_mads: 3.0,
            min_motion_frames: 10,
            min_excursion_iod: 0.05,
        }
    }
}

impl IndicatorConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        self.blinks.validate()?;
        if !(self.min_rate_time_s.is_finite() && self.min_rate_time_s > 0.0) {
            return Err(Error::param("min_rate_time_s", self.min_rate_time_s, "must be positive"));
        }
        if !(self.noise_floor_mads.is_finite() && self.noise_floor_mads >= 0.0) {
            return Err(Error::param("noise_floor_mads", self.noise_floor_mads, "must be >= 0"));
        }
        if self.min_motion_frames < 2 {
            return Err(Error::param("min_motion_frames", self.min_motion_frames, "must be >= 2"));
        }
        if !(self.min_excursion_iod.is_finite() && self.min_excursion_iod >= 0.0) {
            return Err(Error::param("min_excursion_iod", self.min_excursion_iod, "must be >= 0"));
        }
        Ok(())
    }

    /// A tracker for a recording at nominal frame rate `fps` (used for the first frame's
    /// period, smoothing widths and one-frame durations; timestamps drive everything else).
    pub fn build(&self, fps: f64) -> Result<IndicatorTracker> {
        IndicatorTracker::new(*self, fps)
    }
}

/// One frame's input.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameInput<'a> {
    /// Timestamp, seconds (strictly increasing; variable frame rates are fine).
    pub time_s: f64,
    /// The face's 68 landmarks, `None` when no face was found.
    pub landmarks: Option<&'a Landmarks>,
    /// Regional motion between the previous frame and this one, when measured (ignored in a
    /// frame without a face).
    pub motion: Option<&'a RegionMotion>,
}

/// Per-frame indicator columns.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FrameIndicators {
    /// Frame index (0-based count of pushed frames).
    pub frame: usize,
    /// Timestamp, seconds.
    pub time_s: f64,
    /// Whether the frame had a face.
    pub face: bool,
    /// Inter-ocular distance of the landmarks, pixels.
    pub interocular_px: Option<f64>,
    /// EAR of the image-left eye (36-41).
    pub ear_left: Option<f64>,
    /// EAR of the image-right eye (42-47).
    pub ear_right: Option<f64>,
    /// Mean EAR of both eyes.
    pub ear_mean: Option<f64>,
    /// Landmark asymmetry indices.
    pub asymmetry: Option<LandmarkAsymmetry>,
    /// Regional activity, inter-ocular distances per second, in [`Region::ALL`] order.
    pub activity: Option<[f64; N_REGIONS]>,
}

impl FrameIndicators {
    /// Number of numeric columns of [`FrameIndicators::values`]: three eye aspect ratios, four
    /// asymmetry indices and one activity per region.
    pub const N_COLUMNS: usize = 7 + N_REGIONS;

    /// Names of the numeric columns of [`FrameIndicators::values`] (for a CSV header).
    ///
    /// ```
    /// let names = mex_indicators::FrameIndicators::column_names();
    /// assert_eq!(names[0], "ear_left");
    /// assert!(names.contains(&"activity_mouth_corner_left".to_string()));
    /// assert_eq!(names.len(), mex_indicators::FrameIndicators::N_COLUMNS);
    /// ```
    pub fn column_names() -> Vec<String> {
        let mut v: Vec<String> =
            ["ear_left", "ear_right", "ear_mean"].iter().map(|s| s.to_string()).collect();
        v.extend(
            ["asymmetry_brows", "asymmetry_eyes", "asymmetry_mouth", "asymmetry_composite"]
                .iter()
                .map(|s| s.to_string()),
        );
        v.extend(Region::ALL.iter().map(|r| format!("activity_{}", r.name())));
        v
    }

    /// The numeric columns in the order of [`FrameIndicators::column_names`] (`None`: empty
    /// cell).
    pub fn values(&self) -> Vec<Option<f64>> {
        let mut v = vec![self.ear_left, self.ear_right, self.ear_mean];
        let a = self.asymmetry;
        v.extend([a.map(|a| a.brows), a.map(|a| a.eyes), a.map(|a| a.mouth), a.map(|a| a.composite)]);
        v.extend((0..N_REGIONS).map(|i| self.activity.map(|a| a[i])));
        v
    }
}

/// What the tracker keeps per frame (NaN = absent).
#[derive(Debug, Clone, Copy)]
struct Row {
    time: f64,
    face: bool,
    ear: [f64; 3],
    asym: [f64; 4],
    act: [f64; N_REGIONS],
    corners: [f64; 4],
}

/// Per-movement indicators.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MovementIndicators {
    /// First frame.
    pub onset: usize,
    /// Last frame.
    pub offset: usize,
    /// Signed motion asymmetry in `[−1, 1]` (positive: the image-left side moves more);
    /// `None` without motion on any side.
    pub motion_asymmetry: Option<f64>,
    /// Highest regional activity in the movement, inter-ocular distances per second.
    pub peak_activity: Option<f64>,
}

/// The per-recording summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Flat indicator name -> value (`None` = null; see `reasons`). Names are listed in the
    /// crate's README.
    pub values: BTreeMap<String, Option<f64>>,
    /// Why each null value is null.
    pub reasons: BTreeMap<String, String>,
    /// Blinks of the adaptive detector.
    pub blinks: Vec<Blink>,
    /// Blinks of the OpenDBM detector.
    pub opendbm_blinks: Vec<Blink>,
    /// Per-movement indicators, when movements were given.
    pub movements: Vec<MovementIndicators>,
}

impl Summary {
    /// A value by name (`None` when null or unknown).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied().flatten()
    }

    /// Whether frame `frame` lies inside a blink of the adaptive detector (onset to offset):
    /// the per-frame `blink` column.
    pub fn in_blink(&self, frame: usize) -> bool {
        self.blinks.iter().any(|b| (b.onset_frame..=b.offset_frame).contains(&frame))
    }

    fn set(&mut self, name: impl Into<String>, v: Option<f64>, reason: impl FnOnce() -> String) {
        let name = name.into();
        let v = v.filter(|x| x.is_finite());
        if v.is_none() {
            self.reasons.insert(name.clone(), reason());
        }
        self.values.insert(name, v);
    }
}

/// The streaming tracker (module docs).
#[derive(Debug, Clone)]
pub struct IndicatorTracker {
    cfg: IndicatorConfig,
    fps: f64,
    rows: Vec<Row>,
}

impl IndicatorTracker {
    /// A tracker at nominal frame rate `fps`.
    ///
    /// ```
    /// use mex_core::{LandmarkScheme, Landmarks, Point2};
    /// use mex_indicators::{FrameInput, IndicatorConfig, IndicatorTracker};
    /// let mut t = IndicatorTracker::new(IndicatorConfig::default(), 30.0).unwrap();
    /// // A 68-point face (any layout with distinct eyes will do for the example).
    /// let pts: Vec<Point2> = (0..68).map(|i| Point2::new((i * 7 % 100) as f32, (i * 3) as f32)).collect();
    /// let lm = Landmarks::new(LandmarkScheme::SixtyEight, pts).unwrap();
    /// for i in 0..90 {
    ///     let face = (i != 10).then_some(&lm);
    ///     let row = t.push(&FrameInput { time_s: i as f64 / 30.0, landmarks: face, motion: None }).unwrap();
    ///     assert_eq!(row.face, i != 10);
    /// }
    /// let s = t.finish(None).unwrap();
    /// assert_eq!(s.get("n_face_frames"), Some(89.0));
    /// // 3 s of face is too short for a rate: null, with the reason.
    /// assert_eq!(s.get("blink_rate_per_min"), None);
    /// assert!(s.reasons["blink_rate_per_min"].contains("minimum"));
    /// assert!(IndicatorTracker::new(IndicatorConfig::default(), 0.0).is_err());
    /// ```
    pub fn new(cfg: IndicatorConfig, fps: f64) -> Result<Self> {
        cfg.validate()?;
        if !(fps.is_finite() && fps > 0.0) {
            return Err(Error::param("fps", fps, "must be positive and finite"));
        }
        Ok(Self { cfg, fps, rows: Vec::new() })
    }

    /// Number of frames pushed.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no frame was pushed.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds one frame and returns its per-frame indicators. Errors (the frame is then not
    /// added): non-increasing or non-finite time, landmarks that are not a finite 68-point set
    /// with distinct eyes, negative or non-finite motion.
    pub fn push(&mut self, input: &FrameInput<'_>) -> Result<FrameIndicators> {
        let frame = self.rows.len();
        let prev = self.rows.last().map(|r| r.time);
        if !input.time_s.is_finite() || prev.is_some_and(|p| input.time_s <= p) {
            return Err(Error::TimeNotIncreasing {
                frame,
                time_s: input.time_s,
                previous_s: prev.unwrap_or(f64::NEG_INFINITY),
            });
        }
        let dt = prev.map_or(1.0 / self.fps, |p| input.time_s - p);
        let nan = f64::NAN;
        let mut row = Row {
            time: input.time_s,
            face: false,
            ear: [nan; 3],
            asym: [nan; 4],
            act: [nan; N_REGIONS],
            corners: [nan; 4],
        };
        let mut out = FrameIndicators {
            frame,
            time_s: input.time_s,
            face: false,
            interocular_px: None,
            ear_left: None,
            ear_right: None,
            ear_mean: None,
            asymmetry: None,
            activity: None,
        };
        if let Some(lm) = input.landmarks {
            let ff = check_68(lm, frame)?;
            let (l, r) = ear_68(lm).map_err(|_| Error::DegenerateLandmarks { frame, interocular: ff.iod })?;
            let a = asymmetry_unchecked(lm, &ff);
            let c48 = ff.face_coords(lm.points[48]);
            let c54 = ff.face_coords(lm.points[54]);
            if let Some(m) = input.motion {
                for (i, &v) in m.px_per_frame.iter().enumerate() {
                    if !(v.is_finite() && v >= 0.0) {
                        return Err(Error::InvalidMotion { frame, region: Region::ALL[i].name(), value: v });
                    }
                }
                let d = m.interocular_px.unwrap_or(ff.iod);
                if !(d.is_finite() && d > 0.0) {
                    return Err(Error::param("motion.interocular_px", d, "must be positive and finite"));
                }
                let act = m.px_per_frame.map(|v| v / (dt * d));
                row.act = act;
                out.activity = Some(act);
            }
            row.face = true;
            row.ear = [l, r, 0.5 * (l + r)];
            row.asym = [a.brows, a.eyes, a.mouth, a.composite];
            row.corners = [c48.0, c48.1, c54.0, c54.1];
            out.face = true;
            out.interocular_px = Some(ff.iod);
            out.ear_left = Some(l);
            out.ear_right = Some(r);
            out.ear_mean = Some(row.ear[2]);
            out.asymmetry = Some(a);
        }
        self.rows.push(row);
        Ok(out)
    }

    /// Ends the recording: detects blinks and computes the per-recording summary.
    /// `movements`: the spotted movements (frame intervals), or `None` when no spotter ran
    /// (movement indicators are then null). Errors: [`Error::NoFace`] when no frame had a face,
    /// [`Error::InvalidMovement`] for an interval outside the recording.
    pub fn finish(self, movements: Option<&[Interval]>) -> Result<Summary> {
        let n = self.rows.len();
        let n_face = self.rows.iter().filter(|r| r.face).count();
        if n_face == 0 {
            return Err(Error::NoFace { n_frames: n });
        }
        if let Some(ms) = movements {
            if let Some(m) = ms.iter().find(|m| m.offset >= n || m.onset > m.offset) {
                return Err(Error::InvalidMovement { onset: m.onset, offset: m.offset, n_frames: n });
            }
        }
        let cfg = &self.cfg;
        let fps = self.fps;
        let mut s = Summary {
            values: BTreeMap::new(),
            reasons: BTreeMap::new(),
            blinks: Vec::new(),
            opendbm_blinks: Vec::new(),
            movements: Vec::new(),
        };
        // Time bookkeeping: each frame stands for the time since the previous one.
        let dts: Vec<f64> = (0..n)
            .map(|i| if i == 0 { 1.0 / fps } else { self.rows[i].time - self.rows[i - 1].time })
            .collect();
        let face_time: f64 = (0..n).filter(|&i| self.rows[i].face).map(|i| dts[i]).sum();
        let duration = self.rows[n - 1].time - self.rows[0].time + 1.0 / fps;
        let none = String::new;
        s.set("n_frames", Some(n as f64), none);
        s.set("n_face_frames", Some(n_face as f64), none);
        s.set("face_fraction", Some(n_face as f64 / n as f64), none);
        s.set("face_time_s", Some(face_time), none);
        s.set("duration_s", Some(duration), none);
        s.set("fps", Some(fps), none);

        // Eyes.
        let face_rows = || self.rows.iter().filter(|r| r.face);
        let col = |k: usize| face_rows().map(|r| r.ear[k]).collect::<Vec<f64>>();
        s.set("ear_left_mean", mean(&col(0)), none);
        s.set("ear_right_mean", mean(&col(1)), none);
        s.set("ear_mean", mean(&col(2)), none);
        let samples: Vec<EarSample> = self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.face)
            .map(|(i, r)| EarSample { frame: i, time_s: r.time, ear: r.ear[2] })
            .collect();
        let base = ear_baseline(&samples, fps, &cfg.blinks);
        s.set("ear_baseline", base.map(|b| b.0), none);
        s.set("ear_mad", base.map(|b| b.1), none);
        let blinks = detect_blinks_adaptive(&samples, fps, &cfg.blinks)?;
        let odbm = detect_blinks_opendbm(&samples, fps, &cfg.blinks)?;
        let mut face_prefix = vec![0usize; n + 1];
        for i in 0..n {
            face_prefix[i + 1] = face_prefix[i] + usize::from(self.rows[i].face);
        }
        let gap_free = |a: usize, b: usize| face_prefix[b + 1] - face_prefix[a] == b + 1 - a;
        let short = face_time < cfg.min_rate_time_s;
        let rate_reason = || {
            format!(
                "face visible for {face_time:.2} s, below the minimum of {} s for a rate",
                cfg.min_rate_time_s
            )
        };
        let rate = |count: usize| (!short).then(|| count as f64 * 60.0 / face_time);
        s.set("blink_count", Some(blinks.len() as f64), none);
        s.set("blink_rate_per_min", rate(blinks.len()), rate_reason);
        let no_blink = || "no blink detected".to_string();
        let durs: Vec<f64> = blinks.iter().map(|b| b.duration_s).collect();
        let amps: Vec<f64> = blinks.iter().map(|b| b.amplitude).collect();
        let rels: Vec<f64> = blinks.iter().map(|b| b.relative_amplitude).collect();
        s.set("blink_duration_mean_s", mean(&durs), no_blink);
        s.set("blink_amplitude_mean", mean(&amps), no_blink);
        s.set("blink_relative_amplitude_mean", mean(&rels), no_blink);
        let complete: Vec<f64> = blinks.iter().map(|b| f64::from(u8::from(b.complete))).collect();
        s.set("blink_complete_fraction", mean(&complete), no_blink);
        let ibi = inter_blink_intervals(&blinks, gap_free);
        let few = || "fewer than two blinks in one face segment".to_string();
        s.set("ibi_mean_s", mean(&ibi), few);
        s.set("ibi_sd_s", sd(&ibi), || "fewer than two inter-blink intervals".to_string());
        s.set("opendbm_blink_count", Some(odbm.len() as f64), none);
        s.set("opendbm_blink_rate_per_min", rate(odbm.len()), rate_reason);
        let odbm_ibi = inter_blink_intervals(&odbm, |_, _| true);
        s.set("opendbm_blinkdur_mean_s", mean(&odbm_ibi), || {
            "fewer than two OpenDBM blinks (OpenDBM's blinkdur is the time between blinks)".to_string()
        });

        // Asymmetry.
        for (k, name) in ["brows", "eyes", "mouth", "composite"].iter().enumerate() {
            let v: Vec<f64> = face_rows().map(|r| r.asym[k]).collect();
            s.set(format!("asymmetry_{name}_mean"), mean(&v), none);
            s.set(format!("asymmetry_{name}_sd"), sd(&v), || "fewer than two face frames".to_string());
        }
        // Mouth-corner excursion from the recording's median (rest) position.
        let cm: Vec<f64> = (0..4)
            .map(|k| {
                crate::stats::median(&face_rows().map(|r| r.corners[k]).collect::<Vec<_>>()).unwrap_or(0.0)
            })
            .collect();
        let exc: Vec<(f64, f64)> = face_rows()
            .map(|r| {
                (
                    (r.corners[0] - cm[0]).hypot(r.corners[1] - cm[1]),
                    (r.corners[2] - cm[2]).hypot(r.corners[3] - cm[3]),
                )
            })
            .collect();
        let peak_l = exc.iter().map(|e| e.0).fold(0.0, f64::max);
        let peak_r = exc.iter().map(|e| e.1).fold(0.0, f64::max);
        // Near the peak: the frames whose total excursion is at least 80 % of its largest value
        // (averaging them keeps landmark noise out of the left/right comparison).
        let top = exc.iter().map(|e| e.0 + e.1).fold(0.0, f64::max);
        let near: Vec<(f64, f64)> =
            exc.iter().copied().filter(|e| top > 0.0 && e.0 + e.1 >= 0.8 * top).collect();
        let at_peak = (
            mean(&near.iter().map(|e| e.0).collect::<Vec<_>>()).unwrap_or(0.0),
            mean(&near.iter().map(|e| e.1).collect::<Vec<_>>()).unwrap_or(0.0),
        );
        s.set("mouth_corner_excursion_left_peak_iod", Some(peak_l), none);
        s.set("mouth_corner_excursion_right_peak_iod", Some(peak_r), none);
        s.set("mouth_corner_excursion_peak_iod", Some(0.5 * top), none);
        let big = at_peak.0.max(at_peak.1) >= cfg.min_excursion_iod;
        s.set(
            "mouth_excursion_asymmetry_pct",
            if big { percent_asymmetry(at_peak.0, at_peak.1) } else { None },
            || format!("peak mouth-corner excursion below {} inter-ocular distances", cfg.min_excursion_iod),
        );

        // Regional activity.
        let motion_rows: Vec<&Row> = face_rows().filter(|r| r.act[0].is_finite()).collect();
        let n_motion = motion_rows.len();
        s.set("n_motion_frames", Some(n_motion as f64), none);
        let enough = n_motion >= cfg.min_motion_frames;
        let act_reason = || {
            if n_motion == 0 {
                "no regional motion given".to_string()
            } else {
                format!("{n_motion} frames with motion, fewer than the minimum of {}", cfg.min_motion_frames)
            }
        };
        let series: Vec<Vec<f64>> =
            (0..N_REGIONS).map(|k| motion_rows.iter().map(|r| r.act[k]).collect()).collect();
        let floors: Vec<f64> =
            series.iter().map(|v| noise_floor(v, cfg.noise_floor_mads).unwrap_or(f64::NAN)).collect();
        for (k, r) in Region::ALL.iter().enumerate() {
            let v = &series[k];
            let g = |x: Option<f64>| if enough { x } else { None };
            let name = r.name();
            s.set(format!("activity_{name}_mean"), g(mean(v)), act_reason);
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            let q = |p: f64| (!sorted.is_empty()).then(|| quantile_sorted(&sorted, p));
            s.set(format!("activity_{name}_p50"), g(q(0.5)), act_reason);
            s.set(format!("activity_{name}_p90"), g(q(0.9)), act_reason);
            s.set(format!("activity_{name}_p99"), g(q(0.99)), act_reason);
            s.set(format!("activity_{name}_noise_floor"), g(Some(floors[k])), act_reason);
            let frac = v.iter().filter(|&&a| a > floors[k]).count() as f64 / v.len().max(1) as f64;
            s.set(format!("activity_{name}_active_fraction"), g(Some(frac)), act_reason);
        }
        let all: Vec<f64> = series.iter().flatten().copied().collect();
        s.set("activity_mean", if enough { mean(&all) } else { None }, act_reason);
        let any_active = motion_rows.iter().filter(|r| (0..N_REGIONS).any(|k| r.act[k] > floors[k])).count()
            as f64
            / n_motion.max(1) as f64;
        s.set("active_fraction", enough.then_some(any_active), act_reason);
        let refs: Vec<&[f64]> = series.iter().map(|v| v.as_slice()).collect();
        s.set(
            "expressivity_score",
            if enough { expressivity_score(&refs, &floors) } else { None },
            act_reason,
        );

        // Movements.
        let no_spot = || "no spotted movements given".to_string();
        match movements {
            None => {
                s.set("movement_count", None, no_spot);
                s.set("movements_per_min", None, no_spot);
                s.set("motion_asymmetry_mean", None, no_spot);
                s.set("motion_asymmetry_abs_mean", None, no_spot);
            }
            Some(ms) => {
                for m in ms {
                    let rows = &self.rows[m.onset..=m.offset];
                    let mut e = (0.0, 0.0);
                    let mut peak: Option<f64> = None;
                    for r in rows.iter().filter(|r| r.face && r.act[0].is_finite()) {
                        let rm = RegionMotion::new(r.act);
                        e.0 += rm.side_energy(Side::Left);
                        e.1 += rm.side_energy(Side::Right);
                        let p = r.act.iter().copied().fold(0.0, f64::max);
                        peak = Some(peak.map_or(p, |q: f64| q.max(p)));
                    }
                    s.movements.push(MovementIndicators {
                        onset: m.onset,
                        offset: m.offset,
                        motion_asymmetry: motion_asymmetry(e.0, e.1),
                        peak_activity: peak,
                    });
                }
                s.set("movement_count", Some(ms.len() as f64), none);
                s.set("movements_per_min", rate(ms.len()), rate_reason);
                let ma: Vec<f64> = s.movements.iter().filter_map(|m| m.motion_asymmetry).collect();
                let abs: Vec<f64> = ma.iter().map(|v| v.abs()).collect();
                let why = || "no movement with regional motion".to_string();
                s.set("motion_asymmetry_mean", mean(&ma), why);
                s.set("motion_asymmetry_abs_mean", mean(&abs), why);
            }
        }
        s.blinks = blinks;
        s.opendbm_blinks = odbm;
        Ok(s)
    }
}
