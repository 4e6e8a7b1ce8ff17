//! Locating and running the ffmpeg / ffprobe binaries, with stderr drained in a thread.

use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;

/// How many of ffmpeg's last stderr lines errors quote.
const TAIL_LINES: usize = 12;

/// One of the two ffmpeg binaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Ffmpeg,
    Ffprobe,
}

impl Tool {
    fn env_var(self) -> &'static str {
        match self {
            Tool::Ffmpeg => "ROTOGRAPH_FFMPEG",
            Tool::Ffprobe => "ROTOGRAPH_FFPROBE",
        }
    }

    fn default_name(self) -> &'static str {
        match self {
            Tool::Ffmpeg => "ffmpeg",
            Tool::Ffprobe => "ffprobe",
        }
    }

    /// The program to run: the environment override (read at every spawn) or the plain name.
    fn program(self) -> (OsString, Option<String>) {
        match std::env::var_os(self.env_var()).filter(|v| !v.is_empty()) {
            Some(p) => {
                let shown = format!("{} ({}={})", self.default_name(), self.env_var(), {
                    Path::new(&p).display()
                });
                (p, Some(shown))
            }
            None => (self.default_name().into(), None),
        }
    }

    /// A command for this tool with quiet logging.
    fn command(self) -> (Command, String) {
        let (program, shown) = self.program();
        let mut cmd = Command::new(program);
        // Its own process group: the terminal's Ctrl-C must reach rotograph alone, which then
        // finishes the frame in flight and closes ffmpeg cleanly.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.args(["-hide_banner", "-loglevel", "error"]);
        if self == Tool::Ffmpeg {
            cmd.args(["-nostdin", "-nostats"]);
        }
        (
            cmd,
            shown.unwrap_or_else(|| self.default_name().to_string()),
        )
    }
}

fn spawn_error(shown: String, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            Error::FfmpegMissing { program: shown }
        }
        _ => Error::io(shown, e),
    }
}

/// Runs a tool to completion, collecting stdout and stderr.
pub(crate) fn run_output(tool: Tool, args: &[OsString]) -> Result<Output> {
    let (mut cmd, shown) = tool.command();
    cmd.args(args).stdin(Stdio::null());
    cmd.output().map_err(|e| spawn_error(shown, e))
}

/// One line of ffmpeg's stderr without the noise: the `[h264 @ 0x55d1...] ` context prefix and
/// the `file:<path>: ` prefix (errors already name the file).
pub(crate) fn tidy_line(line: &str) -> &str {
    let mut l = line.trim();
    if l.starts_with('[') {
        if let Some(end) = l.find("] ") {
            if l[..end].contains(" @ 0x") {
                l = l[end + 2..].trim_start();
            }
        }
    }
    if let Some(rest) = l.strip_prefix("file:") {
        if let Some(i) = rest.find(": ") {
            l = &rest[i + 2..];
        }
    }
    l
}

/// Keeps the last [`TAIL_LINES`] distinct-from-previous lines.
fn push_line(tail: &mut VecDeque<String>, raw: &str) {
    let line = tidy_line(raw);
    if line.is_empty() || tail.back().is_some_and(|last| last == line) {
        return;
    }
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line.chars().take(500).collect());
}

/// The last non-empty lines of ffmpeg's stderr (tidied, repeats dropped), joined by newlines.
pub(crate) fn tail_of(text: &str) -> String {
    let mut tail = VecDeque::new();
    for line in text.lines() {
        push_line(&mut tail, line);
    }
    Vec::from(tail).join("\n")
}

/// A running ffmpeg whose stderr is read in a thread (keeping the last lines) so the process
/// never blocks on a full pipe. Dropping it kills and reaps the process.
pub(crate) struct Process {
    child: Option<Child>,
    stderr: Option<JoinHandle<String>>,
}

impl Process {
    /// Starts ffmpeg with `args`, piping stdin and/or stdout as asked.
    pub(crate) fn spawn(args: &[OsString], pipe_stdin: bool, pipe_stdout: bool) -> Result<Self> {
        let (mut cmd, shown) = Tool::Ffmpeg.command();
        cmd.args(args)
            .stdin(if pipe_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(if pipe_stdout {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| spawn_error(shown, e))?;
        let stderr = child.stderr.take().map(|err| {
            std::thread::spawn(move || {
                let mut tail: VecDeque<String> = VecDeque::new();
                let mut reader = BufReader::new(err);
                let mut line = Vec::new();
                // Read raw bytes: ffmpeg may print file names that are not UTF-8.
                while let Ok(n) = reader.read_until(b'\n', &mut line) {
                    if n == 0 {
                        break;
                    }
                    push_line(&mut tail, &String::from_utf8_lossy(&line));
                    line.clear();
                }
                // Drain anything left so the writer never blocks.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
                Vec::from(tail).join("\n")
            })
        });
        Ok(Process {
            child: Some(child),
            stderr,
        })
    }

    /// Takes the process's stdin pipe.
    pub(crate) fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.as_mut().and_then(|c| c.stdin.take())
    }

    /// Takes the process's stdout pipe.
    pub(crate) fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.as_mut().and_then(|c| c.stdout.take())
    }

    /// Waits for the process to exit; returns its status and the tail of its stderr.
    pub(crate) fn wait(mut self) -> Result<(ExitStatus, String)> {
        let mut child = self.child.take().expect("process is waited once");
        drop(child.stdin.take());
        let status = child.wait().map_err(|e| Error::io("ffmpeg", e))?;
        let tail = self.join_stderr();
        Ok((status, tail))
    }

    /// Kills the process (if still running) and reaps it; returns the tail of its stderr.
    pub(crate) fn kill(mut self) -> String {
        self.kill_and_reap();
        self.join_stderr()
    }

    fn kill_and_reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            drop(child.stdout.take());
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn join_stderr(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill_and_reap();
        let _ = self.join_stderr();
    }
}

/// A local path as an ffmpeg argument: `file:` in front so that names with a colon are not taken
/// for protocols and names starting with `-` are not taken for options.
pub(crate) fn file_arg(path: &Path) -> OsString {
    let mut s = OsString::from("file:");
    s.push(path.as_os_str());
    s
}

/// Reads until `buf` is full or the stream ends; returns the number of bytes read.
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Describes a failed exit for an error message.
pub(crate) fn failure_text(status: ExitStatus, tail: &str) -> String {
    if tail.is_empty() {
        format!("ffmpeg exited with {status} and printed nothing")
    } else {
        format!("ffmpeg exited with {status}; its last lines:\n{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines() {
        let text: String = (0..30).map(|i| format!("line {i}\n\n")).collect();
        let t = tail_of(&text);
        assert_eq!(t.lines().count(), TAIL_LINES);
        assert!(t.ends_with("line 29"));
    }

    #[test]
    fn lines_are_tidied() {
        assert_eq!(
            tidy_line("[mov,mp4,m4a @ 0x55bf8e3de180] moov atom not found"),
            "moov atom not found"
        );
        assert_eq!(
            tidy_line("file:/tmp/a b.mp4: Invalid data found"),
            "Invalid data found"
        );
        assert_eq!(tidy_line("[out] plain"), "[out] plain");
        assert_eq!(tail_of("a\na\nb\n"), "a\nb");
    }

    #[test]
    fn read_full_stops_at_end() {
        let mut data: &[u8] = b"abcde";
        let mut buf = [0u8; 3];
        assert_eq!(read_full(&mut data, &mut buf).unwrap(), 3);
        assert_eq!(read_full(&mut data, &mut buf).unwrap(), 2);
        assert_eq!(read_full(&mut data, &mut buf).unwrap(), 0);
    }
}
