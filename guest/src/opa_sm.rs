//! A minimal subnet manager for one self-looped OPA port: the SubnGet/SubnSet SMPs (OPA
//! directed-route SMPs with hop count 0, answered by the local port's SMA in the kernel)
//! that take an Init port to Armed and Active — BufferControlTable (credits for VL0, which
//! hfi1 requires before Armed), then PortInfo with a LID, the SM LID, one operational VL and
//! the new logical state. Layouts: `rdma/opa_smi.h` (the SMP), `rdma/opa_port_info.h`
//! (PortInfo), hfi1 `mad.h` (BufferControlTable).

use serde::Serialize;

use crate::umad::{self, Umad, UmadError, OPA_MAD_LEN};

/// OPA management base and SM class version.
const OPA_VERSION: u8 = 0x80;
/// Subnet management, directed route.
const CLASS_SUBN_DR: u8 = 0x81;
const METHOD_GET: u8 = 0x01;
const METHOD_SET: u8 = 0x02;
const METHOD_GET_RESP: u8 = 0x81;
/// Attribute IDs.
const ATTR_PORT_INFO: u16 = 0x0015;
const ATTR_BUFFER_CONTROL: u16 = 0x008A;
/// Directed-route data offset (header, mkey, dr_slid/dlid, paths, reserved).
const DR_DATA: usize = 176;
/// Attribute modifier: one port (bits 31:24), port 1, start of SM configuration (bit 9).
const AM_ONE_PORT: u32 = (1 << 24) | 1;
const AM_START_SM_CFG: u32 = 1 << 9;

/// PortInfo offsets.
mod pi {
    pub const LID: usize = 0;
    pub const PORT_STATES: usize = 19;
    pub const OPERATIONAL_VLS: usize = 25;
    pub const SM_LID: usize = 108;
}
/// BufferControlTable: VL0's dedicated limit.
const BCT_VL0_DEDICATED: usize = 4;

/// Logical port states (PortInfo.PortStates low nibble).
pub mod state {
    /// Init.
    pub const INIT: u8 = 2;
    /// Armed.
    pub const ARMED: u8 = 3;
    /// Active.
    pub const ACTIVE: u8 = 4;
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum SmError {
    /// The umad device's RDMA port is not in sysfs.
    #[error("no RDMA port for the umad device")]
    NoPort,
    /// The port's P_Key table holds no management P_Key.
    #[error("no management P_Key in the port's table")]
    NoMgmtPkey,
    /// The MAD exchange failed.
    #[error("MAD exchange")]
    Umad(#[from] UmadError),
    /// The SMA answered with an error status.
    #[error("{what}: SMA status {status:#06x}")]
    Status {
        /// The step.
        what: &'static str,
        /// The status (direction bit masked).
        status: u16,
    },
    /// The answer is not a GetResp of the expected size.
    #[error("{0}: malformed answer")]
    Malformed(&'static str),
    /// The port did not take the state.
    #[error("{what}: port state {got}, wanted {want}")]
    State {
        /// The step.
        what: &'static str,
        /// Logical state read back.
        got: u8,
        /// Logical state asked for.
        want: u8,
    },
}

/// What the bring-up saw: logical/physical state after each step.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SmReport {
    /// (logical, physical) before.
    pub before: (u8, u8),
    /// VL0 dedicated credits after SubnSet(BufferControlTable).
    pub vl0_credits: u16,
    /// Logical state after SubnSet(PortInfo) Armed.
    pub armed: u8,
    /// Logical state after SubnSet(PortInfo) Active.
    pub active: u8,
    /// (logical, physical) at the end (SubnGet).
    pub after: (u8, u8),
}

/// The SM side of one port.
#[derive(Debug)]
pub struct Sm {
    umad: Umad,
    pkey_index: u16,
    tid: u32,
}

fn be16(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2).and_then(|s| s.try_into().ok()).map_or(0, u16::from_be_bytes)
}

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(off..off + v.len()) {
        d.copy_from_slice(v);
    }
}

fn states(pi: &[u8]) -> (u8, u8) {
    let s = pi.get(pi::PORT_STATES).copied().unwrap_or(0);
    (s & 0xF, s >> 4)
}

