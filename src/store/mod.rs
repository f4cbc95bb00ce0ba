//! Bodies kept under `-o DIR`: how a URL is named ([`names`]), safe file
//! names and all-or-nothing writes ([`save`]), and the validators `--update` keeps beside each file
//! ([`update`]).

pub mod names;
pub mod save;
pub mod update;
