//! Server counters (one struct; the socket side and the model side each keep one, merged for
//! `--stats`). Names follow the device's convention (`_count`, `_drops`, `_fails`).

use serde::{Deserialize, Serialize};

macro_rules! server_stats {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {
        /// Server counters.
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct ServerStats {
            $($(#[$m])* pub $name: u64,)*
        }

        impl ServerStats {
            /// Adds `other` into `self`.
            pub fn merge(&mut self, other: &ServerStats) {
                $(self.$name += other.$name;)*
            }
        }
    };
}

server_stats! {
    /// Connections accepted.
    connection_count,
    /// Connections that ended by an error, a framing loss, a stall or a panic (device reset).
    connection_lost_count,
    /// Connections that ended by the client closing the socket (device reset).
    connection_closed_count,
    /// Messages handled (well-formed or not).
    message_count,
    /// Messages with a header or size the command does not allow (error reply EINVAL).
    malformed_message_count,
    /// Messages larger than the server's limit (error reply E2BIG, connection dropped).
    oversized_message_count,
    /// Unknown commands (error reply ENOSYS).
    unknown_command_count,
    /// Known commands the server does not implement (error reply ENOTSUP).
    unsupported_command_count,
    /// Error replies sent.
    error_reply_count,
    /// BAR0 reads.
    mmio_read_count,
    /// BAR0 writes.
    mmio_write_count,
    /// DMA_MAP requests applied.
    dma_map_count,
    /// DMA_MAP requests rejected (overlap, bad range, mmap failure).
    dma_map_fails,
    /// DMA_MAP without an fd (memory the device cannot reach; accepted, counted).
    dma_map_without_fd_count,
    /// DMA_UNMAP requests applied (after quiescing).
    dma_unmap_count,
    /// DMA_UNMAP of ranges never mapped (ignored).
    dma_unmap_unknown_count,
    /// Memory map publications that failed.
    dma_publish_fails,
    /// Interrupts delivered through the trigger eventfd.
    irq_trigger_count,
    /// Trigger eventfd writes that failed.
    irq_trigger_fails,
    /// Interrupts with no trigger eventfd set.
    irq_no_eventfd_drops,
    /// SET_IRQS trigger-fd updates.
    irq_set_trigger_count,
    /// SET_IRQS unmask(resample)-fd updates.
    irq_set_unmask_fd_count,
    /// DEVICE_RESETs and resets on disconnect.
    reset_count,
    /// Function-level resets (PCIe DevCtl.InitiateFLR).
    flr_count,
    /// MSI-X messages delivered through a vector's eventfd.
    irq_msix_trigger_count,
    /// MSI-X vectors signalled with no eventfd set.
    irq_msix_no_eventfd_drops,
    /// SET_IRQS MSI-X vector updates.
    irq_msix_set_count,
    /// SET_IRQS MSI-X disables (back to INTx).
    irq_msix_disable_count,
    /// Packets the remote peer could not answer.
    remote_bad_packet_count,
    /// Link trainings ended by the server's wall-clock timer (the 8051's quick link-up).
    link_training_count,
}

impl ServerStats {
    /// As JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
