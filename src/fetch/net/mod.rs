//! The connection layer under ureq: our own TCP and TLS connectors
//! (`transport`, `tls`, `verify`), sized connection buffers
//! (`buffers`) that check response framing as the bytes arrive
//! (`framing`), the per-thread record of each exchange (`exchange`),
//! a caching resolver (`resolver`), proxy choice (`proxy`), SOCKS5
//! (`socks`), idle connections kept per worker (`reuse`) and the one
//! shared agent that ties them together (`agent`).

pub mod agent;
pub mod buffers;
pub mod exchange;
pub mod framing;
pub mod proxy;
pub mod resolver;
pub mod reuse;
pub mod socket;
pub mod socks;
pub mod tls;
pub mod transport;
pub mod verify;
