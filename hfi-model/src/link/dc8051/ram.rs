//! The 8051's data RAM: the configuration fields the host commands load and read (at their
//! [`hfi_abi::dc::config::address`]) and the host's RAM access path
//! (DC_DC8051_CFG_RAM_ACCESS_*: control, status, WR_DATA with auto-increment, RD_DATA).

use hfi_abi::dc::{self, config};

use super::Dc8051;
use crate::counters::Counters;

impl Dc8051 {
    /// A general configuration field the firmware maintains.
    pub(super) fn field(&self, id: u64) -> u32 {
        config::address(id, config::GENERAL_CONFIG).map_or(0, |a| self.ram_load32(a))
    }

    pub(super) fn set_field(&mut self, id: u64, v: u32) {
        if let Some(a) = config::address(id, config::GENERAL_CONFIG) {
            self.ram_store32(a, v);
        }
    }

    pub(super) fn field_addr(&self, data: u64) -> Option<u64> {
        config::address(config::REQ_FIELD_ID.get(data), config::REQ_LANE_ID.get(data))
    }

    pub(super) fn ram_store32(&mut self, addr: u64, v: u32) {
        let a = addr as usize;
        if let Some(dst) = self.ram.get_mut(a..a + 4) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
    }

    pub(super) fn ram_load32(&self, addr: u64) -> u32 {
        let a = addr as usize;
        self.ram.get(a..a + 4).and_then(|b| b.try_into().ok()).map_or(0, u32::from_le_bytes)
    }

    /// The 8 data-RAM bytes at `addr` (bits 2:0 ignored); 0 past the end.
    pub fn ram_read(&self, addr: u64) -> u64 {
        let a = (addr & !7) as usize;
        self.ram.get(a..a + 8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes)
    }

    /// RAM_ACCESS_CTRL was written: the access pointer follows its address.
    pub fn ram_ctrl_written(&mut self, ctrl: u64) {
        self.ram_ptr = dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_ADDRESS.get(ctrl) & !7;
    }

    /// RAM_ACCESS_WR_DATA was written with `v` under `setup` and `ctrl`.
    pub fn ram_wr_data_written(&mut self, setup: u64, ctrl: u64, v: u64, c: &mut Counters) {
        if dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_WRITE_ENA.get(ctrl) == 0 {
            return;
        }
        let a = self.ram_ptr as usize;
        if dc::DC_DC8051_CFG_RAM_ACCESS_SETUP_RAM_SEL.get(setup) == 1 {
            // Code RAM: no firmware runs in the model.
            c.dc8051_code_ram_write_drops += 1;
        } else if let Some(dst) = self.ram.get_mut(a..a + 8) {
            dst.copy_from_slice(&v.to_le_bytes());
        } else {
            c.dc8051_ram_address_drops += 1;
        }
        if dc::DC_DC8051_CFG_RAM_ACCESS_SETUP_AUTO_INCR_ADDR.get(setup) == 1 {
            self.ram_ptr = (self.ram_ptr + 8) & dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_ADDRESS.mask();
        }
    }

    /// DC_DC8051_CFG_RAM_ACCESS_STATUS for the current RAM_ACCESS_CTRL value.
    pub fn ram_access_status(ctrl: u64) -> u64 {
        let enabled = dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_READ_ENA.get(ctrl) == 1
            || dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_WRITE_ENA.get(ctrl) == 1;
        dc::DC_DC8051_CFG_RAM_ACCESS_STATUS_ACCESS_COMPLETED.encode(u64::from(enabled))
    }

    /// DC_DC8051_CFG_RAM_ACCESS_RD_DATA for the current setup and control values.
    pub fn ram_rd_data(&self, setup: u64, ctrl: u64) -> u64 {
        let read = dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_READ_ENA.get(ctrl) == 1;
        let data_ram = dc::DC_DC8051_CFG_RAM_ACCESS_SETUP_RAM_SEL.get(setup) == 0;
        if read && data_ram {
            self.ram_read(dc::DC_DC8051_CFG_RAM_ACCESS_CTRL_ADDRESS.get(ctrl))
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hfi_abi::dc::*;

    #[test]
    fn ram_access() {
        let mut d = Dc8051::default();
        let mut c = Counters::default();
        assert_eq!(Dc8051::ram_access_status(0x40), 0);
        let rd = DC_DC8051_CFG_RAM_ACCESS_CTRL_READ_ENA.encode(1) | 0x40;
        assert_eq!(Dc8051::ram_access_status(rd), 0x1_0000);
        // write_8051: auto-increment set-up, then WR_DATA per 8 bytes.
        let setup = DC_DC8051_CFG_RAM_ACCESS_SETUP_AUTO_INCR_ADDR.smask();
        let wr = DC_DC8051_CFG_RAM_ACCESS_CTRL_WRITE_ENA.smask() | 0x40;
        assert_eq!(Dc8051::ram_access_status(wr), 0x1_0000);
        d.ram_ctrl_written(wr);
        d.ram_wr_data_written(setup, wr, 0x1111, &mut c);
        d.ram_wr_data_written(setup, wr, 0x2222, &mut c);
        assert_eq!(d.ram_rd_data(0, rd), 0x1111);
        assert_eq!(d.ram_rd_data(0, rd | 0x8), 0x2222);
        assert_eq!(d.ram_rd_data(0, 0x48), 0, "no read enable");
        // Code RAM and addresses past the data RAM are dropped.
        d.ram_wr_data_written(setup | 1, wr, 5, &mut c);
        let far = DC_DC8051_CFG_RAM_ACCESS_CTRL_WRITE_ENA.smask() | 0x2000;
        d.ram_ctrl_written(far);
        d.ram_wr_data_written(0, far, 5, &mut c);
        assert_eq!((c.dc8051_code_ram_write_drops, c.dc8051_ram_address_drops), (1, 1));
        assert_eq!(d.ram_read(0x2000), 0);
    }
}
