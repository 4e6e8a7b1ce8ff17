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
            rep.say(&format!(
                "wrote {} ({} frames at {} fps; {} rendered, {} already done; frames kept in {})",
                a.output.display(),
                r.stylize.frames,
                r.fps,
                r.stylize.rendered,
                r.stylize.skipped,
                r.work_dir.display()
            ));
            rep.json(serde_json::json!({"event": "done", "report": r}));
        }
    }
    Ok(())
}
