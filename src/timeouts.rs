//! Time limits of the network steps: no call waits on a Charm server for longer than
//! these allow.

use std::time::Duration;

use crate::error::{Error, Result};

/// Bounds on talking to a Charm server. A silent, black-holed or trickling server fails
/// the step with [`Error::Network`] once its bound is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening one connection: name resolution, TCP connect, and the SSH handshake with
    /// its host-key check (`CHARM_KV_CONNECT_TIMEOUT`).
    pub connect: Duration,
    /// One request: an SSH command (authentication, `exec`, its whole output) or an HTTP
    /// API request including its whole response body. A snapshot upload or download has
    /// no fixed size, so for it this is the longest silence instead, and the sync limit
    /// bounds the whole transfer (`CHARM_KV_REQUEST_TIMEOUT`).
    pub request: Duration,
    /// One whole sync, and so the push after a write: pull, push, every request and
    /// every wait for other devices' uploads (`CHARM_KV_SYNC_TIMEOUT`).
    pub sync: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(15),
            request: Duration::from_secs(30),
            // Long enough for a first pull of a few hundred MB on a slow link.
            sync: Duration::from_secs(600),
        }
    }
}

impl Timeouts {
    /// The environment variables that set each bound, in field order.
    pub const ENV: [&'static str; 3] = [
        "CHARM_KV_CONNECT_TIMEOUT",
        "CHARM_KV_REQUEST_TIMEOUT",
        "CHARM_KV_SYNC_TIMEOUT",
    ];

    /// Applies the `CHARM_KV_*_TIMEOUT` variables `lookup` finds (unset or empty ones
    /// keep their value).
    pub(crate) fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<()> {
        let [connect, request, sync] = Self::ENV;
        for (name, slot) in [
            (connect, &mut self.connect),
            (request, &mut self.request),
            (sync, &mut self.sync),
        ] {
            if let Some(value) = lookup(name).filter(|v| !v.is_empty()) {
                *slot = parse_duration(name, &value)?;
            }
        }
        Ok(())
    }

    /// The longest bound accepted: a year, as good as none, and far from the overflow
    /// of an `Instant`.
    pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

    /// Refuses a zero bound (it would fail every step, and "no bound" is not offered)
    /// and one above [`Timeouts::MAX`].
    pub(crate) fn check(&self) -> Result<()> {
        let [connect, request, sync] = Self::ENV;
        for (name, value) in [
            (connect, self.connect),
            (request, self.request),
            (sync, self.sync),
        ] {
            if value.is_zero() || value > Self::MAX {
                return Err(Error::invalid(format!(
                    "{name} must be more than zero and at most a year, not {value:?}"
                )));
            }
        }
        Ok(())
    }
}

/// A duration as Go writes them, restricted to one number and one unit (`500ms`, `30s`,
/// `2m`, `1h`), or a bare number of seconds (`1.5`).
fn parse_duration(name: &str, value: &str) -> Result<Duration> {
    let text = value.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" => 60.0,
        "h" => 3600.0,
        _ => f64::NAN,
    };
    let seconds = number.parse::<f64>().map(|n| n * scale);
    match seconds {
        Ok(s) if s.is_finite() && s > 0.0 && s <= Timeouts::MAX.as_secs_f64() => {
            Ok(Duration::from_secs_f64(s))
        }
        _ => Err(Error::invalid(format!(
            "{name}={value:?} is not a duration from 1ms to a year (like 500ms, 30s, 2m)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Timeouts> {
        let mut t = Timeouts::default();
        t.apply_env(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })?;
        Ok(t)
    }

    #[test]
    fn env_sets_each_bound_in_go_duration_syntax() {
        let t = from(&[
            ("CHARM_KV_CONNECT_TIMEOUT", "500ms"),
            ("CHARM_KV_REQUEST_TIMEOUT", "2m"),
            ("CHARM_KV_SYNC_TIMEOUT", "1.5"),
        ])
        .unwrap();
        assert_eq!(t.connect, Duration::from_millis(500));
        assert_eq!(t.request, Duration::from_secs(120));
        assert_eq!(t.sync, Duration::from_millis(1500));
        assert_eq!(from(&[]).unwrap(), Timeouts::default());
    }

    #[test]
    fn zero_negative_and_unknown_units_are_refused() {
        for bad in ["0", "0s", "-1s", "10 parsecs", "1d", "s", "1e3"] {
            let err = from(&[("CHARM_KV_SYNC_TIMEOUT", bad)]).unwrap_err();
            assert!(
                err.to_string().contains("CHARM_KV_SYNC_TIMEOUT"),
                "{bad}: {err}"
            );
        }
        let zero = Timeouts {
            request: Duration::ZERO,
            ..Timeouts::default()
        };
        assert!(zero.check().is_err());
        assert!(Timeouts::default().check().is_ok());
    }
}
