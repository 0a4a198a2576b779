//! End-to-end runs of the real DHT cores in the simulator: determinism, logarithmic hops,
//! lookup success against the global view, and BEP 44 item survival under churn.

use sim::report::RunReport;
use sim::runner::run;
use sim::scenario::Scenario;

fn run_one(text: &str) -> RunReport {
    let scenario = Scenario::parse(text).expect("valid scenario");
    run(&scenario, 0, &mut |_| {}).unwrap().runs.remove(0)
}

#[test]
fn same_seed_gives_a_byte_identical_report_on_any_number_of_threads() {
    let text = |seed: u64| {
        format!(
            r#"
            seed = {seed}
            sizes = [400]
            warmup_secs = 300
            duration_secs = 300
            [network]
            loss = 0.02
            [churn]
            session = {{ kind = "weibull", shape = 0.7, scale_secs = 400.0 }}
            absence = {{ kind = "exponential", mean_secs = 200.0 }}
            keep_id = false
            [lookups]
            per_sec = 2.0
            [items]
            count = 3
            check_every_secs = 100
            republish_secs = 120
            [adversaries]
            silent = 0.05
            drop_queries = 0.05
            wrong_nodes = 0.05
            sybils = 10
            "#
        )
    };
    let report = |seed, threads| {
        let scenario = Scenario::parse(&text(seed)).unwrap();
        serde_json::to_string(&run(&scenario, threads, &mut |_| {}).unwrap()).unwrap()
    };
    // The same on one thread as on several: windows merge in node order, not finishing order.
    let first = report(7, 1);
    assert_eq!(first, report(7, 3));
    assert_ne!(first, report(8, 1));
    // The run did real work: lookups, departures, losses.
    let parsed: serde_json::Value = serde_json::from_str(&first).unwrap();
    let run = &parsed["runs"][0];
    assert!(run["lookups"]["completed"].as_u64().unwrap() > 100, "{run}");
    assert!(run["departures"].as_u64().unwrap() > 50, "{run}");
    assert!(run["engine"]["packets_lost"].as_u64().unwrap() > 0, "{run}");
}

#[test]
fn hops_grow_with_log_n_and_lookups_find_the_true_closest() {
    let mut hops = Vec::new();
    for nodes in [1000u32, 4000, 16000] {
        let run = run_one(&format!(
            "sizes = [{nodes}]\nwarmup_secs = 1200\nduration_secs = 60\n[lookups]\nper_sec = 4.0"
        ));
        let lookups = &run.lookups;
        eprintln!(
            "{nodes} nodes: {} lookups, mean hops {:.2}, success {:.4}, hops histogram {:?}",
            lookups.completed, lookups.mean_hops, lookups.success_rate, lookups.hops
        );
        assert!(lookups.completed >= 200, "{nodes}: {lookups:?}");
        assert!(lookups.success_rate >= 0.99, "{nodes}: {lookups:?}");
        assert!(
            lookups.mean_hops < f64::from(nodes).log2(),
            "{nodes}: {lookups:?}"
        );
        hops.push(lookups.mean_hops);
    }
    // Each quadrupling adds roughly the same number of hops: more than nothing, less than two.
    let steps = [hops[1] - hops[0], hops[2] - hops[1]];
    assert!(
        steps.iter().all(|s| (0.1..2.0).contains(s)),
        "mean hops {hops:?}"
    );
    assert!((steps[0] - steps[1]).abs() < 0.5, "mean hops {hops:?}");
}

#[test]
fn lookup_success_under_churn_is_reported_against_session_length() {
    let scenario = Scenario::parse(
        r#"
        sizes = [1000]
        warmup_secs = 1200
        duration_secs = 600
        [churn]
        sessions = [
            { kind = "exponential", mean_secs = 300.0 },
            { kind = "weibull", shape = 0.6, scale_secs = 3600.0 },
        ]
        absence = { kind = "exponential", mean_secs = 600.0 }
        [lookups]
        per_sec = 4.0
        "#,
    )
    .expect("valid scenario");
    let report = run(&scenario, 0, &mut |_| {}).unwrap();
    let [short, long] = &report.runs[..] else {
        panic!("one run per session distribution: {:?}", report.runs);
    };
    for run in [short, long] {
        eprintln!(
            "sessions {:?} (mean {:?} s, median {:?} s): {} lookups, success {:.3}, overlap {:.3}, \
             {} departures",
            run.session,
            run.session_mean_secs,
            run.session_median_secs,
            run.lookups.completed,
            run.lookups.success_rate,
            run.lookups.mean_overlap,
            run.departures
        );
        assert!(run.lookups.completed >= 1000, "{:?}", run.lookups);
        assert!(run.departures > 100, "churn happened: {}", run.departures);
    }
    assert_eq!(short.session_mean_secs, Some(300.0));
    let long_mean = long.session_mean_secs.expect("a finite mean");
    assert!((5000.0..5500.0).contains(&long_mean), "{long_mean}");
    // Shorter sessions leave more stale contacts behind: fewer lookups find the true K closest.
    assert!(
        short.lookups.success_rate < long.lookups.success_rate,
        "{:?} vs {:?}",
        short.lookups,
        long.lookups
    );
    assert!(long.lookups.mean_overlap >= 0.9, "{:?}", long.lookups);
}

#[test]
fn items_outlive_churn_only_when_republished() {
    let survival = |republish: &str| {
        let run = run_one(&format!(
            r#"
            sizes = [1000]
            warmup_secs = 1200
            duration_secs = 3600
            [churn]
            session = {{ kind = "exponential", mean_secs = 600.0 }}
            absence = {{ kind = "exponential", mean_secs = 600.0 }}
            [lookups]
            per_sec = 0.0
            [items]
            count = 20
            check_every_secs = 600
            {republish}
            "#
        ));
        assert!(run.items.initial_stores >= 20 * 4, "{:?}", run.items);
        eprintln!("{republish:?}: {:?}", run.items);
        let last = run.items.checks.last().copied().expect("checks ran");
        assert!(
            last.at_secs >= 3000 && last.completed >= 15,
            "{:?}",
            run.items
        );
        f64::from(last.found) / f64::from(last.completed)
    };
    let kept = survival("republish_secs = 600");
    let lost = survival("");
    assert!(kept >= 0.9, "with republishing {kept}");
    assert!(lost <= 0.3, "without republishing {lost}");
}
