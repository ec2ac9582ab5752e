//! Streaming frame sources for whole recordings: a video file (decoded by FFmpeg) or a folder of
//! frames, one frame at a time, with presentation timestamps. Nothing here holds a recording:
//! memory is one frame (plus FFmpeg's own decoder state, in its own process).
//!
//! # Why the `ffmpeg` executable
//!
//! Videos are decoded by streaming raw RGB frames from the `ffmpeg` executable through a pipe (as
//! imageio-ffmpeg does), not by linking FFmpeg's libraries:
//!
//! * mex builds and runs with no system library installed (`cargo build` needs no FFmpeg
//!   headers); only reading a video needs the `ffmpeg` and `ffprobe` programs, and a video given
//!   without them is a clear error ([`Error::FfmpegMissing`]) saying what to install;
//! * FFmpeg's command line is stable across its major versions, where its C API changes with each
//!   of them (and `ffmpeg-next` follows one at a time);
//! * decoding runs in its own process, in parallel with the analysis, and a decoder crash on a
//!   hostile file cannot take mex down.
//!
//! Timestamps come from FFmpeg's `showinfo` filter, read from the decoder's log line of each frame
//! as it is produced: the presentation time of every frame, relative to the start of the file
//! (variable-frame-rate files keep their real times). The frame rate reported in
//! [`StreamInfo::fps`] is the container's average rate.
//!
//! ```no_run
//! use mex_data::video::{open_frames, FrameStream};
//! # fn main() -> mex_data::Result<()> {
//! let mut frames = open_frames("recording.mp4".as_ref(), None)?;
//! println!("{}x{} at {:.2} fps", frames.info().width, frames.info().height, frames.info().fps);
//! while let Some(f) = frames.next_frame()? {
//!     println!("frame {} at {:.3} s", f.index, f.timestamp);
//! }
//! # Ok(())
//! # }
//! ```

use crate::{Error, Result};
use image::RgbImage;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

/// Largest frame side accepted, pixels (decoder limit against decompression bombs).
pub const MAX_FRAME_SIDE: u32 = mex_core::MAX_IMAGE_SIDE;
/// Largest frame area accepted, pixels (about 8K UHD with margin).
pub const MAX_FRAME_PIXELS: u64 = 40_000_000;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// 0-based index in presentation order.
    pub index: usize,
    /// Presentation time in seconds, relative to the start of the recording.
    pub timestamp: f64,
    /// The frame, 8-bit RGB.
    pub image: RgbImage,
}

/// What is known about a stream before it is read.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    /// Frame width, pixels.
    pub width: u32,
    /// Frame height, pixels.
    pub height: u32,
    /// Frames per second: the container's average rate for videos, the given rate for folders.
    pub fps: f64,
    /// Whether `fps` came from the container (false: given by the caller or the default).
    pub fps_from_container: bool,
    /// Number of frames when known in advance (folders; videos whose container says).
    pub n_frames: Option<usize>,
    /// Duration in seconds when known.
    pub duration_s: Option<f64>,
    /// `frames` for a folder, else the video codec's name (`h264`, `hevc`, ...).
    pub codec: String,
}

/// A stream of frames read one at a time: a video file or a folder of images.
pub trait FrameStream: Send {
    /// Size, rate and length of the stream.
    fn info(&self) -> &StreamInfo;
    /// The next frame, `None` at the end. An error ends the stream.
    fn next_frame(&mut self) -> Result<Option<Frame>>;
}

/// Largest frame rate accepted, frames per second.
pub const MAX_FPS: f64 = 10_000.0;

fn check_fps(fps: f64) -> Result<()> {
    if fps.is_finite() && fps > 0.0 && fps <= MAX_FPS {
        Ok(())
    } else {
        Err(Error::param("fps", fps, "must be in (0, 10000]"))
    }
}

/// Whether `path` names something [`open_frames`] reads as a video (a file) rather than a folder.
pub fn is_video(path: &Path) -> bool {
    path.is_file()
}

