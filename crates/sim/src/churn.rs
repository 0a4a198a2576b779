//! Churn: how long nodes stay online and how long they stay away.
//!
//! Session and absence lengths follow exponential or Weibull distributions (Weibull with a shape
//! below one gives the heavy tail measured in real DHTs: many short sessions, a few very long
//! ones). Sampling is by inverse transform from the simulator's seeded generator.

use std::time::Duration;

use sansio::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// A distribution of durations.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Lifetime {
    /// Forever: the node never changes state.
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
