//! The `rotograph` command-line tool: a thin layer over the `rotograph` library that parses
//! arguments, shows progress, handles Ctrl-C and maps errors to exit codes.

mod args;
mod report;

use anyhow::Context;
use args::{Cli, Cmd};
use clap::Parser;
use report::{Mode, Reporter};
use rotograph::error::{EXIT_FAILURE, EXIT_INTERRUPTED};
use rotograph::progress::StopFlag;
use std::sync::atomic::{AtomicUsize, Ordering};

fn main() {
    let cli = Cli::parse();
    let stop = StopFlag::new();
    install_ctrl_c(stop.clone());
    let reporter = Reporter::new(Mode::choose(cli.quiet, cli.json), stop);
    let code = match run(cli.cmd, &reporter) {
        Ok(()) => 0,
        Err(err) => {
            let code = err
                .downcast_ref::<rotograph::Error>()
                .map(|e| e.exit_code())
                .or_else(|| err.downcast_ref::<FramesFlagged>().map(|_| EXIT_FLAGGED))
                .unwrap_or(EXIT_FAILURE);
            if reporter.mode() == Mode::Json {
                reporter.json(serde_json::json!({
                    "event": "error", "message": format!("{err:#}"), "exit_code": code
                }));
            }
            eprintln!("error: {err:#}");
            code
        }
    };
    drop(reporter);
    std::process::exit(code);
}

/// First Ctrl-C: finish the frames in flight, then exit 130. Second: delete files being written
/// and exit 130 at once.
fn install_ctrl_c(stop: StopFlag) {
    static PRESSES: AtomicUsize = AtomicUsize::new(0);
    let res = ctrlc::set_handler(move || {
        if PRESSES.fetch_add(1, Ordering::SeqCst) == 0 {
            stop.stop();
            eprintln!(
                "\ninterrupt: finishing the frames in flight (press Ctrl-C again to quit now)"
            );
        } else {
            rotograph::run::remove_pending_temps();
            eprintln!("\ninterrupted");
            std::process::exit(EXIT_INTERRUPTED);
        }
    });
    if let Err(e) = res {
        eprintln!("warning: cannot install the Ctrl-C handler: {e}");
    }
}

/// The stylizer factory: the built-in backends, plus `sd` with the `sd` feature.
fn make(
    settings: &rotograph::pipeline::Settings,
) -> rotograph::Result<Box<dyn rotograph::stylize::Stylizer>> {
    #[cfg(feature = "sd")]
    return rotograph_sd::make_stylizer(settings);
    #[cfg(not(feature = "sd"))]
    return rotograph::pipeline::make_stylizer(settings);
}

