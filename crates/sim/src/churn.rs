//! Churn: how long nodes stay online and how long they stay away.
//!
//! Session and absence lengths follow exponential or Weibull distributions (Weibull with a shape
//! below one gives the heavy tail measured in real DHTs: many short sessions, a few very long
//! ones). Sampling is by inverse transform from the simulator's seeded generator.

use std::time::Duration;

use sansio::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// A distribution of durations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Lifetime {
    /// Forever: the node never changes state.
    #[default]
    Never,
    /// Exponential with the given mean.
    Exponential {
        /// Mean duration, in seconds.
        mean_secs: f64,
    },
    /// Weibull with the given shape `k` and scale `lambda`.
    Weibull {
        /// Shape: below 1 a heavy tail, 1 exponential, above 1 concentrated around the scale.
        shape: f64,
        /// Scale, in seconds.
        scale_secs: f64,
    },
}

impl Lifetime {
    /// A duration drawn from the distribution, `None` for [`Lifetime::Never`].
    pub fn sample(&self, rng: &mut Rng) -> Option<Duration> {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let tail = -(1.0 - rng.gen::<f64>()).ln();
        let secs = match *self {
            Lifetime::Never => return None,
            Lifetime::Exponential { mean_secs } => mean_secs * tail,
            Lifetime::Weibull { shape, scale_secs } => scale_secs * tail.powf(1.0 / shape),
        };
        Some(Duration::from_secs_f64(secs.clamp(0.001, 1e9)))
    }

    /// The distribution's mean, in seconds (infinite for [`Lifetime::Never`]).
    pub fn mean_secs(&self) -> f64 {
        match *self {
            Lifetime::Never => f64::INFINITY,
            Lifetime::Exponential { mean_secs } => mean_secs,
            Lifetime::Weibull { shape, scale_secs } => scale_secs * gamma(1.0 + 1.0 / shape),
        }
    }

    /// The distribution's median, in seconds (infinite for [`Lifetime::Never`]).
    pub fn median_secs(&self) -> f64 {
        let ln2 = std::f64::consts::LN_2;
        match *self {
            Lifetime::Never => f64::INFINITY,
            Lifetime::Exponential { mean_secs } => mean_secs * ln2,
            Lifetime::Weibull { shape, scale_secs } => scale_secs * ln2.powf(1.0 / shape),
        }
    }

    /// Checks the parameters are positive and finite.
    pub fn validate(&self) -> Result<(), String> {
        let ok = match *self {
            Lifetime::Never => true,
            Lifetime::Exponential { mean_secs } => mean_secs.is_finite() && mean_secs > 0.0,
            Lifetime::Weibull { shape, scale_secs } => {
                shape.is_finite() && shape > 0.0 && scale_secs.is_finite() && scale_secs > 0.0
            }
        };
        ok.then_some(())
            .ok_or_else(|| format!("lifetime parameters must be positive and finite: {self:?}"))
    }
}

impl std::str::FromStr for Lifetime {
    type Err = String;

    /// The command-line form: `never`, `exp:MEAN` or `weibull:SHAPE:SCALE`, where durations are
    /// seconds or carry a unit (`exp:10m`, `weibull:0.6:20m`).
    fn from_str(text: &str) -> Result<Lifetime, String> {
        let usage = || {
            format!("{text:?} is not a lifetime: use never, exp:MEAN or weibull:SHAPE:SCALE (durations like 600, 10m, 1h)")
        };
        let secs = |part: &str| parse_secs(part).ok_or_else(usage);
        let parts: Vec<&str> = text.split(':').collect();
        let lifetime = match parts.as_slice() {
            ["never" | "none"] => Lifetime::Never,
            ["exp", mean] => Lifetime::Exponential {
                mean_secs: secs(mean)?,
            },
            ["weibull", shape, scale] => Lifetime::Weibull {
                shape: shape.parse().map_err(|_| usage())?,
                scale_secs: secs(scale)?,
            },
            _ => return Err(usage()),
        };
        lifetime.validate().map(|()| lifetime)
    }
}

/// Seconds from `90`, `90s`, `1.5m` or `2h`.
fn parse_secs(text: &str) -> Option<f64> {
    let (number, scale) = match text.char_indices().last()? {
        (at, 's') => (&text[..at], 1.0),
        (at, 'm') => (&text[..at], 60.0),
        (at, 'h') => (&text[..at], 3600.0),
        _ => (text, 1.0),
    };
    number.parse::<f64>().ok().map(|value| value * scale)
}

/// The gamma function (Lanczos approximation, g = 7), for Weibull means.
fn gamma(x: f64) -> f64 {
    const COEFFS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        std::f64::consts::PI / ((std::f64::consts::PI * x).sin() * gamma(1.0 - x))
    } else {
        let x = x - 1.0;
        let t = x + 7.5;
        let sum = COEFFS[1..]
            .iter()
            .enumerate()
            .fold(COEFFS[0], |acc, (i, c)| acc + c / (x + i as f64 + 1.0));
        (2.0 * std::f64::consts::PI).sqrt() * t.powf(x + 0.5) * (-t).exp() * sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_mean(lifetime: Lifetime) -> f64 {
        let mut rng = Rng::from_seed(3);
        let n = 200_000;
        let total: f64 = (0..n)
            .map(|_| lifetime.sample(&mut rng).unwrap().as_secs_f64())
            .sum();
        total / n as f64
    }

    #[test]
    fn sample_means_match_the_distributions() {
        for lifetime in [
            Lifetime::Exponential { mean_secs: 600.0 },
            Lifetime::Weibull {
                shape: 0.6,
                scale_secs: 300.0,
            },
            Lifetime::Weibull {
                shape: 2.0,
                scale_secs: 300.0,
            },
        ] {
            let (expected, got) = (lifetime.mean_secs(), sample_mean(lifetime));
            assert!(
                (got / expected - 1.0).abs() < 0.03,
                "{lifetime:?}: {got} vs {expected}"
            );
        }
        assert!((gamma(5.0) - 24.0).abs() < 1e-9);
        assert_eq!(Lifetime::Never.sample(&mut Rng::from_seed(1)), None);
    }

    #[test]
    fn flags_name_lifetimes() {
        assert_eq!("never".parse(), Ok(Lifetime::Never));
        assert_eq!(
            "exp:10m".parse(),
            Ok(Lifetime::Exponential { mean_secs: 600.0 })
        );
        assert_eq!(
            "weibull:0.6:1h".parse(),
            Ok(Lifetime::Weibull {
                shape: 0.6,
                scale_secs: 3600.0
            })
        );
        for bad in [
            "exp",
            "exp:-5",
            "exp:ten",
            "weibull:0.5",
            "gamma:1:2",
            "exp:5d",
        ] {
            assert!(bad.parse::<Lifetime>().is_err(), "{bad}");
        }
        let median = Lifetime::Exponential { mean_secs: 100.0 }.median_secs();
        assert!((median - 69.3).abs() < 0.1, "{median}");
    }

    #[test]
    fn bad_parameters_are_rejected() {
        assert!(Lifetime::Exponential { mean_secs: 0.0 }.validate().is_err());
        assert!(Lifetime::Weibull {
            shape: -1.0,
            scale_secs: 5.0
        }
        .validate()
        .is_err());
        assert!(Lifetime::Weibull {
            shape: 0.5,
            scale_secs: 5.0
        }
        .validate()
        .is_ok());
    }
}