/// Opens a recording: a folder of frames (natural file-name order, `fps` or 30 frames per second)
/// or a video file (decoded by FFmpeg; `fps` is used only when the container carries no rate).
pub fn open_frames(path: &Path, fps: Option<f64>) -> Result<Box<dyn FrameStream>> {
    if let Some(f) = fps {
        check_fps(f)?;
    }
    if path.is_dir() {
        Ok(Box::new(FolderFrames::open(path, fps.unwrap_or(30.0))?))
    } else if path.is_file() {
        Ok(Box::new(VideoFrames::open(path, fps)?))
    } else {
        Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such video file or folder of frames",
            ),
        })
    }
}

/// The frames of a folder, decoded one at a time in natural file-name order (`img2` before
/// `img10`), with timestamps `index / fps`. Every frame must have the first frame's size.
#[derive(Debug)]
pub struct FolderFrames {
    files: Vec<PathBuf>,
    next: usize,
    info: StreamInfo,
}

impl FolderFrames {
    /// Lists the folder's images and reads the first one's size.
    pub fn open(dir: &Path, fps: f64) -> Result<Self> {
        check_fps(fps)?;
        let s = crate::Sample { path: Some(dir.to_path_buf()), ..Default::default() };
        let files = s.frame_paths()?;
        let first = files.first().ok_or_else(|| Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "the folder holds no image frames"),
        })?;
        let (width, height) = image::image_dimensions(first)
            .map_err(|e| Error::Image { path: first.clone(), message: e.to_string() })?;
        check_size(first, width, height)?;
        let n = files.len();
        Ok(Self {
            files,
            next: 0,
            info: StreamInfo {
                width,
                height,
                fps,
                fps_from_container: false,
                n_frames: Some(n),
                duration_s: Some(n as f64 / fps),
                codec: "frames".into(),
            },
        })
    }
}

/// Reads an image file as RGB with the decoder limits of [`mex_core::decode_image_limited`] (a
/// truncated JPEG or a decompression bomb is an error).
pub fn read_rgb_limited(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    let img = mex_core::decode_image_limited(&bytes)
        .map_err(|e| Error::Image { path: path.to_path_buf(), message: e.to_string() })?;
    check_size(path, img.width(), img.height())?;
    Ok(img.into_rgb8())
}

impl FrameStream for FolderFrames {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let Some(p) = self.files.get(self.next) else { return Ok(None) };
        let image = read_rgb_limited(p)?;
        if image.dimensions() != (self.info.width, self.info.height) {
            return Err(Error::Video {
                path: p.clone(),
                reason: format!(
                    "frame {} is {}x{}, the first frame {}x{} (the size must not change)",
                    self.next,
                    image.width(),
                    image.height(),
                    self.info.width,
                    self.info.height
                ),
            });
        }
        let f = Frame { index: self.next, timestamp: self.next as f64 / self.info.fps, image };
        self.next += 1;
        Ok(Some(f))
    }
}

fn check_size(path: &Path, w: u32, h: u32) -> Result<()> {
    if w == 0
        || h == 0
        || w > MAX_FRAME_SIDE
        || h > MAX_FRAME_SIDE
        || u64::from(w) * u64::from(h) > MAX_FRAME_PIXELS
    {
        return Err(Error::Video {
            path: path.to_path_buf(),
            reason: format!(
                "frame size {w}x{h} is outside the limits (1..={MAX_FRAME_SIDE} per side, at most \
                 {MAX_FRAME_PIXELS} pixels)"
            ),
        });
    }
    Ok(())
}

/// The `ffmpeg` program: `MEX_FFMPEG` if set, else `ffmpeg` on the `PATH`.
fn ffmpeg_program() -> PathBuf {
    std::env::var_os("MEX_FFMPEG").map(PathBuf::from).unwrap_or_else(|| "ffmpeg".into())
}