fn run(cmd: Cmd, rep: &Reporter) -> anyhow::Result<()> {
    match cmd {
        Cmd::Extract(a) => {
            let mut opts = rotograph::video::ExtractOptions::default();
            a.extract.apply(&mut opts);
            let n = rotograph::video::extract(&a.video, &a.output, &opts, &a.pattern, rep)?;
            rep.say(&format!("extracted {n} frames into {}", a.output.display()));
            rep.json(serde_json::json!({"event": "done", "frames": n}));
        }
        Cmd::Encode(a) => {
            let opts = a.options()?;
            rotograph::video::encode_folder(&a.frames, &a.output, &opts, rep)?;
            rep.say(&format!("wrote {}", a.output.display()));
            rep.json(serde_json::json!({"event": "done", "output": a.output}));
        }
        Cmd::Stylize(a) => {
            let settings = a.common.settings(a.input.as_deref(), Some(&a.output))?;
            let input = settings
                .input
                .clone()
                .context("no input: give a video or frame folder (or --config with `input`)")?;
            let output = a.output.clone();
            let r = rotograph::pipeline::stylize_with(&input, &output, &settings, &make, rep)?;
            rep.say(&format!(
                "stylized {} frames into {} ({} rendered, {} already done)",
                r.frames,
                output.display(),
                r.rendered,
                r.skipped
            ));
            rep.json(serde_json::json!({"event": "done", "report": r}));
        }
        Cmd::Roto(a) => {
            let mut settings = a.common.settings(a.input.as_deref(), Some(&a.output))?;
            a.encode.apply(&mut settings.encode);
            let input = settings
                .input
                .clone()
                .context("no input: give a video (or --config with `input`)")?;
            let work_dir = a
                .work_dir
                .clone()
                .unwrap_or_else(|| rotograph::pipeline::default_work_dir(&a.output));
            let r = rotograph::pipeline::roto_with(
                &input, &a.output, &work_dir, &settings, &make, rep,
            )?;
            let kept = if r.kept_frames {
                format!("frames kept in {}", r.work_dir.display())
            } else {
                "frames not kept".to_string()
            };
            rep.say(&format!(
                "wrote {} ({} frames at {} fps; {} rendered, {} already done; {kept})",
                a.output.display(),
                r.stylize.frames,
                r.fps,
                r.stylize.rendered,
                r.stylize.skipped,
            ));
            rep.json(serde_json::json!({"event": "done", "report": r}));
        }
        Cmd::Loopback(a) => {
            let settings = a.settings()?;
            let input = settings.input.clone().context(
                "no input: give a frame folder, video or image (or --config with `input`)",
            )?;
            // Any backend, `sd` included; its model identity keys the stored loops.
            let stylizer = make(&settings)?;
            let mut settings = settings;
            settings.model_identity = stylizer.identity();
            let r = rotograph::loopback::loopback_with(
                &input,
                &a.output,
                &settings,
                stylizer.as_ref(),
                rep,
            )?;
            rep.say(&format!(
                "looped {} frames {} times into {} ({} renders, {} already done{})",
                r.frames,
                r.loops,
                a.output.display(),
                r.rendered,
                r.skipped,
                if r.discarded_stale {
                    "; the settings changed, earlier frames discarded"
                } else {
                    ""
                }
            ));
            rep.json(serde_json::json!({"event": "done", "report": r}));
        }
        Cmd::Flow(a) => flow(&a, rep)?,
        Cmd::Check(a) => check(&a, rep)?,
        Cmd::Keys(a) => keys(&a, rep)?,
        Cmd::Propagate(a) => propagate(&a, rep)?,
        Cmd::Interpolate(a) => interpolate(&a, rep)?,
        Cmd::Deflicker(a) => deflicker(&a, rep)?,
    }
    Ok(())
}

fn flow(a: &args::FlowCmd, rep: &Reporter) -> anyhow::Result<()> {
    use rotograph::flow;
    let params = a.params();
    params.validate()?;
    if let [first, second] = a.inputs.as_slice() {
        let (img0, img1) = read_pair(first, second, "flow needs")?;
        let (p0, p1) = flow::Pyramid::pair(&img0.image, &img1.image, &params);
        let fwd = flow::compute_flow(&p0, &p1, &params)?;
        fwd.write_flo(&a.output)?;
        if a.backward {
            let bwd = flow::compute_flow(&p1, &p0, &params)?;
            bwd.write_flo(&a.output.with_extension("back.flo"))?;
        }
        if let Some(viz) = &a.viz {
            let Some(viz) = viz else {
                return Err(rotograph::Error::setting(
                    "viz",
                    "give the PNG file to write, e.g. --viz flow.png",
                )
                .into());
            };
            let png = rotograph::frames::encode_png(&rotograph::Frame::opaque(fwd.to_color(None)))?;
            rotograph::run::atomic_write(viz, &png)?;
        }
        rep.say(&format!(
            "wrote {} (largest motion {:.1} px)",
            a.output.display(),
            fwd.max_magnitude()
        ));
        rep.json(serde_json::json!({"event": "done", "output": a.output}));
        return Ok(());
    }
    let input = &a.inputs[0];
    let ext = input
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg" | "webp")) && input.is_file() {
        return Err(rotograph::Error::bad_input(
            input,
            "is one image; give two (rotograph flow A B -o flow.flo), or a folder or video",
        )
        .into());
    }
    if let Some(Some(_)) = &a.viz {
        return Err(rotograph::Error::setting(
            "viz",
            "for a sequence --viz is a flag (it writes NAME.png beside each NAME.flo); \
             give no file name",
        )
        .into());
    }
    let folder = rotograph::frames::FolderOptions {
        max_frames: a.extract.max_frames,
        size: a.extract.size,
        ..Default::default()
    };
    let mut extract = rotograph::video::ExtractOptions::default();
    a.extract.apply(&mut extract);
    let mut source = rotograph::frames::open_source(input, &folder, &extract)?;
    let opts = flow::SequenceOptions {
        params,
        backward: a.backward,
        viz: a.viz.is_some(),
    };
    let r = flow::flow_sequence(source.as_mut(), &a.output, &opts, rep)
        .with_context(|| format!("computing flow over {}", input.display()))?;
    rep.say(&format!(
        "wrote {} flow files for {} frames into {}",
        r.pairs,
        r.frames,
        a.output.display()
    ));
    rep.json(serde_json::json!({"event": "done", "report": r}));
    Ok(())
}

