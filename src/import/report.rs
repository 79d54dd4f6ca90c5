//! What an import did: counts, the first rejects, warnings; printed by the
//! command line and written into the inbox's error reports.

use std::fmt;

use super::MAX_REPORTED_REJECTS;
use super::rows::Reject;
use crate::phone::zones::ZoneSource;
use crate::store::{ImportCounts, PriorImport};

/// The outcome of an import (or of a dry run).
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// The campaign name.
    pub campaign: String,
    /// Its id (`None` when a dry run or a failed import would have created it).
    pub campaign_id: Option<i64>,
    /// Whether this import created the campaign.
    pub campaign_created: bool,
    /// The `imports` row (`None` for a dry run or when nothing was read).
    pub import_id: Option<i64>,
    /// What was read: the path as given, plus `#table` or `?query`.
    pub source: String,
    /// sha256 of the content.
    pub sha256: String,
    /// Row counts.
    pub counts: ImportCounts,
    /// The first rejects, in file order (at most [`MAX_REPORTED_REJECTS`]).
    pub rejects: Vec<Reject>,
    /// Set when this content had been fully imported into the campaign
    /// before: nothing was read or added.
    pub already_imported: Option<PriorImport>,
    /// A dry run: nothing was written.
    pub dry_run: bool,
    /// Things the operator should know (settings that were not applied).
    pub warnings: Vec<String>,
    /// Valid rows by where their calling zones come from, in
    /// [`ZoneSource::ALL`] order (column, number, country, campaign).
    pub zone_sources: [u64; 4],
}

impl ImportReport {
    pub(crate) fn new(campaign: &str, source: &str, sha256: &str, dry_run: bool) -> Self {
        Self {
            campaign: campaign.to_string(),
            source: source.to_string(),
            sha256: sha256.to_string(),
            dry_run,
            ..Self::default()
        }
    }

    /// Counts where a valid row's calling zones come from.
    pub(crate) fn count_zone_source(&mut self, source: ZoneSource) {
        self.zone_sources[source as usize] += 1;
    }

    /// `zones: 30 from the number, 4 from the country, ...`, or `None`
    /// when no valid row was read.
    pub fn zone_line(&self) -> Option<String> {
        if self.zone_sources.iter().all(|n| *n == 0) {
            return None;
        }
        let parts = ZoneSource::ALL
            .iter()
            .map(|s| {
                let n = self.zone_sources[*s as usize];
                match s {
                    ZoneSource::Column => format!("{n} from the timezone column"),
                    ZoneSource::Number => format!("{n} from the number"),
                    ZoneSource::Country => format!("{n} from the country (every zone of it)"),
                    ZoneSource::Campaign => format!("{n} from the campaign's zone"),
                }
            })
            .collect::<Vec<_>>();
        Some(format!(
            "calling zones of the valid rows: {}",
            parts.join(", ")
        ))
    }

    /// Counts a reject, keeping the first ones.
    pub(crate) fn add_reject(&mut self, r: &Reject) {
        self.counts.rejected += 1;
        if self.rejects.len() < MAX_REPORTED_REJECTS {
            self.rejects.push(r.clone());
        }
    }

    /// The one-line summary: `imported 998 of 1000 rows into campaign "spring" (1 duplicate, 1 rejected)`.
    pub fn summary(&self) -> String {
        if let Some(p) = &self.already_imported {
            return format!(
                "nothing imported: this content was already imported into campaign {:?} (import {} from {}, finished {})",
                self.campaign, p.id, p.source, p.finished_at
            );
        }
        let c = &self.counts;
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let head = if self.dry_run {
            "dry run: would import"
        } else {
            "imported"
        };
        let new = if self.campaign_created || (self.dry_run && self.campaign_id.is_none()) {
            "new "
        } else {
            ""
        };
        let mut s = format!(
            "{head} {} of {} into {new}campaign {:?} ({}, {})",
            c.imported,
            plural(c.total, "row", "rows"),
            self.campaign,
            plural(c.duplicate, "duplicate", "duplicates"),
            plural(c.rejected, "rejected", "rejected"),
        );
        if self.dry_run {
            s.push_str("; nothing was written");
        }
        s
    }

    /// The summary, where the rows' zones come from, then up to `n`
    /// rejects, one per line.
    pub fn render(&self, n: usize) -> String {
        let mut out = self.summary();
        out.push('\n');
        if let Some(zones) = self.zone_line() {
            out.push_str(&zones);
            out.push('\n');
        }
        out.push_str(&self.render_rejects(n));
        out
    }

    /// Up to `n` rejects, one per line, and how many more there were.
    pub fn render_rejects(&self, n: usize) -> String {
        let mut out = String::new();
        for r in self.rejects.iter().take(n) {
            out.push_str(&format!("  {r}\n"));
        }
        let shown = self.rejects.len().min(n) as u64;
        if self.counts.rejected > shown {
            let more = self.counts.rejected - shown;
            let where_ = match self.import_id {
                Some(id) => format!(" (see table import_rejects, import_id = {id})"),
                None => String::new(),
            };
            out.push_str(&format!("  ... and {more} more rejected{where_}\n"));
        }
        out
    }
}

impl fmt::Display for ImportReport {
    /// The summary and the first 10 rejects.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_states_the_counts_in_words() {
        let mut r = ImportReport::new("spring", "a.csv", "x", false);
        r.campaign_id = Some(1);
        r.counts = ImportCounts {
            total: 1000,
            imported: 998,
            duplicate: 1,
            rejected: 1,
        };
        assert_eq!(
            r.summary(),
            "imported 998 of 1000 rows into campaign \"spring\" (1 duplicate, 1 rejected)"
        );
    }
}
