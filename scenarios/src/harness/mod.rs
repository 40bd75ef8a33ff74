//! The regression harness: scenario files ([`scenario`]) run under each of their policies and
//! judged ([`runner`], `hfi-sim run`), the historical-bug catalog ([`catalog`],
//! `hfi-sim catalog`), and the demo's in-process rows ([`demo`], `hfi-sim demo`).

pub mod catalog;
pub mod demo;
pub mod runner;
pub mod scenario;
