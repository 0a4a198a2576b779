//! End-to-end runs of the real DHT cores in the simulator: determinism, logarithmic hops,
//! lookup success against the global view, and BEP 44 item survival under churn.

use sim::report::RunReport;
use sim::runner::run;
use sim::scenario::Scenario;

fn run_one(text: &str) -> RunReport {
    let scenario = Scenario::parse(text).expect("valid scenario");
    run(&scenario, &mut |_, _| {}).runs.remove(0)
}

#[test]
fn same_seed_gives_a_byte_identical_report() {
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
    let report = |seed| {
        let scenario = Scenario::parse(&text(seed)).unwrap();
        serde_json::to_string(&run(&scenario, &mut |_, _| {})).unwrap()
    };
    let first = report(7);
    assert_eq!(first, report(7));
    assert_ne!(first, report(8));
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
