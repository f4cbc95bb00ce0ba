//! Bodies kept under `-o DIR`: how a URL is named ([`names`]), safe file
//! names and all-or-nothing writes ([`save`]), the validators `--update`
//! keeps beside each file ([`update`]), and the part files of cut
//! downloads ([`resume`]).

pub mod names;
pub mod resume;
pub mod save;
pub mod update;
