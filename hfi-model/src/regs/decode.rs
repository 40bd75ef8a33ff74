//! Decoding: offset → register lookup per block ([`BlockDecoder`], built once from the tables)
//! and the BAR0 map that says which block, context or region an offset falls in
//! ([`Decoders::bar0`]).

use std::collections::BTreeMap;

use hfi_abi::bar0;

use crate::regs::csr_file::CsrFile;
use crate::regs::{chip, RegSpec, GLOBAL_REGS, KERNEL_REGS, USER_REGS};

/// A decoded register: which spec, which element, and its storage slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Index into the block's spec table.
    pub spec: u16,
    /// Element of an array (0 for single registers).
    pub elt: u16,
    /// Storage slot in the block's value vector.
    pub slot: u16,
}

/// Table error found when building a decoder (a bug in the tables, caught by tests).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// Two registers decode to the same offset.
    #[error("Registers {0} and {1} overlap at offset {2:#x}")]
    Overlap(&'static str, &'static str, u64),
    /// A register offset is not 8-byte aligned or lies outside its block.
    #[error("Register {0} is misplaced at offset {1:#x}")]
    Misplaced(&'static str, u64),
}

/// Offset → slot lookup for one block, built once from its table.
#[derive(Clone, Debug)]
pub struct BlockDecoder {
    map: BTreeMap<u64, Slot>,
    slots: usize,
}

impl BlockDecoder {
    /// Builds the decoder; `block_len` bounds in-block offsets (None for absolute offsets).
    pub fn new(table: &'static [RegSpec], block_len: Option<u64>) -> Result<Self, TableError> {
        let mut map = BTreeMap::new();
        let mut slot = 0usize;
        for (si, spec) in table.iter().enumerate() {
            for elt in 0..spec.count {
                let off = spec.offset + u64::from(elt) * spec.stride;
                if off % 8 != 0 || block_len.is_some_and(|l| off + 8 > l) {
                    return Err(TableError::Misplaced(spec.name, off));
                }
                let s = Slot { spec: si as u16, elt: elt as u16, slot: slot as u16 };
                if let Some(prev) = map.insert(off, s) {
                    let prev_name = table.get(usize::from(prev.spec)).map_or("?", |p| p.name);
                    return Err(TableError::Overlap(prev_name, spec.name, off));
                }
                slot += 1;
            }
        }
        Ok(Self { map, slots: slot })
    }

    /// The register at an 8-byte aligned offset.
    pub fn decode(&self, off: u64) -> Option<Slot> {
        self.map.get(&off).copied()
    }

    /// Number of storage slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Reset values of every slot, in slot order.
    pub fn reset_values(&self, table: &[RegSpec]) -> Vec<u64> {
        let mut v = vec![0u64; self.slots];
        for s in self.map.values() {
            if let (Some(dst), Some(spec)) =
                (v.get_mut(usize::from(s.slot)), table.get(usize::from(s.spec)))
            {
                *dst = spec.reset;
            }
        }
        v
    }

    /// Every `(offset, slot)` pair (tests, register dumps).
    pub fn iter(&self) -> impl Iterator<Item = (u64, Slot)> + '_ {
        self.map.iter().map(|(o, s)| (*o, *s))
    }
}

/// The block decoders.
#[derive(Clone, Debug)]
pub struct Decoders {
    /// Global CSRs.
    pub global: BlockDecoder,
    /// Chip CSRs of the hfi1 probe (ASIC, MISC, DC, TXE; [`crate::regs::chip::CHIP_REGS`]).
    pub chip: BlockDecoder,
    /// Kernel per-context CSRs.
    pub kernel: BlockDecoder,
    /// User per-context CSRs.
    pub user: BlockDecoder,
}

impl Decoders {
    /// Builds all decoders from the static tables.
    pub fn new() -> Result<Self, TableError> {
        Ok(Self {
            global: BlockDecoder::new(GLOBAL_REGS, None)?,
            chip: BlockDecoder::new(chip::CHIP_REGS, None)?,
            kernel: BlockDecoder::new(KERNEL_REGS, Some(bar0::RXE_PER_CONTEXT_KERNEL.stride))?,
            user: BlockDecoder::new(USER_REGS, Some(bar0::RXE_PER_CONTEXT_USER.stride))?,
        })
    }

    /// Decodes an 8-byte aligned BAR0 register offset for a device with `num_contexts`
    /// receive contexts and `rcv_array_cnt` RcvArray entries.
    pub fn bar0(&self, reg_off: u64, num_contexts: u32, rcv_array_cnt: u32) -> Target {
        let n = u64::from(num_contexts);
        let ra = bar0::RCV_ARRAY.with_count(u64::from(rcv_array_cnt));
        if let Some((i, _)) = ra.index(reg_off) {
            return Target::RcvArray(i as u32);
        }
        if let Some((c, o)) = bar0::RXE_PER_CONTEXT_KERNEL.with_count(n).index(reg_off) {
            if let Some(s) = self.kernel.decode(o) {
                return Target::Kernel(c as u32, s);
            }
        } else if let Some((c, o)) = bar0::RXE_PER_CONTEXT_USER.with_count(n).index(reg_off) {
            if let Some(s) = self.user.decode(o) {
                return Target::User(c as u32, s);
            }
        } else if reg_off >= bar0::TXE_PIO_SEND {
            return Target::Pio;
        } else if let Some(s) = self.global.decode(reg_off) {
            return Target::Global(s);
        } else if let Some(s) = self.chip.decode(reg_off) {
            return Target::Chip(s);
        }
        if CsrFile::in_generic_range(reg_off, rcv_array_cnt) {
            Target::Generic
        } else {
            Target::Unknown
        }
    }
}

/// What a BAR0 offset decodes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A global CSR.
    Global(Slot),
    /// A chip CSR ([`chip::CHIP_REGS`]).
    Chip(Slot),
    /// A kernel per-context CSR of a context.
    Kernel(u32, Slot),
    /// A user per-context CSR of a context.
    User(u32, Slot),
    /// A RcvArray entry.
    RcvArray(u32),
    /// The PIO send space.
    Pio,
    /// No table decodes it, but it lies in a UC CSR range: the generic CSR file.
    Generic,
    /// Nothing: reads 0, writes dropped.
    Unknown,
}
