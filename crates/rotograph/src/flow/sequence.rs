//! Flow over a frame sequence: one pyramid per frame, reused by both pairs it belongs to.

use super::{compute_flow, FlowField, FlowParams, Pyramid};
use crate::error::{Error, Result};
use crate::frames::FrameSource;
use crate::progress::{Event, Progress};
use serde::Serialize;
use std::path::Path;

/// What [`flow_sequence`] writes.
#[derive(Debug, Clone, Default)]
pub struct SequenceOptions {
    /// Flow engine knobs.
    pub params: FlowParams,
    /// Also write the backward flow (frame t+1 → t) as `NAME.back.flo`.
    pub backward: bool,
    /// Also write a colour-wheel PNG of each forward flow as `NAME.png`.
    pub viz: bool,
}

/// Summary of a [`flow_sequence`] run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SequenceReport {
    /// Number of frames read.
    pub frames: usize,
    /// Number of consecutive pairs whose flow was written.
    pub pairs: usize,
}

/// Computes the flow between each pair of consecutive frames of `source` into `out_dir`:
/// `NAME.flo` holds the flow from frame NAME to the next frame (NAME is the frame's file stem),
/// written atomically. Each frame's pyramid is built once and serves both of its pairs. Stops
/// with [`Error::Interrupted`] after the pair in flight when `progress.should_stop()`.
///
/// The work is pipelined: while the flow of one pair is computed, the files of the pair before
/// are written and the next frame is decoded and its pyramid built (on the other thread of the
/// pool, or in turn on one thread). The files are the same either way.
pub fn flow_sequence(
    source: &mut dyn FrameSource,
    out_dir: &Path,
    opts: &SequenceOptions,
    progress: &dyn Progress,
) -> Result<SequenceReport> {
    opts.params.validate()?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let total = source.len_hint().map(|n| n.saturating_sub(1) as u64);
    progress.event(Event::Start {
        stage: "flow".into(),
        total,
    });
    let params = &opts.params;
    // Everything runs on the pool: the nested parallel loops then start without waking a
    // thread from outside it each time.
    let report = crate::flow::on_pool(|| -> Result<SequenceReport> {
        let mut frames = 0;
        let mut pairs = 0;
        let Some(mut prev) = next_pyramid(source, params)? else {
            return Ok(SequenceReport { frames, pairs });
        };
        frames += 1;
        let mut upcoming = next_pyramid(source, params)?;
        let mut pending: Option<Done> = None;
        while let Some(cur) = upcoming.take() {
            frames += 1;
            let (flows, io) = rayon::join(
                || -> Result<Done> {
                    let forward = compute_flow(&prev.1, &cur.1, params)?;
                    let backward = if opts.backward {
                        Some(compute_flow(&cur.1, &prev.1, params)?)
                    } else {
                        None
                    };
                    Ok(Done {
                        name: prev.0.clone(),
                        forward,
                        backward,
                    })
                },
                || -> Result<Option<(String, Pyramid)>> {
                    if let Some(done) = pending.take() {
                        done.write(out_dir, opts.viz)?;
                    }
                    next_pyramid(source, params)
                },
            );
            let done = flows?;
            let name = format!("{}.flo", done.name);
            // A pair is written before the error of a later frame, or an interruption, ends
            // the run (as without the pipeline).
            let next = match io {
                Ok(next) => next,
                Err(e) => {
                    done.write(out_dir, opts.viz)?;
                    return Err(e);
                }
            };
            progress.event(Event::Frame {
                stage: "flow".into(),
                index: pairs as u64,
                name,
                skipped: false,
            });
            pairs += 1;
            if progress.should_stop() {
                done.write(out_dir, opts.viz)?;
                return Err(Error::Interrupted);
            }
            pending = Some(done);
            upcoming = next;
            prev = cur;
        }
        if let Some(done) = pending.take() {
            done.write(out_dir, opts.viz)?;
        }
        Ok(SequenceReport { frames, pairs })
    })?;
    progress.event(Event::Finish {
        stage: "flow".into(),
    });
    if report.frames < 2 {
        return Err(Error::setting(
            "input",
            format!(
                "flow needs at least two frames but the input has {}",
                report.frames
            ),
        ));
    }
    Ok(report)
}

/// The next frame of `source` (its file stem) and its pyramid; `None` at the end.
fn next_pyramid(
    source: &mut dyn FrameSource,
    params: &FlowParams,
) -> Result<Option<(String, Pyramid)>> {
    let Some((info, frame)) = source.next_frame()? else {
        return Ok(None);
    };
    let stem = Path::new(&info.name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("{:05}", info.index));
    Ok(Some((stem, Pyramid::for_params(&frame.image, params))))
}

/// The flows of one pair, waiting to be written.
struct Done {
    name: String,
    forward: FlowField,
    backward: Option<FlowField>,
}

impl Done {
    fn write(self, out_dir: &Path, viz: bool) -> Result<()> {
        let name = &self.name;
        self.forward
            .write_flo(&out_dir.join(format!("{name}.flo")))?;
        if viz {
            let png =
                crate::frames::encode_png(&crate::Frame::opaque(self.forward.to_color(None)))?;
            crate::run::atomic_write(&out_dir.join(format!("{name}.png")), &png)?;
        }
        if let Some(bwd) = &self.backward {
            bwd.write_flo(&out_dir.join(format!("{name}.back.flo")))?;
        }
        Ok(())
    }
}
