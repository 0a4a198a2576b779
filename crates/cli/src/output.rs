//! How commands talk to the user: human text or `--json` on stdout, errors and progress on stderr.

use serde::Serialize;

/// Where a command's results go, and in which form.
pub struct Output {
    json: bool,
    quiet: bool,
}

impl Output {
    /// An output in JSON form when `json`, without progress bars when `quiet`.
    pub fn new(json: bool, quiet: bool) -> Output {
        Output { json, quiet }
    }

    /// Whether results are printed as JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Whether progress bars should be shown (not in JSON or quiet mode).
    pub fn shows_progress(&self) -> bool {
        !self.json && !self.quiet
    }

    /// Prints a result: `value` as one JSON document with `--json`, else the `human` text.
    pub fn result<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            match serde_json::to_string_pretty(value) {
                Ok(text) => print_line(&text),
                Err(err) => eprintln!("error: cannot serialise the result: {err}"),
            }
        } else {
            let text = human();
            if !text.is_empty() {
                print_line(text.trim_end());
            }
        }
    }

    /// Reports a failure on stderr (and as JSON on stdout with `--json`).
    pub fn error(&self, err: &anyhow::Error) {
        let message = error_message(err);
        if self.json {
            print_line(&serde_json::json!({ "error": message }).to_string());
        }
        eprintln!("error: {message}");
    }
}

/// Prints one line on stdout. A reader that went away (`spore ... | head -1`, a script that
/// read the line it wanted) is not an error worth a panic: the line is dropped.
pub fn print_line(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
}

/// The error and its causes on one line, each said once: library errors often end their own
/// message with their cause ("path: Too many open files"), which the chain would repeat.
fn error_message(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if message.ends_with(&part) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&part);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::error_message;

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::other("Too many open files");
        let err = anyhow::Error::new(io).context("out/f185: Too many open files");
        assert_eq!(error_message(&err), "out/f185: Too many open files");
        let err = err.context("cannot start the download");
        assert_eq!(
            error_message(&err),
            "cannot start the download: out/f185: Too many open files"
        );
    }
}
