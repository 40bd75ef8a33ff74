//! The guest binary's errors: a buffer operation ([`BufferError`]) and a guest node
//! ([`GuestError`]).

use driver::endpoint::EndpointError;
use driver::hw::HwError;
use driver::recv::RecvError;

/// Why a buffer operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// mmap/munmap/madvise failed.
    #[error("Buffer syscall failed")]
    Io(#[from] std::io::Error),
    /// No buffer starts at this address.
    #[error("No buffer at {0:#x}")]
    Unknown(u64),
}

/// Why a guest node failed.
#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// Opening the device through VFIO failed.
    #[error("VFIO open of {bdf} failed")]
    Open {
        /// The device.
        bdf: String,
        /// Why.
        #[source]
        source: driver::transport::TransportError,
    },
    /// The memory backend could not start (pagemap, userfaultfd).
    #[error("Memory backend setup failed")]
    Memory(#[source] std::io::Error),
    /// Bring-up or a hardware access failed.
    #[error("Driver hardware layer failed")]
    Hw(#[from] HwError),
    /// The receiver failed.
    #[error("Receiver failed")]
    Recv(#[from] RecvError),
    /// A buffer operation failed.
    #[error("Buffer operation failed")]
    Buffer(#[from] BufferError),
}

impl From<EndpointError> for GuestError {
    fn from(e: EndpointError) -> Self {
        match e {
            EndpointError::Hw(e) => GuestError::Hw(e),
            EndpointError::Recv(e) => GuestError::Recv(e),
        }
    }
}
