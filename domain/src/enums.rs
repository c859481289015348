use std::fmt;
use std::str::FromStr;

/// An enum whose variants have fixed wire names and a fixed order (the order of the GraphQL enum),
/// stored as bits of a mask so that "does this destination take HIGH alerts" is one SQL expression.
pub trait WireEnum: Copy + Eq + Ord + 'static {
    /// Every variant, in enum order.
    const ALL: &'static [Self];
    /// What the variant is called in GraphQL, in the payload and in Terraform.
    fn as_str(self) -> &'static str;

    /// The variant's bit in a mask.
    fn bit(self) -> i32 {
        let index = Self::ALL
            .iter()
            .position(|v| *v == self)
            .expect("every variant is listed in ALL");
        1 << index
    }

    /// The mask of a list of variants; duplicates collapse.
    fn mask_of(values: &[Self]) -> i32 {
        values.iter().fold(0, |mask, v| mask | v.bit())
    }

    /// The variants in a mask, in enum order and without duplicates.
    fn from_mask(mask: i32) -> Vec<Self> {
        Self::ALL
            .iter()
            .copied()
            .filter(|v| mask & v.bit() != 0)
            .collect()
    }

    /// The mask with every variant set.
    fn all_mask() -> i32 {
        Self::mask_of(Self::ALL)
    }

    /// Sorted in enum order, duplicates removed: how lists of these are always returned.
    fn normalize(values: &[Self]) -> Vec<Self> {
        Self::from_mask(Self::mask_of(values))
    }

    fn parse_wire(s: &str) -> Result<Self, UnknownVariant> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownVariant {
                value: s.to_owned(),
                allowed: Self::ALL.iter().map(|v| v.as_str()).collect(),
            })
    }
}

/// A string that names no variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {value:?}: must be one of {}", allowed.join(", "))]
pub struct UnknownVariant {
    pub value: String,
    pub allowed: Vec<&'static str>,
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[derive(serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl WireEnum for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];
            fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire),+
                }
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
                Self::parse_wire(s)
            }
        }
    };
}

wire_enum!(
    /// An alert's severity, lowest first.
    Severity {
        Info => "INFO",
        Low => "LOW",
        Medium => "MEDIUM",
        High => "HIGH",
        Critical => "CRITICAL",
    }
);

wire_enum!(
    /// What raised an alert, as Panther names it.
    AlertType {
        Rule => "RULE",
        ScheduledRule => "SCHEDULED_RULE",
        Policy => "POLICY",
        RuleError => "RULE_ERROR",
        ScheduledRuleError => "SCHEDULED_RULE_ERROR",
        SystemError => "SYSTEM_ERROR",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_round_trip_in_enum_order_without_duplicates() {
        let mixed = [Severity::Critical, Severity::Info, Severity::Critical];
        assert_eq!(
            Severity::normalize(&mixed),
            vec![Severity::Info, Severity::Critical]
        );
        assert_eq!(Severity::from_mask(Severity::all_mask()), Severity::ALL);
        assert_eq!(AlertType::from_mask(0), Vec::<AlertType>::new());
    }

    #[test]
    fn wire_names_parse_and_unknown_names_list_the_choices() {
        assert_eq!("SCHEDULED_RULE".parse(), Ok(AlertType::ScheduledRule));
        let err = "SEVERE".parse::<Severity>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown value \"SEVERE\": must be one of INFO, LOW, MEDIUM, HIGH, CRITICAL"
        );
    }
}
