//! Normalisation of the API's inconsistent status strings (`no-answer`,
//! `no_answer`, `Failed`, `voicemail_detected`, ...) into the daemon's
//! [`Outcome`], or "not final yet".

use crate::domain::Outcome;

/// What a call log's status means for the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    /// The call ended with this outcome (never [`Outcome::Unknown`]).
    Final(Outcome),
    /// Queued, ringing, in progress, or a status this code does not know:
    /// the log must be read again later.
    NotFinal,
}

impl CallStatus {
    /// The outcome, when the status is final.
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            Self::Final(o) => Some(o),
            Self::NotFinal => None,
        }
    }

    /// True for [`CallStatus::Final`].
    pub fn is_final(self) -> bool {
        matches!(self, Self::Final(_))
    }
}

/// Maps a raw `call_status` (and the log's `is_voicemail` flag) to a [`CallStatus`].
///
/// Matching ignores case and treats `-`, `_` and spaces alike. A final status
/// with `is_voicemail == true` is a voicemail; a status that is not final stays
/// not final whatever the flag says (the call is still going on).
/// [`Outcome::Unknown`] is never produced: an unknown text is "not final".
pub fn normalise_status(raw: Option<&str>, is_voicemail: bool) -> CallStatus {
    let Some(raw) = raw else {
        return CallStatus::NotFinal;
    };
    let key = canonical(raw);
    let outcome = match key.as_str() {
        "completed" | "complete" => Outcome::Completed,
        "no_answer" | "noanswer" | "unanswered" | "not_answered" => Outcome::NoAnswer,
        "busy" => Outcome::Busy,
        "failed" | "failure" | "error" => Outcome::Failed,
        "voicemail" | "voicemail_detected" | "voice_mail" | "machine" | "answering_machine" => {
            Outcome::Voicemail
        }
        "cancelled" | "canceled" => Outcome::Cancelled,
        _ => return CallStatus::NotFinal,
    };
    if is_voicemail {
        CallStatus::Final(Outcome::Voicemail)
    } else {
        CallStatus::Final(outcome)
    }
}

/// Lower case, with every run of `-`, `_` and whitespace turned into one `_`
/// and none at either end.
fn canonical(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending_sep = false;
    for c in raw.trim().chars() {
        if c == '-' || c == '_' || c.is_whitespace() {
            pending_sep = !out.is_empty();
        } else {
            if pending_sep {
                out.push('_');
                pending_sep = false;
            }
            out.extend(c.to_lowercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_final_status_maps_to_its_outcome() {
        let table: &[(&str, Outcome)] = &[
            ("completed", Outcome::Completed),
            ("Completed", Outcome::Completed),
            (" COMPLETE ", Outcome::Completed),
            ("no_answer", Outcome::NoAnswer),
            ("no-answer", Outcome::NoAnswer),
            ("noanswer", Outcome::NoAnswer),
            ("No Answer", Outcome::NoAnswer),
            ("no  -  answer", Outcome::NoAnswer),
            ("unanswered", Outcome::NoAnswer),
            ("busy", Outcome::Busy),
            ("BUSY", Outcome::Busy),
            ("failed", Outcome::Failed),
            ("Failed", Outcome::Failed),
            ("failure", Outcome::Failed),
            ("error", Outcome::Failed),
            ("voicemail", Outcome::Voicemail),
            ("voicemail_detected", Outcome::Voicemail),
            ("Voicemail-Detected", Outcome::Voicemail),
            ("machine", Outcome::Voicemail),
            ("cancelled", Outcome::Cancelled),
            ("canceled", Outcome::Cancelled),
        ];
        for (raw, want) in table {
            assert_eq!(
                normalise_status(Some(raw), false),
                CallStatus::Final(*want),
                "{raw}"
            );
        }
    }

    #[test]
    fn statuses_still_in_flight_or_unknown_are_not_final() {
        for raw in [
            "queued",
            "ringing",
            "in-progress",
            "in_progress",
            "In Progress",
            "pending",
            "Pending",
            "Skipped",
            "initiated",
            "",
            "   ",
            "-",
            "answered",
            "completed!",
        ] {
            assert_eq!(
                normalise_status(Some(raw), false),
                CallStatus::NotFinal,
                "{raw:?}"
            );
            assert_eq!(
                normalise_status(Some(raw), true),
                CallStatus::NotFinal,
                "{raw:?}"
            );
        }
        assert_eq!(normalise_status(None, false), CallStatus::NotFinal);
        assert_eq!(normalise_status(None, true), CallStatus::NotFinal);
    }

    #[test]
    fn the_voicemail_flag_turns_a_final_status_into_voicemail() {
        for raw in ["completed", "no-answer", "failed", "voicemail"] {
            assert_eq!(
                normalise_status(Some(raw), true),
                CallStatus::Final(Outcome::Voicemail),
                "{raw}"
            );
        }
    }

    #[test]
    fn unknown_is_never_produced() {
        for raw in ["unknown", "Unknown", "UNKNOWN"] {
            assert_eq!(normalise_status(Some(raw), false), CallStatus::NotFinal);
        }
    }
}