/// The `ffprobe` program: `MEX_FFPROBE` if set, else `ffprobe` on the `PATH`.
fn ffprobe_program() -> PathBuf {
    std::env::var_os("MEX_FFPROBE").map(PathBuf::from).unwrap_or_else(|| "ffprobe".into())
}

fn spawn_error(program: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::FfmpegMissing { program: program.display().to_string() }
    } else {
        Error::Io { path: program.to_path_buf(), source: e }
    }
}

/// Parses FFmpeg's `a/b` rationals.
fn rational(s: &str) -> Option<f64> {
    let (a, b) = s.split_once('/').unwrap_or((s, "1"));
    let (a, b): (f64, f64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (b != 0.0 && (a / b).is_finite() && a / b > 0.0).then_some(a / b)
}

/// The first error-looking line of FFmpeg's log, for messages.
fn ffmpeg_reason(log: &[String]) -> String {
    let line = log
        .iter()
        .rev()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error")
                || l.contains("invalid")
                || l.contains("not found")
                || l.contains("unsupported")
        })
        .or_else(|| log.last())
        .map(String::as_str)
        .unwrap_or("no message");
    let line = line.trim();
    let cut: String = line.chars().take(200).collect();
    cut.escape_debug().to_string()
}

/// Stream facts read by `ffprobe`.
fn probe(path: &Path, fps: Option<f64>) -> Result<StreamInfo> {
    let prog = ffprobe_program();
    let out = Command::new(&prog)
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg("stream=codec_name,width,height,avg_frame_rate,r_frame_rate,nb_frames,duration:stream_side_data=rotation:format=duration")
        .args(["-of", "json"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(&prog, e))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log: Vec<String> = stderr.lines().map(str::to_string).collect();
    if !out.status.success() {
        return Err(Error::Video {
            path: path.to_path_buf(),
            reason: format!("not a readable video: {}", ffmpeg_reason(&log)),
        });
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Video { path: path.to_path_buf(), reason: format!("ffprobe output: {e}") })?;
    let Some(s) = v.get("streams").and_then(|s| s.get(0)) else {
        return Err(Error::Video { path: path.to_path_buf(), reason: "the file has no video stream".into() });
    };
    let num = |k: &str| s.get(k).and_then(|x| x.as_u64());
    let text = |k: &str| s.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let (Some(w), Some(h)) = (num("width"), num("height")) else {
        return Err(Error::Video {
            path: path.to_path_buf(),
            reason: "the video stream has no frame size".into(),
        });
    };
    let (mut w, mut h) = (u32::try_from(w).unwrap_or(u32::MAX), u32::try_from(h).unwrap_or(u32::MAX));
    let rotation = s
        .get("side_data_list")
        .and_then(|l| l.as_array())
        .and_then(|l| l.iter().find_map(|d| d.get("rotation").and_then(|r| r.as_i64())))
        .unwrap_or(0);
    if rotation.rem_euclid(180) == 90 {
        std::mem::swap(&mut w, &mut h);
    }
    check_size(path, w, h)?;
    let container_fps = text("avg_frame_rate")
        .and_then(|r| rational(&r))
        .or_else(|| text("r_frame_rate").and_then(|r| rational(&r)));
    let duration_s = text("duration")
        .and_then(|d| d.parse::<f64>().ok())
        .or_else(|| {
            v.get("format")
                .and_then(|f| f.get("duration"))
                .and_then(|d| d.as_str())
                .and_then(|d| d.parse().ok())
        })
        .filter(|d: &f64| d.is_finite() && *d >= 0.0);
    let n_frames = text("nb_frames").and_then(|n| n.parse::<usize>().ok()).filter(|&n| n > 0);
    let (fps, from_container) = match (container_fps, fps) {
        (Some(c), _) => (c, true),
        (None, Some(f)) => (f, false),
        (None, None) => (30.0, false),
    };
    Ok(StreamInfo {
        width: w,
        height: h,
        fps,
        fps_from_container: from_container,
        n_frames,
        duration_s,
        codec: text("codec_name").unwrap_or_else(|| "unknown".into()),
    })
}

/// Per-frame facts from the `showinfo` log line.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FrameMeta {
    n: usize,
    pts_time: f64,
    size: (u32, u32),
}

