//! `spore sim` as a user runs it: a scenario file plus flags, JSON on stdout, files in --out.

use std::path::Path;
use std::process::Command;

const SCENARIO: &str = r#"
name = "cli-test"
sizes = [150]
warmup_secs = 300
duration_secs = 120
[lookups]
per_sec = 2.0
[items]
count = 2
check_every_secs = 30
"#;

/// Runs `spore --json sim` with `args`; returns the parsed stdout.
fn sim(args: &[&str], scenario: &Path, out: &Path) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_spore"))
        .args(["--json", "sim"])
        .arg(scenario)
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .expect("spore runs");
    assert!(
        output.status.success(),
        "spore sim failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

#[test]
fn same_scenario_and_seed_give_the_same_report_on_any_threads_and_plots_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("small.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let flags = ["--seed", "5", "--churn", "exp:10m", "--loss", "0.01"];
    let (first_dir, second_dir) = (dir.path().join("a"), dir.path().join("b"));
    // The thread count is not part of the result.
    let first = sim(
        &[&flags[..], &["--threads", "1"]].concat(),
        &scenario,
        &first_dir,
    );
    let second = sim(
        &[&flags[..], &["--threads", "2"]].concat(),
        &scenario,
        &second_dir,
    );

    assert_eq!(first["report"], second["report"]);
    let report_file = |d: &Path| std::fs::read(d.join("report.json")).unwrap();
    assert_eq!(report_file(&first_dir), report_file(&second_dir));

    // The flags reached the scenario, and the run measured something.
    let report = &first["report"];
    assert_eq!(report["scenario"]["seed"], 5);
    let loss = report["scenario"]["network"]["loss"].as_f64().unwrap();
    assert!((loss - 0.01).abs() < 1e-6, "loss {loss}");
    let run = &report["runs"][0];
    assert_eq!(run["nodes"], 150);
    assert_eq!(run["session_mean_secs"], 600.0);
    assert!(run["lookups"]["completed"].as_u64().unwrap() > 100, "{run}");
    assert!(
        run["items"]["checks"].as_array().unwrap().len() >= 2,
        "{run}"
    );
    assert!(first["performance"]["events_per_sec"].as_f64().unwrap() > 0.0);

    for plot in [
        "hops.svg",
        "latency.svg",
        "success_over_time.svg",
        "item_survival.svg",
    ] {
        let svg = std::fs::read_to_string(first_dir.join(plot)).expect(plot);
        assert!(
            svg.starts_with("<svg") && svg.contains("150 nodes"),
            "{plot}"
        );
    }
    assert!(first_dir.join("perf.json").is_file());

    // Another seed, another run.
    let other = sim(&["--seed", "6"], &scenario, &dir.path().join("c"));
    assert_ne!(other["report"]["runs"], report["runs"]);
}

#[test]
fn mistakes_get_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (&["--churn", "exp:soon"][..], "not a lifetime"),
        (&["--adversaries", "evil=0.5"], "unknown adversary"),
        (&["--loss", "2"], "not a probability"),
        (&["--nodes", "1"], "outside"),
        (&["/no/such/scenario.toml"], "cannot read scenario"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_spore"))
            .arg("sim")
            .args(args)
            .arg("--out")
            .arg(dir.path())
            .output()
            .expect("spore runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
