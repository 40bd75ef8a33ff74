//! `MockTransport`: register storage, DMA memory in a Vec, a call log, failure switches and
//! injected (late) interrupts, for driver unit tests without the device model. Feature
//! `test-utils`; never in a production build.

use std::collections::{BTreeMap, VecDeque};

use super::{Result, Transport, TransportError};

/// One recorded call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// MMIO read.
    Read(u64),
    /// MMIO write.
    Write(u64, u64),
    /// DMA allocation.
    DmaAlloc(u64),
    /// Interrupt wait.
    WaitIrq(u64),
    /// Reset.
    Reset,
}

/// A scriptable transport.
#[derive(Debug, Default)]
pub struct MockTransport {
    /// Register values; reads of unset offsets return 0.
    pub regs: BTreeMap<u64, u64>,
    /// DMA memory (IOVA = index).
    pub mem: Vec<u8>,
    /// Every call, in order.
    pub calls: Vec<Call>,
    /// Fail MMIO accesses after this many succeeded.
    pub fail_mmio_after: Option<usize>,
    /// Fail the next DMA allocation.
    pub fail_dma_alloc: bool,
    /// Interrupts delivered by successive `wait_irq` calls (a late interrupt is a later entry).
    pub irqs: VecDeque<Vec<u16>>,
    /// Simulated time, advanced by `wait_irq`.
    pub time_ns: u64,
    mmio_ok: usize,
}

impl MockTransport {
    /// A mock with `mem_len` bytes of DMA memory.
    pub fn new(mem_len: usize) -> Self {
        Self { mem: vec![0; mem_len], ..Default::default() }
    }

    fn mmio(&mut self, offset: u64) -> Result<()> {
        if self.fail_mmio_after.is_some_and(|n| self.mmio_ok >= n) {
            return Err(TransportError::MmioFailed { offset });
        }
        self.mmio_ok += 1;
        Ok(())
    }

    fn range(&self, iova: u64, len: usize) -> Result<std::ops::Range<usize>> {
        let start =
            usize::try_from(iova).map_err(|_| TransportError::DmaOutOfRange { iova, len })?;
        let end = start.checked_add(len).filter(|&e| e <= self.mem.len());
        end.map(|e| start..e).ok_or(TransportError::DmaOutOfRange { iova, len })
    }

    /// Writes made to `offset`, in order.
    pub fn writes_to(&self, offset: u64) -> Vec<u64> {
        self.calls
            .iter()
            .filter_map(|c| match c {
                Call::Write(o, v) if *o == offset => Some(*v),
                _ => None,
            })
            .collect()
    }
}

impl Transport for MockTransport {
    fn read32(&mut self, offset: u64) -> Result<u32> {
        let v = self.read64(offset & !7)?;
        Ok(if offset & 4 != 0 { (v >> 32) as u32 } else { v as u32 })
    }
    fn read64(&mut self, offset: u64) -> Result<u64> {
        self.mmio(offset)?;
        self.calls.push(Call::Read(offset));
        Ok(self.regs.get(&offset).copied().unwrap_or(0))
    }
    fn write32(&mut self, offset: u64, value: u32) -> Result<()> {
        let cur = self.regs.get(&(offset & !7)).copied().unwrap_or(0);
        let v = if offset & 4 != 0 {
            (cur & 0xFFFF_FFFF) | (u64::from(value) << 32)
        } else {
            (cur & !0xFFFF_FFFF) | u64::from(value)
        };
        self.write64(offset & !7, v)
    }
    fn write64(&mut self, offset: u64, value: u64) -> Result<()> {
        self.mmio(offset)?;
        self.calls.push(Call::Write(offset, value));
        self.regs.insert(offset, value);
        Ok(())
    }
    fn dma_alloc(&mut self, len: u64, align: u64) -> Result<u64> {
        self.calls.push(Call::DmaAlloc(len));
        if std::mem::take(&mut self.fail_dma_alloc) {
            return Err(TransportError::DmaAllocFailed { len });
        }
        let start = (self.mem.len() as u64).next_multiple_of(align.max(1));
        let end = start.checked_add(len).ok_or(TransportError::DmaAllocFailed { len })?;
        self.mem.resize(end as usize, 0);
        Ok(start)
    }
    fn dma_read(&mut self, iova: u64, buf: &mut [u8]) -> Result<()> {
        let r = self.range(iova, buf.len())?;
        buf.copy_from_slice(self.mem.get(r).unwrap_or(&[]));
        Ok(())
    }
    fn dma_write(&mut self, iova: u64, data: &[u8]) -> Result<()> {
        let r = self.range(iova, data.len())?;
        if let Some(d) = self.mem.get_mut(r) {
            d.copy_from_slice(data);
        }
        Ok(())
    }
    fn wait_irq(&mut self, timeout_ns: u64) -> Result<Vec<u16>> {
        self.calls.push(Call::WaitIrq(timeout_ns));
        self.time_ns += timeout_ns;
        Ok(self.irqs.pop_front().unwrap_or_default())
    }
    fn reset(&mut self) -> Result<()> {
        self.calls.push(Call::Reset);
        self.regs.clear();
        Ok(())
    }
    fn now_ns(&self) -> u64 {
        self.time_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_records_and_fails_on_demand() {
        let mut t = MockTransport::new(0);
        t.write64(0x10, 5).unwrap();
        assert_eq!(t.read64(0x10).unwrap(), 5);
        t.write32(0x14, 1).unwrap();
        assert_eq!(t.read64(0x10).unwrap(), (1 << 32) | 5);
        let a = t.dma_alloc(100, 64).unwrap();
        assert_eq!(a, 0);
        let b = t.dma_alloc(10, 64).unwrap();
        assert_eq!(b, 128);
        t.dma_write(b, &[1, 2]).unwrap();
        let mut r = [0u8; 2];
        t.dma_read(b, &mut r).unwrap();
        assert_eq!(r, [1, 2]);
        assert!(t.dma_read(b + 9, &mut r).is_err());
        t.fail_dma_alloc = true;
        assert!(t.dma_alloc(1, 1).is_err());
        t.irqs.push_back(vec![]);
        t.irqs.push_back(vec![3]);
        assert_eq!(t.wait_irq(10).unwrap(), Vec::<u16>::new());
        assert_eq!(t.wait_irq(10).unwrap(), vec![3]);
        assert_eq!(t.now_ns(), 20);
        t.fail_mmio_after = Some(0);
        assert!(t.read64(0).is_err());
        assert_eq!(t.writes_to(0x10).len(), 2);
    }
}
