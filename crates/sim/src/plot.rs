//! SVG plots of a report (plotters' SVG backend: text is left to the viewer's fonts, so nothing
//! depends on the fonts installed where the simulator runs).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::report::{Report, RunReport, LATENCY_BIN_MS};
use crate::SimError;

/// One line of a chart: its legend and its points.
type Series = (String, Vec<(f64, f64)>);

const COLOURS: [RGBColor; 6] = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];

/// Each count as a fraction of their sum.
fn fraction(counts: &[u64]) -> impl Iterator<Item = f64> + '_ {
    let total = counts.iter().sum::<u64>().max(1) as f64;
    counts.iter().map(move |&c| c as f64 / total)
}

/// Draws every plot the report supports into `dir`; returns the files written.
pub fn write_plots(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, SimError> {
    let sweeps_sessions = report.scenario.session_sweep().len() > 1;
    let label = |run: &RunReport| match run.session_mean_secs {
        Some(secs) if sweeps_sessions => {
            format!("{} nodes, sessions ~{:.0} min", run.nodes, secs / 60.0)
        }
        _ => format!("{} nodes", run.nodes),
    };
    let mut charts: Vec<(&str, &str, &str, &str, Vec<Series>)> = Vec::new();
    charts.push((
        "hops.svg",
        "Lookup hop count",
        "hops",
        "fraction of lookups",
        report
            .runs
            .iter()
            .map(|run| {
                let points = fraction(&run.lookups.hops).enumerate();
                (label(run), points.map(|(h, f)| (h as f64, f)).collect())
            })
            .collect(),
    ));
    charts.push((
        "latency.svg",
        "Lookup latency",
        "latency (ms)",
        "fraction of lookups",
        report
            .runs
            .iter()
            .map(|run| {
                let points = fraction(&run.lookups.latency_ms).enumerate();
                let bin = |i: usize| ((i as u64 * LATENCY_BIN_MS) + LATENCY_BIN_MS / 2) as f64;
                (label(run), points.map(|(i, f)| (bin(i), f)).collect())
            })
            .collect(),
    ));
    charts.push((
        "success_over_time.svg",
        "Lookups that found the true K closest live nodes",
        "minute",
        "success rate",
        report
            .runs
            .iter()
            .map(|run| {
                let minutes = run.lookups.per_minute.iter().enumerate();
                let points = minutes
                    .filter(|(_, m)| m.completed > 0)
                    .map(|(i, m)| (i as f64, m.succeeded as f64 / m.completed as f64));
                (label(run), points.collect())
            })
            .collect(),
    ));
    if report.runs.iter().any(|run| !run.items.checks.is_empty()) {
        charts.push((
            "item_survival.svg",
            "BEP 44 items still retrievable",
            "minutes after the put",
            "fraction found",
            report
                .runs
                .iter()
                .map(|run| {
                    let checks = run.items.checks.iter().filter(|c| c.completed > 0);
                    let points = checks.map(|c| {
                        (
                            c.at_secs as f64 / 60.0,
                            f64::from(c.found) / f64::from(c.completed),
                        )
                    });
                    (label(run), points.collect())
                })
                .collect(),
        ));
    }
    if sweeps_sessions {
        let points = |nodes: u32| {
            let runs = report.runs.iter().filter(move |run| run.nodes == nodes);
            runs.filter_map(|run| {
                let minutes = run.session_mean_secs? / 60.0;
                Some((minutes, run.lookups.success_rate))
            })
            .collect()
        };
        charts.push((
            "churn.svg",
            "Lookup success against mean session length",
            "mean session (minutes)",
            "success rate",
            report
                .scenario
                .sizes
                .iter()
                .map(|&nodes| (format!("{nodes} nodes"), points(nodes)))
                .collect(),
        ));
    }
    if report.scenario.sizes.len() > 1 {
        // One point per size, from each size's first session distribution.
        let first_session = report.runs.first().map(|run| run.session);
        let by_size = |value: fn(&RunReport) -> f64| {
            let runs = report.runs.iter();
            let points = runs
                .filter(|run| Some(run.session) == first_session)
                .map(|run| (f64::from(run.nodes).log2(), value(run)));
            points.collect::<Vec<_>>()
        };
        charts.push((
            "sizes.svg",
            "Mean hops and success across network sizes",
            "log2(nodes)",
            "value",
            vec![
                ("mean hops".into(), by_size(|run| run.lookups.mean_hops)),
                (
                    "success rate".into(),
                    by_size(|run| run.lookups.success_rate),
                ),
                (
                    "log2(nodes)".into(),
                    by_size(|run| f64::from(run.nodes).log2()),
                ),
            ],
        ));
    }
    let mut written = Vec::new();
    for (file, title, x_label, y_label, series) in charts {
        let path = dir.join(file);
        line_chart(&path, title, x_label, y_label, &series).map_err(|reason| SimError::Plot {
            path: path.clone(),
            reason,
        })?;
        written.push(path);
    }
    Ok(written)
}

fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<(), String> {
    let points = series.iter().flat_map(|(_, p)| p.iter());
    let (x_max, y_max) = points.fold((1.0f64, 0.0f64), |(x, y), p| (x.max(p.0), y.max(p.1)));
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max * 1.05, 0.0..(y_max * 1.1).max(0.01))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (name, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::churn::Lifetime;
    use crate::report::{ItemCheck, MinuteStats};
    use crate::scenario::Scenario;

    #[test]
    fn plots_are_svg_with_their_titles_and_comparisons_for_sweeps() {
        let mut run = RunReport {
            nodes: 1000,
            ..RunReport::default()
        };
        run.lookups.hops = vec![0, 3, 10, 4];
        run.lookups.latency_ms = vec![1, 5, 2];
        run.lookups.per_minute = vec![MinuteStats {
            completed: 10,
            succeeded: 9,
        }];
        run.items.checks = vec![ItemCheck {
            at_secs: 600,
            completed: 5,
            found: 4,
        }];
        let mut bigger = run.clone();
        bigger.nodes = 4000;
        let mut scenario = Scenario {
            sizes: vec![1000, 4000],
            ..Scenario::default()
        };
        let mut runs = Vec::new();
        for mean_secs in [600.0, 3600.0] {
            let session = Lifetime::Exponential { mean_secs };
            scenario.churn.sessions.push(session);
            for template in [&run, &bigger] {
                let mut run = template.clone();
                run.session = session;
                run.session_mean_secs = Some(mean_secs);
                runs.push(run);
            }
        }
        let report = Report { scenario, runs };
        let dir = std::env::temp_dir().join(format!("spore-sim-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = write_plots(&report, &dir).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "hops.svg",
                "latency.svg",
                "success_over_time.svg",
                "item_survival.svg",
                "churn.svg",
                "sizes.svg"
            ]
        );
        let hops = std::fs::read_to_string(&files[0]).unwrap();
        assert!(hops.starts_with("<svg") && hops.contains("Lookup hop count"));
        assert!(hops.contains("4000 nodes, sessions ~60 min"));
        let churn = std::fs::read_to_string(&files[4]).unwrap();
        assert!(churn.contains("mean session (minutes)") && churn.contains("1000 nodes"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
