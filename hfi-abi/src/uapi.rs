//! The hfi1 user ABI values the driver re-implements (facts §5): events, capability bits, ioctl
//! command numbers. The structures themselves live with the driver, which owns their semantics.

/// HFI1 user software ABI major version.
pub const HFI1_USER_SWMAJOR: u32 = 6;
/// HFI1 user software ABI minor version.
pub const HFI1_USER_SWMINOR: u32 = 3;
/// Maximum subcontexts sharing one user context.
pub const HFI1_MAX_SHARED_CTXTS: u32 = 8;

/// Event bits of the per-(context, subcontext) event word.
pub mod event {
    /// FROZEN.
    pub const FROZEN: u64 = 1 << 0;
    /// LINKDOWN.
    pub const LINKDOWN: u64 = 1 << 1;
    /// LID_CHANGE.
    pub const LID_CHANGE: u64 = 1 << 2;
    /// LMC_CHANGE.
    pub const LMC_CHANGE: u64 = 1 << 3;
    /// SL2VL_CHANGE.
    pub const SL2VL_CHANGE: u64 = 1 << 4;
    /// TID_MMU_NOTIFY: invalidated TIDs are waiting in the TID_INVAL_READ queue.
    pub const TID_MMU_NOTIFY: u64 = 1 << 5;
    /// All defined event bits.
    pub const ALL: u64 = (1 << 6) - 1;
}

/// Capability bits (kernel copy; user copies sit at +[`cap::USER_SHIFT`]).
pub mod cap {
    /// HFI1_CAP_DMA_RTAIL: the chip DMAs the RHQ tail.
    pub const DMA_RTAIL: u64 = 1 << 0;
    /// HFI1_CAP_TID_UNMAP: **set = expected TID caching disabled**.
    pub const TID_UNMAP: u64 = 1 << 10;
    /// Shift of the user copy of the capability bits.
    pub const USER_SHIFT: u32 = 24;
}

/// Command numbers (ioctl nr = cmd + 0xe0, magic 0x1b).
pub mod cmd {
    /// ASSIGN_CTXT.
    pub const ASSIGN_CTXT: u32 = 1;
    /// CTXT_INFO.
    pub const CTXT_INFO: u32 = 2;
    /// USER_INFO.
    pub const USER_INFO: u32 = 3;
    /// TID_UPDATE.
    pub const TID_UPDATE: u32 = 4;
    /// TID_FREE.
    pub const TID_FREE: u32 = 5;
    /// CREDIT_UPD.
    pub const CREDIT_UPD: u32 = 6;
    /// RECV_CTRL.
    pub const RECV_CTRL: u32 = 8;
    /// POLL_TYPE.
    pub const POLL_TYPE: u32 = 9;
    /// ACK_EVENT.
    pub const ACK_EVENT: u32 = 10;
    /// SET_PKEY.
    pub const SET_PKEY: u32 = 11;
    /// CTXT_RESET.
    pub const CTXT_RESET: u32 = 12;
    /// TID_INVAL_READ.
    pub const TID_INVAL_READ: u32 = 13;
    /// GET_VERS.
    pub const GET_VERS: u32 = 14;
    /// ioctl magic.
    pub const IOCTL_MAGIC: u32 = 0x1b;
    /// ioctl nr of a command.
    pub const fn ioctl_nr(cmd: u32) -> u32 {
        cmd + 0xe0
    }
}

/// PCI identity.
pub mod pci {
    /// Intel.
    pub const VENDOR_ID: u16 = 0x8086;
    /// PCI_DEVICE_ID_INTEL0.
    pub const DEVICE_ID_INTEL0: u16 = 0x24f0;
    /// PCI_DEVICE_ID_INTEL1.
    pub const DEVICE_ID_INTEL1: u16 = 0x24f1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_values() {
        assert_eq!(event::TID_MMU_NOTIFY, 0x20);
        assert_eq!(cap::TID_UNMAP << cap::USER_SHIFT, 1 << 34);
        assert_eq!(cmd::ioctl_nr(cmd::TID_INVAL_READ), 0xed);
        assert_eq!(cmd::ioctl_nr(cmd::TID_UPDATE), 0xe4);
    }
}
