//! Bodies kept under `-o DIR`: safe file names and all-or-nothing writes
//! ([`save`]), and the validators `--update` keeps beside each file
//! ([`update`]).

pub mod save;
pub mod update;
