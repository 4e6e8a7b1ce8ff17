//! The library's error type. Every variant names where the problem is (file, frame, setting,
//! expression column) and its message says what to do about it.

use std::path::PathBuf;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for a failure that is not the user's input (I/O, ffmpeg crash, backend failure).
pub const EXIT_FAILURE: i32 = 1;
/// Exit code for bad usage or bad input (a corrupt video, a non-image in a frame folder...).
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit code after an interruption (Ctrl-C), once the frame in flight is finished.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Errors of the rotograph library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The ffmpeg (or ffprobe) binary could not be started.
    #[error(
        "{program} was not found: install it (Debian/Ubuntu: `sudo apt-get install ffmpeg`, \
         macOS: `brew install ffmpeg`) or point ROTOGRAPH_FFMPEG / ROTOGRAPH_FFPROBE at the binaries"
    )]
    FfmpegMissing {
        /// `ffmpeg` or `ffprobe`.
        program: String,
    },

    /// A user-supplied file is unusable: corrupt video, not an image, unreadable image,
    /// wrong size... The message says what is wrong and what to do.
    #[error("{}: {message}", path.display())]
    BadInput {
        /// The offending file or folder.
        path: PathBuf,
        /// What is wrong with it and what to do.
        message: String,
    },

    /// A setting (flag or settings-file entry) has an invalid value.
    #[error("invalid value for `{name}`: {message}")]
    InvalidSetting {
        /// The setting's name as the user spells it (e.g. `exposure`, `size`).
        name: String,
        /// What is wrong and what would be accepted.
        message: String,
    },

    /// An expression or list (exposure sheet, schedule) could not be parsed.
    #[error("cannot parse {what} at column {column}: {message}\n  {text}\n  {caret:>width$}", caret = "^", width = column)]
    Parse {
        /// What was being parsed ("exposure sheet", "schedule").
        what: String,
        /// The text that failed.
        text: String,
        /// 1-based column of the problem.
        column: usize,
        /// What was expected.
        message: String,
    },

    /// An expression (schedule) parsed but failed when evaluated: division by zero, a math
    /// domain error, a wrong type...
    #[error("cannot evaluate {what} at column {column}: {message}\n  {text}\n  {caret:>width$}", caret = "^", width = column)]
    Evaluate {
        /// What was evaluated ("schedule `denoising`").
        what: String,
        /// The expression's text.
        text: String,
        /// 1-based column of the failing operation.
        column: usize,
        /// What went wrong, with the variable values.
        message: String,
    },

    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder the operation was on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// ffmpeg ran but failed on a file that looked valid.
    #[error("ffmpeg failed on {}: {message}", path.display())]
    Ffmpeg {
        /// Input or output file ffmpeg worked on.
        path: PathBuf,
        /// ffmpeg's own last lines of output.
        message: String,
    },

    /// A stylizer backend failed on a frame.
    #[error("backend `{backend}` failed on frame {frame}: {message}")]
    Backend {
        /// Backend name.
        backend: String,
        /// Frame name (file name of the frame).
        frame: String,
        /// The backend's message.
        message: String,
    },

    /// The run was stopped on request after finishing the frames in flight.
    #[error("interrupted: finished frames are kept; run the same command again to resume")]
    Interrupted,
}

impl Error {
    /// The process exit code this error maps to (see the README's table).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::BadInput { .. }
            | Error::InvalidSetting { .. }
            | Error::Parse { .. }
            | Error::Evaluate { .. } => EXIT_BAD_INPUT,
            Error::Interrupted => EXIT_INTERRUPTED,
            Error::FfmpegMissing { .. }
            | Error::Io { .. }
            | Error::Ffmpeg { .. }
            | Error::Backend { .. } => EXIT_FAILURE,
        }
    }

    /// Shorthand for [`Error::BadInput`].
    pub fn bad_input(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::BadInput {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::InvalidSetting`].
    pub fn setting(name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidSetting {
            name: name.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_points_at_column() {
        let e = Error::Parse {
            what: "exposure sheet".into(),
            text: "1-8, x4".into(),
            column: 6,
            message: "expected a frame number".into(),
        };
        let s = e.to_string();
        assert!(s.contains("column 6"), "{s}");
        let last = s.lines().last().unwrap();
        assert_eq!(last.find('^'), Some(2 + 5), "{s}");
        assert_eq!(e.exit_code(), EXIT_BAD_INPUT);
    }
}
