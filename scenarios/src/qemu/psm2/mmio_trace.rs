//! QEMU's trace of BAR accesses (`vfio_region_read`/`vfio_region_write`) during the PSM2
//! script: per-block counts, every CSR with hfi1's register name, PIO store statistics.

use std::collections::BTreeMap;

use serde::Serialize;

use super::strace::parse_num;

/// BAR accesses of the script's phase, from QEMU's trace.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MmioSummary {
    /// Trace lines parsed.
    pub accesses: u64,
    /// Reads and writes per block (`[reads, writes]`).
    pub by_block: BTreeMap<String, [u64; 2]>,
    /// Every CSR (not PIO, not RcvArray) touched: name, reads, writes, last value written.
    pub registers: Vec<RegisterUse>,
    /// PIO stores: count, bytes, through the SOP alias, per send context.
    pub pio: PioUse,
    /// RcvArray writes.
    pub rcv_array_writes: u64,
    /// Seconds (QEMU's trace clock) from the first to the last traced access.
    pub span_s: f64,
}

/// One CSR's use.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RegisterUse {
    /// BAR0 offset (hex).
    pub offset: String,
    /// Name (hfi1's chip_registers.h) with the context or engine index, or the block.
    pub name: String,
    /// Reads.
    pub reads: u64,
    /// Writes.
    pub writes: u64,
    /// The last value written (hex), if any.
    pub last_written: Option<String>,
    /// The first distinct values written (hex, at most 8), in order.
    pub values_written: Vec<String>,
    /// The last value read (hex), if any.
    pub last_read: Option<String>,
}

/// PIO stores.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PioUse {
    /// Stores.
    pub stores: u64,
    /// Bytes stored.
    pub bytes: u64,
    /// Stores through the SOP alias (second half of the PIO space).
    pub sop_stores: u64,
    /// Stores per send context (window).
    pub per_context: BTreeMap<u32, u64>,
    /// Store sizes seen (bytes → count).
    pub sizes: BTreeMap<u32, u64>,
    /// The first stores (offset, size, value), in order.
    pub first: Vec<String>,
    /// Packets started (a store to the first quadword of a block through the SOP alias).
    pub packets: u64,
    /// PBC values (the SOP block's first quadword, hex) and how often each was seen.
    pub pbcs: BTreeMap<String, u64>,
    /// Stores to a lower address than the store before them in the same window, block
    /// starts excepted (the CPU's stores may reach the device out of address order).
    pub out_of_order_stores: u64,
    /// Seconds (QEMU's trace clock, from the first traced access) of the first and last store.
    pub first_store_s: Option<f64>,
    /// See `first_store_s`.
    pub last_store_s: Option<f64>,
}