impl Sm {
    /// An SM on the umad device `path` (`/dev/infiniband/umadN`).
    pub fn open(path: &str) -> Result<Self, SmError> {
        let name = path.rsplit('/').next().unwrap_or(path);
        let (dev, port) = umad::port_of(name).ok_or(SmError::NoPort)?;
        let pkey_index = umad::mgmt_pkey_index(&dev, port).ok_or(SmError::NoMgmtPkey)?;
        Ok(Self { umad: Umad::open(path)?, pkey_index, tid: 1 })
    }

    /// One SMP: `method` on `attr` with `data` (the attribute, up to the DR data size); returns
    /// the attribute data of the GetResp.
    fn smp(
        &mut self,
        what: &'static str,
        method: u8,
        attr: u16,
        am: u32,
        data: &[u8],
    ) -> Result<Vec<u8>, SmError> {
        let mut m = vec![0u8; OPA_MAD_LEN];
        put(&mut m, 0, &[OPA_VERSION, CLASS_SUBN_DR, OPA_VERSION, method]);
        self.tid = self.tid.wrapping_add(1);
        put(&mut m, 8, &u64::from(self.tid).to_be_bytes());
        put(&mut m, 16, &attr.to_be_bytes());
        put(&mut m, 20, &am.to_be_bytes());
        put(&mut m, 32, &u32::MAX.to_be_bytes()); // dr_slid: permissive
        put(&mut m, 36, &u32::MAX.to_be_bytes()); // dr_dlid: permissive
        put(&mut m, DR_DATA, data);
        let mut ans = self.umad.exchange(&m, self.pkey_index, 2000)?;
        if ans.len() < DR_DATA || ans.get(3) != Some(&METHOD_GET_RESP) {
            return Err(SmError::Malformed(what));
        }
        let status = be16(&ans, 4) & 0x7FFF; // bit 15: direction
        if status != 0 {
            return Err(SmError::Status { what, status });
        }
        Ok(ans.split_off(DR_DATA))
    }

    fn port_info(&mut self) -> Result<Vec<u8>, SmError> {
        self.smp("SubnGet(PortInfo)", METHOD_GET, ATTR_PORT_INFO, AM_ONE_PORT, &[])
    }

    /// Sets the logical state `want` (with LID 1, SM LID 1, one operational VL).
    fn set_state(&mut self, what: &'static str, want: u8, am: u32) -> Result<u8, SmError> {
        let mut p = self.port_info()?;
        put(&mut p, pi::LID, &1u32.to_be_bytes());
        put(&mut p, pi::SM_LID, &1u32.to_be_bytes());
        put(&mut p, pi::OPERATIONAL_VLS, &[1]);
        put(&mut p, pi::PORT_STATES, &[want]); // physical: no change
        let r = self.smp(what, METHOD_SET, ATTR_PORT_INFO, am, &p)?;
        let (got, _) = states(&r);
        if got != want {
            return Err(SmError::State { what, got, want });
        }
        Ok(got)
    }

    /// Init → Armed → Active.
    pub fn bring_up(&mut self) -> Result<SmReport, SmError> {
        let mut rep = SmReport { before: states(&self.port_info()?), ..Default::default() };
        let mut bct = self.smp(
            "SubnGet(BufferControlTable)",
            METHOD_GET,
            ATTR_BUFFER_CONTROL,
            AM_ONE_PORT,
            &[],
        )?;
        put(&mut bct, BCT_VL0_DEDICATED, &0x100u16.to_be_bytes());
        let bct = self.smp(
            "SubnSet(BufferControlTable)",
            METHOD_SET,
            ATTR_BUFFER_CONTROL,
            AM_ONE_PORT,
            bct.get(..132).unwrap_or(&[]),
        )?;
        rep.vl0_credits = be16(&bct, BCT_VL0_DEDICATED);
        rep.armed =
            self.set_state("SubnSet(PortInfo) Armed", state::ARMED, AM_ONE_PORT | AM_START_SM_CFG)?;
        rep.active = self.set_state("SubnSet(PortInfo) Active", state::ACTIVE, AM_ONE_PORT)?;
        rep.after = states(&self.port_info()?);
        Ok(rep)
    }
}
