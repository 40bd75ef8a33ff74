//! `[[fault]]`: the faults a scenario injects, what they do and at which point of a message's
//! receive.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `[[fault]]`: one fault injected at a named point of one message's receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// What happens (required).
    pub kind: FaultKind,
    /// When it happens (required); must be one of [`FaultKind::points`].
    pub at: FaultPoint,
    /// Index (0-based, over all messages in receive order) of the message whose receive the
    /// point belongs to (required; `1..` for `between-messages`).
    pub message: u64,
    /// For `after-packets` (and only there, where it is required): packets of the message
    /// delivered before the fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<u32>,
    /// For memory faults (and only there, where it is required): the buffer, `< buffers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer: Option<u32>,
    /// For `corrupt-kdeth` (and only there, where it is required): the corruption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<Corruption>,
    /// For packet faults only: how many packets, `1..=1024`; see [`Fault::count`].
    #[serde(default, rename = "count", skip_serializing_if = "Option::is_none")]
    pub packet_count: Option<u32>,
}

impl Fault {
    /// Packets affected by a packet fault: `count`, default 1; 0 for other faults.
    pub fn count(&self) -> u32 {
        if self.kind.is_packet() {
            self.packet_count.unwrap_or(1)
        } else {
            0
        }
    }
}

/// What a fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// munmap of the whole buffer.
    Munmap,
    /// Partial munmap: the buffer's upper half is unmapped.
    Shrink,
    /// mremap of the buffer to another VA (the old range is unmapped).
    Mremap,
    /// madvise(MADV_DONTNEED) of the whole buffer.
    Madvise,
    /// munmap, then mmap at the same VA backed by other frames (the stale-cache trap).
    RemapSameVa,
    /// Packets lost on the wire.
    DropPacket,
    /// Packets delivered twice.
    DuplicatePacket,
    /// Each affected packet swaps places with the next packet of the message.
    ReorderPackets,
    /// Packets with a corrupted KDETH header.
    CorruptKdeth,
    /// The memlock headroom is used up: the next pins fail.
    MemlockExhaust,
    /// The next RcvArray write (program or unprogram) is lost.
    RcvarrayWriteLost,
    /// The next receive interrupt is lost.
    InterruptLost,
}

impl FaultKind {
    /// Every kind, in documentation order.
    pub const ALL: [FaultKind; 12] = [
        FaultKind::Munmap,
        FaultKind::Shrink,
        FaultKind::Mremap,
        FaultKind::Madvise,
        FaultKind::RemapSameVa,
        FaultKind::DropPacket,
        FaultKind::DuplicatePacket,
        FaultKind::ReorderPackets,
        FaultKind::CorruptKdeth,
        FaultKind::MemlockExhaust,
        FaultKind::RcvarrayWriteLost,
        FaultKind::InterruptLost,
    ];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Munmap => "munmap",
            FaultKind::Shrink => "shrink",
            FaultKind::Mremap => "mremap",
            FaultKind::Madvise => "madvise",
            FaultKind::RemapSameVa => "remap-same-va",
            FaultKind::DropPacket => "drop-packet",
            FaultKind::DuplicatePacket => "duplicate-packet",
            FaultKind::ReorderPackets => "reorder-packets",
            FaultKind::CorruptKdeth => "corrupt-kdeth",
            FaultKind::MemlockExhaust => "memlock-exhaust",
            FaultKind::RcvarrayWriteLost => "rcvarray-write-lost",
            FaultKind::InterruptLost => "interrupt-lost",
        }
    }

    /// A fault on a registered buffer's memory (needs `buffer`).
    pub fn is_memory(self) -> bool {
        matches!(
            self,
            FaultKind::Munmap
                | FaultKind::Shrink
                | FaultKind::Mremap
                | FaultKind::Madvise
                | FaultKind::RemapSameVa
        )
    }

    /// A fault on the message's packets (takes `count`; only at packet points).
    pub fn is_packet(self) -> bool {
        matches!(
            self,
            FaultKind::DropPacket
                | FaultKind::DuplicatePacket
                | FaultKind::ReorderPackets
                | FaultKind::CorruptKdeth
        )
    }

    /// The points this kind may be injected at.
    pub fn points(self) -> &'static [FaultPoint] {
        if self.is_packet() {
            &[FaultPoint::BeforeFirstPacket, FaultPoint::AfterPackets]
        } else {
            &FaultPoint::ALL
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where in a message's receive a fault is injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultPoint {
    /// After the pages of the message's first window are pinned, before the RcvArray is
    /// programmed.
    AfterPin,
    /// After programming, before the first packet of the message arrives.
    BeforeFirstPacket,
    /// After `packets` packets of the message have been delivered.
    AfterPackets,
    /// During the first TID_FREE batch issued at or after the start of the message.
    DuringTidFree,
    /// In the user library's first free at or after the start of the message, between its
    /// TID_FREE and its re-check of the event word.
    BetweenFreeAndRecheck,
    /// After message `message - 1` completed, before message `message` starts.
    BetweenMessages,
}

impl FaultPoint {
    /// Every point, in receive order.
    pub const ALL: [FaultPoint; 6] = [
        FaultPoint::AfterPin,
        FaultPoint::BeforeFirstPacket,
        FaultPoint::AfterPackets,
        FaultPoint::DuringTidFree,
        FaultPoint::BetweenFreeAndRecheck,
        FaultPoint::BetweenMessages,
    ];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            FaultPoint::AfterPin => "after-pin",
            FaultPoint::BeforeFirstPacket => "before-first-packet",
            FaultPoint::AfterPackets => "after-packets",
            FaultPoint::DuringTidFree => "during-tid-free",
            FaultPoint::BetweenFreeAndRecheck => "between-free-and-recheck",
            FaultPoint::BetweenMessages => "between-messages",
        }
    }
}

impl fmt::Display for FaultPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How `corrupt-kdeth` corrupts the KDETH header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum Corruption {
    /// `"bad-tid"`: a TID index the context does not own.
    #[serde(rename = "bad-tid")]
    BadTid,
    /// `"tidctrl-0"`: TIDCtrl 0 (invalid).
    #[serde(rename = "tidctrl-0")]
    TidCtrl0,
    /// `"tidctrl-3"`: TIDCtrl 3 (invalid).
    #[serde(rename = "tidctrl-3")]
    TidCtrl3,
    /// `"offset-past-end"`: an offset past the end of the TID's buffer.
    #[serde(rename = "offset-past-end")]
    OffsetPastEnd,
}
