//! End-to-end runs of the real DHT cores in the simulator.

use sim::runner::run;
use sim::scenario::Scenario;

fn scenario(text: &str) -> Scenario {
    Scenario::parse(text).expect("valid scenario")
}

#[test]
fn smoke() {
    let s = scenario("sizes = [300]\nduration_secs = 120\nwarmup_secs = 120\n[lookups]\nper_sec = 2.0\n[items]\ncount = 3\ncheck_every_secs = 60");
    let report = run(&s, &mut |_, _| {});
    println!("{}", report.summary_table());
    println!("{}", serde_json::to_string(&report.runs[0]).unwrap());
}
