//! The link: the DC's 8051 ([`dc8051`]), the DCC logical link state ([`dcc`]), the LCB
//! configuration ([`lcb`]), and the link partner: a peer that turns messages into the packet
//! stream a PSM sender would emit ([`peer`]) and a remote node's peer behind a channel
//! ([`remote`]).

pub mod dc8051;
pub mod dcc;
pub mod lcb;
pub mod peer;
pub mod remote;