/// Parses one `showinfo` frame line (`... n:   3 pts:  1536 pts_time:0.1 ... s:640x360 ...`).
fn parse_showinfo(line: &str) -> Option<FrameMeta> {
    if !line.contains("showinfo") {
        return None;
    }
    let field = |key: &str| {
        let i = line.find(key)? + key.len();
        let rest = line[i..].trim_start();
        Some(rest.split_whitespace().next()?.to_string())
    };
    let n = field(" n:")?.parse().ok()?;
    let pts_time = field("pts_time:")?.parse().ok()?;
    let s = field(" s:")?;
    let (w, h) = s.split_once('x')?;
    Some(FrameMeta { n, pts_time, size: (w.parse().ok()?, h.parse().ok()?) })
}

/// A video decoded by the `ffmpeg` executable, streamed frame by frame through a pipe.
#[derive(Debug)]
pub struct VideoFrames {
    path: PathBuf,
    info: StreamInfo,
    child: Option<Child>,
    stdout: Option<ChildStdout>,
    meta: Receiver<FrameMeta>,
    log: Arc<Mutex<Vec<String>>>,
    logger: Option<std::thread::JoinHandle<()>>,
    next: usize,
    size: Option<(u32, u32)>,
    done: bool,
}

impl VideoFrames {
    /// Probes the file with `ffprobe` and starts `ffmpeg` decoding its first video stream.
    /// `fps` is used only when the container carries no frame rate.
    pub fn open(path: &Path, fps: Option<f64>) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
        if meta.len() == 0 {
            return Err(Error::Video {
                path: path.to_path_buf(),
                reason: "the file is empty (0 bytes)".into(),
            });
        }
        let info = probe(path, fps)?;
        let prog = ffmpeg_program();
        let mut child = Command::new(&prog)
            .args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", "-xerror", "-i"])
            .arg(path)
            .args(["-map", "0:v:0", "-an", "-sn", "-dn", "-vf", "showinfo", "-vsync", "passthrough"])
            .args(["-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| spawn_error(&prog, e))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (tx, rx): (Sender<FrameMeta>, Receiver<FrameMeta>) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = Arc::clone(&log);
        let logger = stderr.map(|stderr| {
            std::thread::spawn(move || {
                let mut r = BufReader::new(stderr);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match r.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let line = String::from_utf8_lossy(&buf);
                    if let Some(m) = parse_showinfo(&line) {
                        // The receiver may be gone (stream dropped): keep draining the pipe.
                        let _ = tx.send(m);
                    } else if !line.contains("showinfo") {
                        if let Ok(mut l) = log2.lock() {
                            if l.len() >= 64 {
                                l.remove(0);
                            }
                            l.push(line.trim_end().to_string());
                        }
                    }
                }
            })
        });
        Ok(Self {
            path: path.to_path_buf(),
            info,
            child: Some(child),
            stdout,
            meta: rx,
            log,
            logger,
            next: 0,
            size: None,
            done: false,
        })
    }

    fn fail(&mut self, reason: String) -> Error {
        self.done = true;
        self.stop();
        Error::Video { path: self.path.clone(), reason }
    }

