//! `--accept`: which HTTP statuses count as success.

use anyhow::{Result, bail};

/// A set of status ranges, e.g. `200-299,304`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept(Vec<(u16, u16)>);

impl Accept {
    /// Parses a comma-separated list of statuses and `LOW-HIGH` ranges.
    pub fn parse(list: &str) -> Result<Self> {
        let mut ranges = Vec::new();
        for item in list.split(',').map(str::trim) {
            let (low, high) = item.split_once('-').unwrap_or((item, item));
            match (parse_status(low), parse_status(high)) {
                (Some(l), Some(h)) if l <= h => ranges.push((l, h)),
                _ => bail!(
                    "--accept must list statuses and ranges like 200-299,304 (bad item {item:?})"
                ),
            }
        }
        Ok(Accept(ranges))
    }

    /// Whether `status` counts as success.
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|&(l, h)| (l..=h).contains(&status))
    }
}

fn parse_status(s: &str) -> Option<u16> {
    s.trim().parse().ok().filter(|s| (100..=999).contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_singles() {
        let a = Accept::parse("200-299, 304").unwrap();
        assert!(a.contains(200) && a.contains(299) && a.contains(304));
        assert!(!a.contains(301) && !a.contains(404));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "abc", "300-200", "200-", "99", "1000", "200,,300"] {
            assert!(Accept::parse(bad).is_err(), "{bad}");
        }
    }
}