/// Exit code of `check --fail-on-flagged` when frames are flagged.
const EXIT_FLAGGED: i32 = 3;

/// `check --fail-on-flagged` found flagged frames (exit code [`EXIT_FLAGGED`]).
#[derive(Debug)]
struct FramesFlagged(Vec<String>);

impl std::fmt::Display for FramesFlagged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} frame(s) flagged: {}", self.0.len(), self.0.join(" "))
    }
}

impl std::error::Error for FramesFlagged {}

fn check(a: &args::CheckCmd, rep: &Reporter) -> anyhow::Result<()> {
    use rotograph::frames::{open_source, FolderOptions};
    use rotograph::temporal::check;
    use rotograph::video::ExtractOptions;
    let opts = a.options();
    opts.validate()?;
    // The stylized sequence as it is: every frame of a video, no resizing.
    let styl_video = ExtractOptions {
        fps: None,
        max_frames: a.extract.max_frames,
        ..ExtractOptions::default()
    };
    let styl_folder = FolderOptions {
        max_frames: a.extract.max_frames,
        ..Default::default()
    };
    let mut stylized = open_source(&a.stylized, &styl_folder, &styl_video)?;
    // The source as the stylize run read it; at the stylized size unless --size says otherwise.
    let mut extract = ExtractOptions::default();
    a.extract.apply(&mut extract);
    let folder = |extract: &ExtractOptions| FolderOptions {
        max_frames: extract.max_frames,
        size: extract.size,
        fit: extract.fit,
        multiple: extract.multiple,
        ..Default::default()
    };
    let mut source = open_source(&a.source, &folder(&extract), &extract)?;
    let want = stylized.frame_size();
    if a.extract.size.is_none() && source.frame_size() != want {
        let (w, h) = source.frame_size();
        rep.say(&format!(
            "reading the source ({w}x{h}) at the stylized size {}x{} (give --size to choose)",
            want.0, want.1
        ));
        extract.size = Some(want);
        extract.multiple = Some(1);
        source = open_source(&a.source, &folder(&extract), &extract)?;
    }
    let r = check::check(
        stylized.as_mut(),
        &a.stylized,
        source.as_mut(),
        &a.source,
        &opts,
        rep,
    )
    .with_context(|| {
        format!(
            "checking {} against {}",
            a.stylized.display(),
            a.source.display()
        )
    })?;
    if let Some(path) = &a.report {
        let json = serde_json::to_vec_pretty(&r).context("serializing the report")?;
        rotograph::run::atomic_write(path, &json)?;
    }
    if let Some(path) = &a.plot {
        let img = check::plot(&r, a.plot_size.0, a.plot_size.1)?;
        rotograph::frames::write_png(path, &rotograph::Frame::opaque(img))?;
    }
    if matches!(rep.mode(), report::Mode::Bars | report::Mode::Lines) {
        print!("{}", r.to_text());
    }
    rep.json(serde_json::json!({"event": "done", "report": r}));
    if a.fail_on_flagged && !r.flagged.is_empty() {
        return Err(FramesFlagged(r.flagged).into());
    }
    Ok(())
}

fn keys(a: &args::KeysCmd, rep: &Reporter) -> anyhow::Result<()> {
    let opts = a.options();
    opts.validate()?;
    let mut extract = rotograph::video::ExtractOptions::default();
    a.extract.apply(&mut extract);
    let folder = rotograph::frames::FolderOptions {
        max_frames: extract.max_frames,
        size: extract.size,
        fit: extract.fit,
        multiple: extract.multiple,
        ..Default::default()
    };
    let mut source = rotograph::frames::open_source(&a.input, &folder, &extract)?;
    let r = rotograph::temporal::keys::suggest_keys(source.as_mut(), &opts, rep)
        .with_context(|| format!("suggesting keys for {}", a.input.display()))?;
    let text = r.to_text();
    if let Some(path) = &a.output {
        rotograph::run::atomic_write(path, text.as_bytes())?;
    }
    if let Some(path) = &a.report {
        let json = serde_json::to_vec_pretty(&r).context("serializing the report")?;
        rotograph::run::atomic_write(path, &json)?;
    }
    if matches!(rep.mode(), report::Mode::Bars | report::Mode::Lines) {
        print!("{text}");
    }
    rep.say(&format!(
        "{} keys in {} frames",
        r.keys.len(),
        r.frame_count
    ));
    rep.json(serde_json::json!({"event": "done", "report": r}));
    Ok(())
}