    fn log_lines(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn stop(&mut self) {
        self.stdout = None;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(h) = self.logger.take() {
            let _ = h.join();
        }
    }

    /// Waits for FFmpeg at the end of its output; an error exit is an error of the stream.
    fn finish(&mut self) -> Result<()> {
        self.done = true;
        self.stdout = None;
        let status = match self.child.take() {
            Some(mut c) => Some(c.wait().map_err(|e| Error::Io { path: ffmpeg_program(), source: e })?),
            None => None,
        };
        if let Some(h) = self.logger.take() {
            let _ = h.join();
        }
        let log = self.log_lines();
        if let Some(st) = status {
            if !st.success() {
                return Err(Error::Video {
                    path: self.path.clone(),
                    reason: format!("decoding failed after {} frames: {}", self.next, ffmpeg_reason(&log)),
                });
            }
        }
        if self.next == 0 {
            return Err(Error::Video {
                path: self.path.clone(),
                reason: format!("no frame could be decoded: {}", ffmpeg_reason(&log)),
            });
        }
        Ok(())
    }
}

impl Drop for VideoFrames {
    fn drop(&mut self) {
        self.stop();
    }
}

impl FrameStream for VideoFrames {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        if self.done {
            return Ok(None);
        }
        let Ok(meta) = self.meta.recv() else {
            self.finish()?;
            return Ok(None);
        };
        let size = *self.size.get_or_insert(meta.size);
        if meta.size != size {
            return Err(self.fail(format!(
                "the frame size changes mid-stream at frame {}: {}x{} after {}x{} (not supported; \
                 re-encode the video at one size)",
                meta.n, meta.size.0, meta.size.1, size.0, size.1
            )));
        }
        if let Err(e) = check_size(&self.path, size.0, size.1) {
            self.done = true;
            self.stop();
            return Err(e);
        }
        let len = size.0 as usize * size.1 as usize * 3;
        let mut buf = vec![0u8; len];
        let read = match self.stdout.as_mut() {
            Some(out) => read_full(out, &mut buf),
            None => Ok(0),
        };
        match read {
            Ok(n) if n == len => {}
            Ok(n) => {
                // FFmpeg stopped: let it finish its log, then look for the cause it may not have
                // named (a later frame of another size makes its raw output fail).
                if let Some(mut c) = self.child.take() {
                    let _ = c.wait();
                }
                if let Some(h) = self.logger.take() {
                    let _ = h.join();
                }
                if let Some(m) = self.meta.try_iter().find(|m| m.size != size) {
                    return Err(self.fail(format!(
                        "the frame size changes mid-stream at frame {}: {}x{} after {}x{} (not \
                         supported; re-encode the video at one size)",
                        m.n, m.size.0, m.size.1, size.0, size.1
                    )));
                }
                let log = self.log_lines();
                return Err(self.fail(format!(
                    "decoding stopped inside frame {} ({n} of {len} bytes): {}",
                    self.next,
                    ffmpeg_reason(&log)
                )));
            }
            Err(e) => return Err(self.fail(format!("reading decoded frames: {e}"))),
        }
        let image = RgbImage::from_raw(size.0, size.1, buf)
            .ok_or_else(|| Error::Video { path: self.path.clone(), reason: "frame buffer size".into() })?;
        let f = Frame { index: self.next, timestamp: meta.pts_time, image };
        self.next += 1;
        Ok(Some(f))
    }
}

/// Reads until `buf` is full or the stream ends; the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn showinfo_lines_parse() {
        let l = "[Parsed_showinfo_0 @ 0x5624] n:   1 pts:    512 pts_time:0.0333333 pos:    17707 fmt:yuv420p sar:1/1 s:640x360 i:P iskey:0";
        assert_eq!(parse_showinfo(l), Some(FrameMeta { n: 1, pts_time: 0.0333333, size: (640, 360) }));
        assert_eq!(parse_showinfo("[Parsed_showinfo_0 @ 0x1] color_range:tv"), None);
        assert_eq!(parse_showinfo("Input #0, mov"), None);
    }

    #[test]
    fn rationals() {
        assert_eq!(rational("30/1"), Some(30.0));
        assert!((rational("519168/19667").unwrap() - 26.398).abs() < 1e-3);
        assert_eq!(rational("0/0"), None);
        assert_eq!(rational("x"), None);
    }

    #[test]
    fn bad_fps_and_missing_paths_are_errors() {
        assert!(open_frames(Path::new("/nonexistent/x.mp4"), None).is_err());
        assert!(open_frames(Path::new("."), Some(0.0)).is_err());
        assert!(open_frames(Path::new("."), Some(f64::NAN)).is_err());
    }
}
