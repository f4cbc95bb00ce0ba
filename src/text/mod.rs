//! Text that is shown: control characters escaped for the terminal
//! ([`escape`]) and credentials kept out ([`redact`]). Leaves that every
//! stage may use.

pub mod escape;
pub mod redact;