fn interpolate(a: &args::InterpolateCmd, rep: &Reporter) -> anyhow::Result<()> {
    use rotograph::temporal::interpolate as interp;
    let params = rotograph::flow::FlowParams::preset(a.preset.preset());
    if let [first, second] = a.inputs.as_slice() {
        let Some(count) = a.count else {
            return Err(rotograph::Error::setting(
                "count",
                "two images give in-betweens: say how many, e.g. --count 3 \
                 (--factor and --fps are for a folder or video)",
            )
            .into());
        };
        let (img0, img1) = read_pair(first, second, "in-betweens need")?;
        let frames = interp::inbetweens(&img0.image, &img1.image, count, &params)?;
        std::fs::create_dir_all(&a.output).map_err(|e| rotograph::Error::io(&a.output, e))?;
        let has_alpha = img0.has_alpha || img1.has_alpha;
        for (i, image) in frames.into_iter().enumerate() {
            let name =
                rotograph::frames::format_pattern(rotograph::frames::DEFAULT_PATTERN, i + 1)?;
            rotograph::frames::write_png(
                &a.output.join(name),
                &rotograph::Frame { image, has_alpha },
            )?;
        }
        rep.say(&format!(
            "wrote {count} in-betweens into {}",
            a.output.display()
        ));
        rep.json(serde_json::json!({"event": "done", "report": {"frames_out": count}}));
        return Ok(());
    }
    let input = &a.inputs[0];
    let timing = match (a.factor, a.fps, a.count) {
        (_, _, Some(_)) => {
            return Err(rotograph::Error::setting(
                "count",
                "--count is for two keyframe images (rotograph interpolate A.png B.png -o OUT \
                 --count N); for a folder or video use --factor or --fps",
            )
            .into())
        }
        (Some(n), _, _) => interp::Timing::Factor(n),
        (None, Some(f), _) => interp::Timing::Fps(f),
        (None, None, None) => {
            return Err(rotograph::Error::setting(
                "factor",
                "say how many frames to make: --factor N (N times the frame rate) or --fps F",
            )
            .into())
        }
    };
    let ext = input
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg" | "webp")) && input.is_file() {
        return Err(rotograph::Error::bad_input(
            input,
            "is one image; give two (rotograph interpolate A B -o OUT --count N), or a folder \
             or video",
        )
        .into());
    }
    let folder = rotograph::frames::FolderOptions {
        max_frames: a.max_frames,
        size: a.size,
        ..Default::default()
    };
    let extract = rotograph::video::ExtractOptions {
        fps: None,
        max_frames: a.max_frames,
        size: a.size,
        ..Default::default()
    };
    let opts = interp::InterpolateOptions {
        params,
        timing,
        source_fps: a.input_fps,
    };
    opts.validate()?;
    let mut source = rotograph::frames::open_source(input, &folder, &extract)?;
    let r = interp::interpolate_sequence(source.as_mut(), &a.output, &opts, rep)
        .with_context(|| format!("interpolating {}", input.display()))?;
    rep.say(&format!(
        "wrote {} frames ({} in-betweens) from {} into {}{}",
        r.frames_out,
        r.interpolated,
        r.frames_in,
        a.output.display(),
        r.fps.map(|f| format!(" at {f:.3} fps")).unwrap_or_default()
    ));
    rep.json(serde_json::json!({"event": "done", "report": r}));
    Ok(())
}

fn deflicker(a: &args::DeflickerCmd, rep: &Reporter) -> anyhow::Result<()> {
    use rotograph::frames::{image_header, list_frames, open_source, FolderOptions};
    use rotograph::temporal::deflicker::{deflicker_sequence, SequenceOptions};
    let opts = SequenceOptions {
        params: a.params(),
        mask_dir: a.mask_dir.clone(),
    };
    opts.params.validate()?;
    if let Some(dir) = a.mask_dir.as_ref().filter(|d| !d.is_dir()) {
        return Err(rotograph::Error::bad_input(
            dir,
            "the mask folder does not exist; give a folder of masks named like the frames",
        )
        .into());
    }
    let mut extract = rotograph::video::ExtractOptions::default();
    a.extract.apply(&mut extract);
    let folder = FolderOptions {
        max_frames: a.extract.max_frames,
        ..Default::default()
    };
    let mut stylized = open_source(&a.stylized, &folder, &extract)?;
    // The source is taken at the stylized frames' size unless --size says otherwise.
    let size = match a.extract.size {
        Some(s) => Some(s),
        None if a.stylized.is_dir() => match list_frames(&a.stylized)?.first() {
            Some(first) => Some(image_header(first)?.0),
            None => None,
        },
        None => None,
    };
    if a.extract.size.is_none() && size.is_some() {
        extract.size = size;
        extract.multiple = Some(1);
    }
    let src_folder = FolderOptions {
        size,
        allow_mixed_sizes: size.is_some(),
        ..folder
    };
    let mut source = open_source(&a.source, &src_folder, &extract)?;
    let r = deflicker_sequence(stylized.as_mut(), source.as_mut(), &a.output, &opts, rep)
        .with_context(|| format!("deflickering {}", a.stylized.display()))?;
    rep.say(&format!(
        "deflickered {} frames into {} (reliable source motion on {:.0}% of pixels)",
        r.frames,
        a.output.display(),
        100.0 * r.mean_coverage
    ));
    rep.json(serde_json::json!({"event": "done", "report": r}));
    Ok(())
}