/// One traced BAR access: (write, region, offset, value, size).
pub(crate) fn parse_trace_line(line: &str) -> Option<(bool, u32, u64, u64, u32)> {
    let write = if line.contains("vfio_region_write") {
        true
    } else if line.contains("vfio_region_read") {
        false
    } else {
        return None;
    };
    let i = line.find(":region")?;
    let rest = line.get(i + 7..)?;
    let (region, rest) = rest.split_once('+')?;
    let region: u32 = region.parse().ok()?;
    let nums: Vec<&str> = rest
        .split(|c: char| c == ',' || c == ')' || c == '=' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let off = parse_num(nums.first()?)?;
    // write: (name:regionN+off, data, size); read: (name:regionN+off, size) = data.
    let (value, size) = if write {
        (parse_num(nums.get(1)?)?, parse_num(nums.get(2)?)?)
    } else {
        (parse_num(nums.get(2)?)?, parse_num(nums.get(1)?)?)
    };
    Some((write, region, off, value, size as u32))
}

/// The time stamp `-msg timestamp=on` puts before each line of QEMU's log: QEMU 11 writes
/// `2026-01-02T11:14:45.875191Z event …` (seconds of the day are returned), older ones
/// `PID@SECONDS.MICROS:event …`.
pub(crate) fn trace_time(line: &str) -> Option<f64> {
    let first = line.split_whitespace().next()?;
    if let Some(iso) = first.strip_suffix('Z') {
        let (_, clock) = iso.split_once('T')?;
        let mut f = clock.split(':');
        let h: f64 = f.next()?.parse().ok()?;
        let m: f64 = f.next()?.parse().ok()?;
        let s: f64 = f.next()?.parse().ok()?;
        return Some(h * 3600.0 + m * 60.0 + s);
    }
    let (head, _) = line.split_once(':')?;
    let (_, t) = head.split_once('@')?;
    t.parse().ok()
}

/// A CSR's name: hfi1's register names for the per-context and per-engine blocks PSM2 and
/// hfi1's context set-up use, else the block and offset.
pub fn csr_name(off: u64) -> String {
    use hfi_abi::bar0::*;
    let within = |base: u64, stride: u64, n: u64| {
        (off >= base && off < base + stride * n)
            .then(|| ((off - base) / stride, (off - base) % stride))
    };
    if let Some((c, r)) = within(TXE + 0x10_0000, 0x100, 160) {
        let n = match r {
            0x00 => "SEND_CTXT_CTRL",
            0x08 => "SEND_CTXT_STATUS",
            0x10 => "SEND_CTXT_CREDIT_CTRL",
            0x18 => "SEND_CTXT_CREDIT_STATUS",
            0x20 => "SEND_CTXT_CREDIT_RETURN_ADDR",
            0x28 => "SEND_CTXT_CREDIT_FORCE",
            0x40 => "SEND_CTXT_ERR_STATUS",
            0x48 => "SEND_CTXT_ERR_MASK",
            0x50 => "SEND_CTXT_ERR_CLEAR",
            0x80 => "SEND_CTXT_CHECK_ENABLE",
            0x88 => "SEND_CTXT_CHECK_VL",
            0x90 => "SEND_CTXT_CHECK_JOB_KEY",
            0x98 => "SEND_CTXT_CHECK_PARTITION_KEY",
            0xA0 => "SEND_CTXT_CHECK_SLID",
            0xA8 => "SEND_CTXT_CHECK_OPCODE",
            _ => return format!("txe_ctxt[{c}]+{r:#x}"),
        };
        return format!("{n}[sc {c}]");
    }
    if let Some((e, r)) = within(TXE + 0x20_0000, 0x100, 16) {
        let n = match r {
            0x00 => "SEND_DMA_CTRL",
            0x08 => "SEND_DMA_STATUS",
            0x10 => "SEND_DMA_BASE_ADDR",
            0x18 => "SEND_DMA_LEN_GEN",
            0x20 => "SEND_DMA_TAIL",
            0x28 => "SEND_DMA_HEAD",
            0x30 => "SEND_DMA_HEAD_ADDR",
            0x38 => "SEND_DMA_PRIORITY_THLD",
            0x40 => "SEND_DMA_IDLE_CNT",
            0x48 => "SEND_DMA_RELOAD_CNT",
            0x50 => "SEND_DMA_DESC_CNT",
            0x58 => "SEND_DMA_DESC_FETCHED_CNT",
            0x60 => "SEND_DMA_ENG_ERR_STATUS",
            0x68 => "SEND_DMA_ENG_ERR_MASK",
            0x70 => "SEND_DMA_ENG_ERR_CLEAR",
            _ => return format!("txe_sdma[{e}]+{r:#x}"),
        };
        return format!("{n}[engine {e}]");
    }
    if let Some((c, r)) = within(RXE + 0x30_0000, 0x1000, 160) {
        let n = match r {
            0x00 => "RCV_HDR_TAIL".to_string(),
            0x08 => "RCV_HDR_HEAD".to_string(),
            0x18 => "RCV_EGR_INDEX_HEAD".to_string(),
            r if (0x800..0x800 + 32 * 8).contains(&r) => {
                format!("RCV_TID_FLOW_TABLE[{}]", (r - 0x800) / 8)
            }
            _ => return format!("rxe_uctxt[{c}]+{r:#x}"),
        };
        return format!("{n}[ctxt {c}]");
    }
    if let Some((c, r)) = within(RXE + 0x10_0000, 0x100, 160) {
        let n = match r {
            0x00 => "RCV_CTXT_CTRL",
            0x08 => "RCV_CTXT_STATUS",
            0x10 => "RCV_EGR_CTRL",
            0x18 => "RCV_TID_CTRL",
            0x20 => "RCV_KEY_CTRL",
            0x28 => "RCV_HDR_ADDR",
            0x30 => "RCV_HDR_CNT",
            0x38 => "RCV_HDR_ENT_SIZE",
            0x40 => "RCV_HDR_SIZE",
            0x48 => "RCV_HDR_TAIL_ADDR",
            0x50 => "RCV_AVAIL_TIME_OUT",
            0x58 => "RCV_HDR_OVFL_CNT",
            _ => return format!("rxe_kctxt[{c}]+{r:#x}"),
        };
        return format!("{n}[ctxt {c}]");
    }
    let named = [
        (CCE, "CCE_REVISION"),
        (CCE + 0x11_0800, "CCE_INT_STATUS"),
        (TXE, "SEND_CTRL"),
        (TXE + 0x38, "SEND_PIO_INIT_CTXT"),
        (RXE, "RCV_CTRL"),
        (RXE + 0x28, "RCV_BTH_QP"),
    ];
    if let Some((_, n)) = named.iter().find(|(o, _)| *o == off) {
        return (*n).to_string();
    }
    if (CCE + 0x11_0800..CCE + 0x11_0800 + 16 * 8).contains(&off) {
        return format!("CCE_INT_STATUS[{}]", (off - CCE - 0x11_0800) / 8);
    }
    if (CCE + 0x11_0900..CCE + 0x11_0900 + 16 * 8).contains(&off) {
        return format!("CCE_INT_MASK[{}]", (off - CCE - 0x11_0900) / 8);
    }
    if (CCE + 0x11_0A00..CCE + 0x11_0A00 + 16 * 8).contains(&off) {
        return format!("CCE_INT_CLEAR[{}]", (off - CCE - 0x11_0A00) / 8);
    }
    let block = if off >= TXE {
        "txe"
    } else if off >= RXE {
        "rxe"
    } else if off >= DC_TOP {
        "dc"
    } else if off >= MISC {
        "misc"
    } else if off >= ASIC {
        "asic"
    } else {
        "cce"
    };
    format!(
        "{block}+{:#x}",
        off - [TXE, RXE, DC_TOP, MISC, ASIC, CCE].into_iter().find(|b| off >= *b).unwrap_or(0)
    )
}

pub(crate) fn block_of(off: u64) -> &'static str {
    use hfi_abi::bar0::*;
    if off >= TXE_PIO_SEND {
        "pio"
    } else if off >= TXE + 0x20_0000 {
        "txe_sdma"
    } else if off >= TXE + 0x10_0000 {
        "txe_ctxt"
    } else if off >= TXE {
        "txe"
    } else if off >= RXE + 0x30_0000 {
        "rxe_uctxt"
    } else if off >= RCV_ARRAY.base {
        "rcv_array"
    } else if off >= RXE + 0x10_0000 {
        "rxe_kctxt"
    } else if off >= RXE {
        "rxe"
    } else if off >= DC_TOP {
        "dc"
    } else if off >= MISC {
        "misc"
    } else if off >= ASIC {
        "asic"
    } else {
        "cce"
    }
}

