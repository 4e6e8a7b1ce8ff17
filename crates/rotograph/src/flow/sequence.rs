//! Flow over a frame sequence: one pyramid per frame, reused by both pairs it belongs to.

use super::{compute_flow, FlowParams, Pyramid};
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
    let mut prev: Option<(String, Pyramid)> = None;
    let mut frames = 0;
    let mut pairs = 0;
    while let Some((info, frame)) = source.next_frame()? {
        frames += 1;
        let pyr = Pyramid::for_params(&frame.image, &opts.params);
        let stem = Path::new(&info.name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{:05}", info.index));
        if let Some((pname, ppyr)) = prev.take() {
            let fwd = compute_flow(&ppyr, &pyr, &opts.params)?;
            fwd.write_flo(&out_dir.join(format!("{pname}.flo")))?;
            if opts.viz {
                let png = crate::frames::encode_png(&crate::Frame::opaque(fwd.to_color(None)))?;
                crate::run::atomic_write(&out_dir.join(format!("{pname}.png")), &png)?;
            }
            if opts.backward {
                let bwd = compute_flow(&pyr, &ppyr, &opts.params)?;
                bwd.write_flo(&out_dir.join(format!("{pname}.back.flo")))?;
            }
            progress.event(Event::Frame {
                stage: "flow".into(),
                index: pairs as u64,
                name: format!("{pname}.flo"),
                skipped: false,
            });
            pairs += 1;
            if progress.should_stop() {
                return Err(Error::Interrupted);
            }
        }
        prev = Some((stem, pyr));
    }
    progress.event(Event::Finish {
        stage: "flow".into(),
    });
    if frames < 2 {
        return Err(Error::setting(
            "input",
            format!("flow needs at least two frames but the input has {frames}"),
        ));
    }
    Ok(SequenceReport { frames, pairs })
}
