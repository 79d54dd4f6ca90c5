//! The states and outcomes of the dispatch state machine (see the design's
//! "States"), each stored as TEXT in SQLite and round-tripped through
//! `Display`/`FromStr`, so the database, the CLI and the code share one spelling.

use std::fmt;
use std::str::FromStr;

/// A value that is not one of an enum's TEXT spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?} (expected one of: {expected})")]
pub struct UnknownVariant {
    /// What was being parsed, e.g. `contact state`.
    pub kind: &'static str,
    /// The text that did not match.
    pub value: String,
    /// The accepted spellings, comma separated.
    pub expected: String,
}

/// Declares a fieldless enum that maps one-to-one onto TEXT spellings.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type, serde::Serialize, serde::Deserialize)]
        #[sqlx(type_name = "TEXT", rename_all = "snake_case")]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The TEXT spelling stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownVariant {
                        kind: $kind,
                        value: other.to_string(),
                        expected: [$($text),+].join(", "),
                    }),
                }
            }
        }
    };
}

text_enum!(
    /// Whether a campaign's contacts may be dialed.
    CampaignStatus, "campaign status" {
        /// Sweeps dispatch its due contacts.
        Active => "active",
        /// Nothing is dispatched until it is resumed; calls in flight finish.
        Paused => "paused",
        /// Nothing is dispatched again; open contacts become `cancelled`.
        Cancelled => "cancelled",
        /// Every contact reached a final state.
        Completed => "completed",
    }
);

text_enum!(
    /// Where a contact stands.
    ContactState, "contact state" {
        /// Never attempted yet, due at `next_attempt_at` (or now).
        Pending => "pending",
        /// An attempt is sending, uncertain, or accepted without a final outcome.
        InProgress => "in_progress",
        /// The last attempt did not reach the person; due again at `next_attempt_at`.
        RetryWait => "retry_wait",
        /// A call completed.
        Done => "done",
        /// `max_attempts` were used without a completed call, or the outcome is unknown.
        Exhausted => "exhausted",
        /// On the do-not-call list: never dialed.
        Suppressed => "suppressed",
        /// The number or another field could not be used (see `invalid_reason`).
        Invalid => "invalid",
        /// Its campaign was cancelled before it finished.
        Cancelled => "cancelled",
    }
);

impl ContactState {
    /// States from which no call will ever be placed again without an operator.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Done | Self::Exhausted | Self::Suppressed | Self::Invalid | Self::Cancelled
        )
    }
}

text_enum!(
    /// Where one dispatch request stands (the never-dial-twice state machine).
    AttemptState, "attempt state" {
        /// Committed before the HTTP request; the request may be under way.
        Sending => "sending",
        /// The API returned a request id: a call was (or will be) placed.
        Accepted => "accepted",
        /// The API certainly did not act on the request.
        Rejected => "rejected",
        /// The request may have reached the API; the reconciler decides.
        Uncertain => "uncertain",
        /// An uncertain attempt that never showed up in the call logs.
        NotPlaced => "not_placed",
    }
);

text_enum!(
    /// The normalised final outcome of an accepted call.
    Outcome, "outcome" {
        /// The person answered and the conversation ended normally.
        Completed => "completed",
        /// Nobody answered.
        NoAnswer => "no_answer",
        /// The line was busy.
        Busy => "busy",
        /// The call failed (carrier or provider error).
        Failed => "failed",
        /// An answering machine or voicemail took the call.
        Voicemail => "voicemail",
        /// The call was cancelled before it connected.
        Cancelled => "cancelled",
        /// No final call log appeared within `reconcile.outcome_timeout_secs`.
        Unknown => "unknown",
    }
);

text_enum!(
    /// Why a contact is held back instead of dialed (`contacts.hold_reason`):
    /// set when it is put off or suppressed, cleared when it is dialed. New
    /// rules add their own reason here; the column has no CHECK.
    HoldReason, "hold reason" {
        /// The number is on the do-not-call list (the contact is `suppressed`).
        Dnc => "dnc",
        /// The campaign's calling window is closed now in some candidate zone.
        Window => "window",
        /// `compliance.quiet_hours` is closed now in some candidate zone.
        QuietHours => "quiet_hours",
        /// The window of the callee's state or province (`compliance.regions`)
        /// is closed now in some candidate zone.
        Region => "region",
        /// The number had its limit of calls in the last 24 h
        /// (`dispatch.max_calls_per_number_per_day`, or its region's).
        Cap => "cap",
        /// Another attempt to the number (any campaign) is still live.
        LiveAttempt => "live_attempt",
        /// The campaign, or all dispatching, was paused at the instant of dialing.
        Paused => "paused",
        /// The API asked to wait (`Retry-After`, backoff), or the claim waited
        /// longer than `dispatch.max_claim_wait_secs` for its turn.
        ServerWait => "server_wait",
    }
);

/// Parses a two-letter region code (`US`, `gb`) into a phonenumber country.
pub fn parse_region(s: &str) -> Result<phonenumber::country::Id, String> {
    s.trim()
        .to_ascii_uppercase()
        .parse::<phonenumber::country::Id>()
        .map_err(|_| format!("{s:?} is not a two-letter region code such as US or GB"))
}

/// Parses a list of outcome names (`no_answer`, `busy`, ...).
pub fn parse_outcomes(items: &[String]) -> Result<Vec<Outcome>, String> {
    let mut out = Vec::new();
    for item in items.iter().flat_map(|s| s.split(',')) {
        let t = item.trim();
        if t.is_empty() {
            continue;
        }
        let o: Outcome = t.parse().map_err(|e: UnknownVariant| e.to_string())?;
        if matches!(o, Outcome::Completed | Outcome::Unknown) {
            return Err(format!(
                "{t} cannot be retried (a completed call is done; an unknown one may have happened)"
            ));
        }
        if !out.contains(&o) {
            out.push(o);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_text() {
        for s in ContactState::ALL {
            assert_eq!(s.as_str().parse::<ContactState>().unwrap(), *s);
        }
        for s in AttemptState::ALL {
            assert_eq!(s.as_str().parse::<AttemptState>().unwrap(), *s);
        }
        for s in Outcome::ALL {
            assert_eq!(s.as_str().parse::<Outcome>().unwrap(), *s);
        }
        for s in CampaignStatus::ALL {
            assert_eq!(s.as_str().parse::<CampaignStatus>().unwrap(), *s);
        }
        for s in HoldReason::ALL {
            assert_eq!(s.as_str().parse::<HoldReason>().unwrap(), *s);
        }
    }

    #[test]
    fn unknown_text_is_an_error_that_lists_the_choices() {
        let err = "Done".parse::<ContactState>().unwrap_err();
        assert!(err.to_string().contains("pending, in_progress"), "{err}");
    }
}
