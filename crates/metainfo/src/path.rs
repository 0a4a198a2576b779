//! File names from torrents are untrusted input.
//!
//! Policy: **reject, never rewrite**. A torrent whose file or directory names contain an empty
//! component, `.`, `..`, a `/` or `\` inside a component, a NUL byte, or (checked on every
//! platform, so a torrent behaves the same everywhere) a Windows drive prefix such as `C:` is
//! refused at parse time with [`Error::UnsafePath`]. Rewriting names silently could make two
//! files collide or write content under a name its publisher did not choose; refusing is the
//! predictable choice. Names that are only a problem on Windows (reserved device names such as
//! `CON` or `nul.txt`, trailing dots or spaces) are rejected by [`safe_relative_path`] on Windows.
//!
//! Because every component passed these checks, [`safe_relative_path`] maps a file's components
//! to a relative [`PathBuf`] made only of normal components: joined to any root it stays under it.

use std::path::{Component, PathBuf};

use crate::error::Error;

/// Checks one path component (a file or directory name) taken from a torrent.
pub fn check_component(component: &str, whole_path: &[String]) -> Result<(), Error> {
    let reason = if component.is_empty() {
        Some("empty component")
    } else if component == "." || component == ".." {
        Some("`.` or `..` component")
    } else if component.contains('/') || component.contains('\\') {
        Some("path separator inside a component")
    } else if component.contains('\0') {
        Some("NUL byte")
    } else if has_drive_prefix(component) {
        Some("drive prefix")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::UnsafePath {
            path: whole_path.join("/"),
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks every component of a path; an empty path is refused too.
pub fn check_path(components: &[String]) -> Result<(), Error> {
    if components.is_empty() {
        return Err(Error::UnsafePath {
            path: String::new(),
            reason: "empty path",
        });
    }
    components
        .iter()
        .try_for_each(|c| check_component(c, components))
}

/// The relative path of a file under the download directory, guaranteed to stay under it.
///
/// `components` is a file's path as [`crate::FileEntry::path`] gives it (the torrent name first
/// for multi-file torrents). Fails with [`Error::UnsafePath`] if any component could escape or is
/// not portable (see the module docs); on Windows also for reserved device names.
pub fn safe_relative_path(components: &[String]) -> Result<PathBuf, Error> {
    check_path(components)?;
    if cfg!(windows) {
        if let Some(bad) = components.iter().find(|c| is_windows_reserved(c)) {
            return Err(Error::UnsafePath {
                path: components.join("/"),
                reason: if bad.ends_with(['.', ' ']) {
                    "trailing dot or space"
                } else {
                    "reserved Windows device name"
                },
            });
        }
    }
    let path: PathBuf = components.iter().collect();
    // Defence in depth: the checks above imply this, but the guarantee is the point.
    if path.components().all(|c| matches!(c, Component::Normal(_))) {
        Ok(path)
    } else {
        Err(Error::UnsafePath {
            path: components.join("/"),
            reason: "not a plain relative path",
        })
    }
}

/// `C:` and the like: a letter followed by a colon, which Windows reads as a drive.
fn has_drive_prefix(component: &str) -> bool {
    let bytes = component.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// Names Windows maps to devices whatever the extension, and names it silently trims.
fn is_windows_reserved(component: &str) -> bool {
    const DEVICES: [&str; 22] = [
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
        "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    let stem = component.split('.').next().unwrap_or("").trim_end();
    DEVICES.iter().any(|d| d.eq_ignore_ascii_case(stem))
        || component.ends_with(['.', ' '])
        || component.contains([':', '<', '>', '"', '|', '?', '*'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hostile_names_are_refused() {
        for bad in [
            &["..", "etc"][..],
            &["a", ".."],
            &["."],
            &[""],
            &["a", ""],
            &["/etc/passwd"],
            &["a/../../b"],
            &["a\\..\\b"],
            &["nul\0byte"],
            &["C:", "x"],
            &["c:evil"],
            &[],
        ] {
            let err = safe_relative_path(&path(bad)).unwrap_err();
            assert!(
                matches!(err, Error::UnsafePath { .. }),
                "{bad:?} gave {err}"
            );
        }
    }

    #[test]
    fn ordinary_names_stay_under_the_root() {
        let rel = safe_relative_path(&path(&["multi", "sub", "ünïcødé näme.txt"])).unwrap();
        let root = std::path::Path::new("/downloads");
        assert!(root.join(&rel).starts_with(root));
        assert_eq!(rel, PathBuf::from("multi/sub/ünïcødé näme.txt"));
    }

    #[test]
    fn windows_reserved_names_are_recognised() {
        assert!(is_windows_reserved("CON"));
        assert!(is_windows_reserved("nul.txt"));
        assert!(is_windows_reserved("trailing."));
        assert!(!is_windows_reserved("console.txt"));
    }
}
