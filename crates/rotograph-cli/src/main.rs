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
        Cmd::Deflicker(a) => deflicker(&a, rep)?,
    }
    Ok(())
}

fn flow(a: &args::FlowCmd, rep: &Reporter) -> anyhow::Result<()> {
    use rotograph::flow;
    let params = a.params();
    params.validate()?;
    if let [first, second] = a.inputs.as_slice() {
        let img0 = rotograph::frames::read_frame(first)?;
        let img1 = rotograph::frames::read_frame(second)?;
        let (s0, s1) = (img0.size(), img1.size());
        if s0 != s1 {
            return Err(rotograph::Error::bad_input(
                second,
                format!(
                    "is {}x{} but {} is {}x{}; flow needs two images of one size",
                    s1.0,
                    s1.1,
                    first.display(),
                    s0.0,
                    s0.1
                ),
            )
            .into());
        }
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
