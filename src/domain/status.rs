//! Every stored state as an enum: where an application stands, a member's standing, a mail's
//! delivery, and the kind of a release.

crate::text_enum! {
    /// Where an application stands.
    pub enum ApplicationStatus ("application status") {
        AwaitingConfirmation = "awaiting-confirmation",
        InReview = "in-review",
        Recommended = "recommended",
        Approved = "approved",
        Rejected = "rejected",
        Withdrawn = "withdrawn",
    }
}

impl ApplicationStatus {
    pub fn label(self) -> &'static str {
        match self {
            Self::AwaitingConfirmation => "Waiting for the alias to be confirmed",
            Self::InReview => "In review",
            Self::Recommended => "Recommended, waiting for final approval",
            Self::Approved => "Approved",
            Self::Rejected => "Not approved",
            Self::Withdrawn => "Withdrawn",
        }
    }

    /// Not yet decided: the applicant may still edit or withdraw.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Self::AwaitingConfirmation | Self::InReview | Self::Recommended
        )
    }

    /// The undecided states, for queries.
    pub fn open() -> Vec<Self> {
        Self::ALL.iter().copied().filter(|s| s.is_open()).collect()
    }
}

crate::text_enum! {
    /// A member's standing: only an active member receives embargoed mail.
    pub enum MemberStatus ("member status") {
        Active = "active",
        Suspended = "suspended",
        Removed = "removed",
    }
}

crate::text_enum! {
    /// Where an outbox row stands. `Held` is mail kept back on purpose (a cancelled or public
    /// release, a member no longer active): not a delivery failure, and nobody is alerted.
    pub enum OutboxStatus ("outbox status") {
        Queued = "queued",
        Sending = "sending",
        Sent = "sent",
        Failed = "failed",
        Held = "held",
    }
}

crate::text_enum! {
    /// How a release is timed: on Patch Tuesday, out of band for a 0-day, or on an upstream's
    /// embargo lift.
    pub enum ReleaseKind ("release kind") {
        PatchTuesday = "patch-tuesday",
        ZeroDay = "zero-day",
        ThirdParty = "third-party",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_as_itself_and_unknown_words_are_errors() {
        for s in ApplicationStatus::ALL {
            assert_eq!(s.as_str().parse::<ApplicationStatus>(), Ok(*s));
        }
        for s in OutboxStatus::ALL {
            assert_eq!(s.as_str().parse::<OutboxStatus>(), Ok(*s));
        }
        let error = "withdrawn ".parse::<ApplicationStatus>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "\"withdrawn \" is not a known application status"
        );
        assert!("Active".parse::<MemberStatus>().is_err());
        assert!("0day".parse::<ReleaseKind>().is_err());
    }
}
