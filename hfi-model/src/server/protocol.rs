//! The vfio-user protocol as this server speaks it: message framing sizes, command numbers,
//! header flags, the vfio-pci region and IRQ indices, `VFIO_IRQ_SET_*` flags and the Linux
//! errno values replies carry. Constants only; shared by the socket side ([`super::wire`]),
//! the model thread ([`super::model`]) and MSI-X ([`super::msix`]).

/// Header size.
pub const HEADER: usize = 16;
/// Largest data transfer of one REGION_READ/WRITE (the advertised `max_data_xfer_size`).
pub const MAX_XFER: u32 = 1 << 20;
/// Largest message accepted.
pub const MAX_MSG: u32 = HEADER as u32 + 16 + MAX_XFER;
/// Largest VERSION body (JSON capabilities).
pub const MAX_VERSION_BODY: usize = 4096;

/// vfio-user commands.
pub mod cmd {
    /// VERSION.
    pub const VERSION: u16 = 1;
    /// DMA_MAP.
    pub const DMA_MAP: u16 = 2;
    /// DMA_UNMAP.
    pub const DMA_UNMAP: u16 = 3;
    /// DEVICE_GET_INFO.
    pub const DEVICE_GET_INFO: u16 = 4;
    /// DEVICE_GET_REGION_INFO.
    pub const DEVICE_GET_REGION_INFO: u16 = 5;
    /// GET_REGION_IO_FDS.
    pub const GET_REGION_IO_FDS: u16 = 6;
    /// DEVICE_GET_IRQ_INFO.
    pub const DEVICE_GET_IRQ_INFO: u16 = 7;
    /// DEVICE_SET_IRQS.
    pub const DEVICE_SET_IRQS: u16 = 8;
    /// REGION_READ.
    pub const REGION_READ: u16 = 9;
    /// REGION_WRITE.
    pub const REGION_WRITE: u16 = 10;
    /// DMA_READ.
    pub const DMA_READ: u16 = 11;
    /// DMA_WRITE.
    pub const DMA_WRITE: u16 = 12;
    /// DEVICE_RESET.
    pub const DEVICE_RESET: u16 = 13;
    /// DIRTY_PAGES.
    pub const DIRTY_PAGES: u16 = 14;
}

/// Header flags: the message is a reply.
pub const FLAG_REPLY: u32 = 1;
/// Header flags: the client wants no reply.
pub const FLAG_NO_REPLY: u32 = 1 << 4;
/// Header flags: the reply carries an error.
pub const FLAG_ERROR: u32 = 1 << 5;

/// Region index of BAR0 (vfio-pci).
pub const REGION_BAR0: u32 = 0;
/// Region index of the configuration space (vfio-pci).
pub const REGION_CONFIG: u32 = 7;
/// Regions the device reports (vfio-pci).
pub const NUM_REGIONS: u32 = 9;
/// IRQ indices the device reports (vfio-pci).
pub const NUM_IRQS: u32 = 5;

/// The VERSION reply's capabilities.
pub const SERVER_CAPS: &str = r#"{"capabilities":{"max_msg_fds":1,"max_data_xfer_size":1048576,"migration":{"pgsize":4096}}}"#;

/// `VFIO_PCI_MSIX_IRQ_INDEX`.
pub const MSIX_IRQ_INDEX: u32 = 2;
/// `VFIO_PCI_ERR_IRQ_INDEX`.
pub const ERR_IRQ_INDEX: u32 = 3;

/// `VFIO_IRQ_SET_*` flag bits.
pub mod irq_flags {
    /// No data.
    pub const DATA_NONE: u32 = 1 << 0;
    /// A bool array follows.
    pub const DATA_BOOL: u32 = 1 << 1;
    /// Eventfds follow (ancillary data).
    pub const DATA_EVENTFD: u32 = 1 << 2;
    /// Mask.
    pub const ACTION_MASK: u32 = 1 << 3;
    /// Unmask (with DATA_EVENTFD: the resample/unmask fd).
    pub const ACTION_UNMASK: u32 = 1 << 4;
    /// Trigger (with DATA_EVENTFD: the trigger fd).
    pub const ACTION_TRIGGER: u32 = 1 << 5;
}

/// errno values (Linux), without a libc dependency in the model.
pub mod libc_errno {
    /// Bad file descriptor.
    pub const EBADF: i32 = 9;
    /// Bad address.
    pub const EFAULT: i32 = 14;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Argument list / message too long.
    pub const E2BIG: i32 = 7;
    /// Function not implemented (unknown command).
    pub const ENOSYS: i32 = 38;
    /// Operation not supported.
    pub const ENOTSUP: i32 = 95;
}
