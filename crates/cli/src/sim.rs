//! `spore sim`: run a simulator scenario (the real DHT cores in virtual time) and report on it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use sim::churn::Lifetime;
use sim::runner::Progress;
use sim::scenario::{Adversaries, Overrides, Scenario};

use crate::output::Output;

/// Arguments of `spore sim`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The scenario file (TOML; see scenarios/ and docs/SIMULATOR.md); without one, 1,000
    /// stable nodes, a 20-minute warm-up, then 10 minutes of 2 lookups a second.
    pub scenario: Option<PathBuf>,
    /// Run this one network size instead of the scenario's sizes.
    #[arg(long)]
    pub nodes: Option<u32>,
    /// Seed for every random choice (same seed and scenario, same report).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Simulated time to measure after the warm-up: seconds, or with a unit (90s, 30m, 1h).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Simulated time for the network to form before measuring (same units as --duration).
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Session lengths: never, exp:MEAN or weibull:SHAPE:SCALE (e.g. exp:10m, weibull:0.6:20m).
    #[arg(long, value_name = "LIFETIME")]
    pub churn: Option<Lifetime>,
    /// Mean packet loss rate, 0 to 1 (each node's own rate is drawn in [0, 2 x loss]).
    #[arg(long)]
    pub loss: Option<f32>,
    /// How often the application puts its BEP 44 items again (a duration), or never.
    #[arg(long, value_parser = parse_republish, value_name = "DURATION|never")]
    pub republish: Option<Republish>,
    /// Misbehaving nodes, e.g. silent=0.1,drop_queries=0.05,wrong_nodes=0.05,sybils=32 (or none).
    #[arg(long, value_parser = Adversaries::parse_flag, value_name = "LIST")]
    pub adversaries: Option<Adversaries>,
    /// Write report.json, perf.json and SVG plots into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Worker threads (0: one per core); the report is the same for any number.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// How the run went on this machine (not part of the deterministic report).
#[derive(Serialize)]
struct Performance {
    wall_secs: f64,
    events: u64,
    events_per_sec: f64,
    peak_memory_bytes: Option<u64>,
    peak_memory_bytes_per_node: Option<u64>,
}

/// Runs the scenario.
pub fn run(args: Args, out: &Output) -> anyhow::Result<()> {
    let scenario = match &args.scenario {
        Some(path) => Scenario::load(path)?,
        None => Scenario::default(),
    };
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs().max(1));
    let scenario = scenario
        .with_overrides(&Overrides {
            nodes: args.nodes,
            seed: args.seed,
            duration_secs: secs(args.duration),
            warmup_secs: args.warmup.map(|d| d.as_secs()),
            session: args.churn,
            loss: args.loss,
            adversaries: args.adversaries.clone(),
            republish_secs: args.republish.map(|republish| secs(republish.0)),
        })
        .context("fix the scenario file or the flags")?;
    let bar = if out.shows_progress() {
        ProgressBar::new(1)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} run {msg} simulated {pos}/{len} s [{bar:40}] ({elapsed}, eta {eta})",
        )?
        .progress_chars("=> "),
    );
    // Without a terminal (a benchmark's log, CI) the bar is invisible: print a line per 5%.
    let log_lines = out.shows_progress() && !std::io::stderr().is_terminal();
    let (mut current_run, mut logged_step) = (0, None);
    let (report, wall) = timed(|| {
        sim::runner::run(&scenario, args.threads, &mut |progress: Progress| {
            if progress.run != current_run {
                current_run = progress.run;
                logged_step = None;
                bar.reset();
            }
            let step = progress.simulated.as_secs() * 20 / progress.total.as_secs().max(1);
            if log_lines && logged_step != Some(step) {
                logged_step = Some(step);
                eprintln!(
                    "run {}/{} ({} nodes): simulated {}/{} s",
                    progress.run + 1,
                    progress.runs,
                    progress.nodes,
                    progress.simulated.as_secs(),
                    progress.total.as_secs()
                );
            }
            bar.set_length(progress.total.as_secs());
            bar.set_position(progress.simulated.as_secs());
            bar.set_message(format!(
                "{}/{}, {} nodes,",
                progress.run + 1,
                progress.runs,
                progress.nodes
            ));
        })
    });
    let report = report?;
    bar.finish_and_clear();
    let events: u64 = report.runs.iter().map(|run| run.engine.events).sum();
    let peak = peak_memory_bytes();
    let largest = report.runs.iter().map(|run| run.nodes).max().unwrap_or(1);
    let perf = Performance {
        wall_secs: wall.as_secs_f64(),
        events,
        events_per_sec: events as f64 / wall.as_secs_f64().max(1e-9),
        peak_memory_bytes: peak,
        peak_memory_bytes_per_node: peak.map(|bytes| bytes / u64::from(largest)),
    };
    let mut written = Vec::new();
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the output directory {}", dir.display()))?;
        for (name, json) in [
            ("report.json", serde_json::to_string_pretty(&report)?),
            ("perf.json", serde_json::to_string_pretty(&perf)?),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, json + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
            written.push(path);
        }
        written.extend(sim::plot::write_plots(&report, dir)?);
    }
    out.result(
        &serde_json::json!({ "report": report, "performance": perf }),
        || {
            let mut text = report.summary_table();
            text.push_str(&format!(
                "\n{events} events in {:.1} s wall ({:.0} events/s)",
                perf.wall_secs, perf.events_per_sec
            ));
            if let (Some(peak), Some(per_node)) =
                (perf.peak_memory_bytes, perf.peak_memory_bytes_per_node)
            {
                text.push_str(&format!(
                    ", peak memory {:.1} MiB ({per_node} bytes per node)",
                    peak as f64 / (1024.0 * 1024.0)
                ));
            }
            for path in &written {
                text.push_str(&format!("\nwrote {}", path.display()));
            }
            text
        },
    );
    Ok(())
}

/// Runs `f` and measures its wall time: the one place `spore sim` reads the clock, for the
/// performance summary only (the simulation itself runs in virtual time).
#[allow(clippy::disallowed_methods)]
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = std::time::Instant::now();
    let value = f();
    (value, started.elapsed())
}

/// The process's peak resident memory (Linux `VmHWM`), if known.
fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The `--republish` value: an interval, or `None` for never.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Republish(Option<Duration>);

/// Parses `never` or a duration.
fn parse_republish(text: &str) -> Result<Republish, String> {
    match text {
        "never" => Ok(Republish(None)),
        _ => parse_duration(text).map(|every| Republish(Some(every))),
    }
}

/// Parses `90`, `90s`, `30m` or `1h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 30m or 1h"))?;
    let secs = match unit {
        "s" => value,
        "m" => value * 60,
        "h" => value * 3600,
        _ => return Err(format!("unknown unit {unit:?} in {text:?}: use s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("h").is_err());
        assert_eq!(parse_republish("never"), Ok(Republish(None)));
        assert_eq!(
            parse_republish("10m"),
            Ok(Republish(Some(Duration::from_secs(600))))
        );
    }
}
