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
                Ok(text) => println!("{text}"),
                Err(err) => eprintln!("error: cannot serialise the result: {err}"),
            }
        } else {
            let text = human();
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
    }

    /// Reports a failure on stderr (and as JSON on stdout with `--json`).
    pub fn error(&self, err: &anyhow::Error) {
        if self.json {
            let chain: Vec<String> = err.chain().map(ToString::to_string).collect();
            println!("{}", serde_json::json!({ "error": chain.join(": ") }));
        }
        eprintln!("error: {err:#}");
    }
}
