//! The system's named parts, shared by every layer from the profile up: its three services
//! (`ServiceRole`), where process and knob faults act, and the three hops between them
//! (`Hop`), where a proxy sits. Plain names; nothing here starts or reaches anything.

/// A service of the system, where process and knob faults act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceRole {
    Coordinator,
    External,
    Ledger,
}

impl ServiceRole {
    pub const ALL: [ServiceRole; 3] = [
        ServiceRole::Coordinator,
        ServiceRole::External,
        ServiceRole::Ledger,
    ];

    /// The role's name: `bank-service <role>`, and its log and data files.
    pub const fn as_str(self) -> &'static str {
        match self {
            ServiceRole::Coordinator => "coordinator",
            ServiceRole::External => "external",
            ServiceRole::Ledger => "ledger",
        }
    }

    pub fn from_name(name: &str) -> Option<ServiceRole> {
        ServiceRole::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// A hop of the system: where a proxy sits, and where toxic and down faults act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hop {
    /// The harness → the coordinator.
    Gateway,
    /// The coordinator → the external institution.
    External,
    /// The coordinator → the ledger.
    Ledger,
}

impl Hop {
    pub const ALL: [Hop; 3] = [Hop::Gateway, Hop::External, Hop::Ledger];

    /// The hop's name, which is also its proxy's name in the Toxiproxy server.
    pub const fn as_str(self) -> &'static str {
        match self {
            Hop::Gateway => "gateway",
            Hop::External => "external",
            Hop::Ledger => "ledger",
        }
    }

    pub fn from_name(name: &str) -> Option<Hop> {
        Hop::ALL.into_iter().find(|h| h.as_str() == name)
    }
}