/// Summarizes QEMU's `vfio_region_read`/`vfio_region_write` trace (BAR0 only).
pub fn summarize_trace(text: &str) -> MmioSummary {
    use hfi_abi::bar0::*;
    let mut m = MmioSummary::default();
    let mut regs: BTreeMap<u64, RegisterUse> = BTreeMap::new();
    let mut t0 = None;
    let mut prev_pio: BTreeMap<u64, u64> = BTreeMap::new();
    for line in text.lines() {
        let Some((write, region, off, value, size)) = parse_trace_line(line) else { continue };
        if region != 0 {
            continue;
        }
        let t = trace_time(line).map(|t| t - *t0.get_or_insert(t));
        if let Some(t) = t {
            m.span_s = t;
        }
        m.accesses += 1;
        let block = block_of(off);
        let e = m.by_block.entry(block.to_string()).or_default();
        if let Some(slot) = e.get_mut(usize::from(write)) {
            *slot += 1;
        }
        match block {
            "pio" => {
                let p = &mut m.pio;
                if write {
                    p.stores += 1;
                    p.bytes += u64::from(size);
                    *p.sizes.entry(size).or_default() += 1;
                    let rel = off - TXE_PIO_SEND;
                    let window = (rel % PIO_SOP_DISTANCE) / 0x1_0000;
                    if rel >= PIO_SOP_DISTANCE {
                        p.sop_stores += 1;
                        if rel % 64 == 0 {
                            p.packets += 1;
                            *p.pbcs.entry(format!("{value:#x}")).or_default() += 1;
                        }
                    }
                    let in_window = rel % 0x1_0000;
                    if prev_pio.insert(window, in_window).is_some_and(|prev| in_window < prev)
                        && in_window % 64 != 0
                    {
                        p.out_of_order_stores += 1;
                    }
                    p.first_store_s = p.first_store_s.or(t);
                    p.last_store_s = t.or(p.last_store_s);
                    *p.per_context.entry(window as u32).or_default() += 1;
                    if p.first.len() < 64 {
                        p.first.push(format!("{off:#x} {size} {value:#018x}"));
                    }
                }
            }
            "rcv_array" if off < RCV_ARRAY.base + 8 * 65536 => {
                if write {
                    m.rcv_array_writes += 1;
                }
            }
            _ => {
                let r = regs.entry(off & !7).or_insert_with(|| RegisterUse {
                    offset: format!("{:#x}", off & !7),
                    name: csr_name(off & !7),
                    ..Default::default()
                });
                if write {
                    r.writes += 1;
                    let v = format!("{value:#x}");
                    if r.values_written.len() < 8 && !r.values_written.contains(&v) {
                        r.values_written.push(v.clone());
                    }
                    r.last_written = Some(v);
                } else {
                    r.reads += 1;
                    r.last_read = Some(format!("{value:#x}"));
                }
            }
        }
    }
    m.registers = regs.into_values().collect();
    m
}