fn propagate(a: &args::PropagateCmd, rep: &Reporter) -> anyhow::Result<()> {
    use rotograph::temporal::propagate as prop;
    if let (Some(frames), Some(keys)) = (&a.frames, &a.keys) {
        let opts = prop::VideoOptions {
            params: a.params(),
            color_weight: a.color_weight,
            edge_weight: a.edge_weight,
            position_weight: a.position_weight,
            temporal_weight: a.temporal_weight,
            mask_dir: a.mask_dir.clone(),
            blend: a.blend.into(),
            ..Default::default()
        };
        let r = prop::propagate_video(frames, keys, &a.output, &opts, rep)?;
        rep.say(&format!(
            "wrote {} frames from {} keys into {} ({} already done by an earlier run{})",
            r.frames - r.skipped,
            r.keys,
            a.output.display(),
            r.skipped,
            if r.discarded_stale {
                "; an earlier run's frames with other settings were deleted"
            } else {
                ""
            }
        ));
        rep.json(serde_json::json!({"event": "done", "report": r}));
        return Ok(());
    }
    let style_path = a
        .style
        .as_ref()
        .expect("clap requires --style without --frames");
    let pairs: Vec<(&std::path::PathBuf, &std::path::PathBuf)> =
        a.guide.chunks_exact(2).map(|c| (&c[0], &c[1])).collect();
    if a.weight.len() > pairs.len() {
        return Err(rotograph::Error::setting(
            "weight",
            format!(
                "{} --weight values for {} --guide pairs; give at most one weight per guide",
                a.weight.len(),
                pairs.len()
            ),
        )
        .into());
    }
    let style = rotograph::frames::read_frame(style_path)?;
    let mut images = Vec::with_capacity(pairs.len());
    for (src, tgt) in &pairs {
        images.push((
            rotograph::frames::read_frame(src)?,
            rotograph::frames::read_frame(tgt)?,
        ));
    }
    let guides: Vec<prop::Guide> = images
        .iter()
        .enumerate()
        .map(|(i, (s, t))| prop::Guide {
            source: &s.image,
            target: &t.image,
            weight: a.weight.get(i).copied().unwrap_or(1.0),
        })
        .collect();
    let names = || {
        let list: Vec<String> = pairs
            .iter()
            .enumerate()
            .map(|(i, (s, t))| format!("guide {} = {} -> {}", i + 1, s.display(), t.display()))
            .collect();
        format!("style {}; {}", style_path.display(), list.join(", "))
    };
    let out = prop::propagate(&style.image, &guides, &a.params()).with_context(names)?;
    rotograph::frames::write_png(&a.output, &rotograph::Frame::opaque(out))?;
    rep.say(&format!("wrote {}", a.output.display()));
    rep.json(serde_json::json!({"event": "done", "output": a.output}));
    Ok(())
}

/// Two images of one size (`what` says who needs them, for the error naming the second).
fn read_pair(
    first: &std::path::Path,
    second: &std::path::Path,
    what: &str,
) -> rotograph::Result<(rotograph::Frame, rotograph::Frame)> {
    let img0 = rotograph::frames::read_frame(first)?;
    let img1 = rotograph::frames::read_frame(second)?;
    let (s0, s1) = (img0.size(), img1.size());
    if s0 != s1 {
        return Err(rotograph::Error::bad_input(
            second,
            format!(
                "is {}x{} but {} is {}x{}; {what} two images of one size",
                s1.0,
                s1.1,
                first.display(),
                s0.0,
                s0.1
            ),
        ));
    }
    Ok((img0, img1))
}
