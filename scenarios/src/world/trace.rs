//! A Chrome/Perfetto trace of a run (`hfi-sim run --trace FILE`): instant events on per-context
//! tracks for every DMA write (payload, RHQ entry, tail), every RcvArray store, every MMU
//! invalidation delivered to the driver, and every injected fault, stamped with simulated time.
//! Load the JSON in ui.perfetto.dev or chrome://tracing.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Serialize;

/// One trace event (Chrome trace-event format, instant events).
#[derive(Clone, Debug, Serialize)]
pub struct TraceEvent {
    /// Event name.
    pub name: String,
    /// Category: `dma`, `rcvarray`, `invalidate`, `fault`.
    pub cat: &'static str,
    /// Phase: `i` (instant).
    pub ph: &'static str,
    /// Timestamp in microseconds of simulated time.
    pub ts: f64,
    /// Process: the run.
    pub pid: u32,
    /// Track (receive context, or 0 for host-side events).
    pub tid: u32,
    /// Scope of an instant event (`t` = thread).
    pub s: &'static str,
    /// Details.
    pub args: serde_json::Value,
}

/// A shared, bounded event log.
#[derive(Clone, Debug, Default)]
pub struct TraceLog {
    events: Rc<RefCell<Vec<TraceEvent>>>,
    /// Process id of this run in the combined trace.
    pub pid: u32,
}

/// Most events kept per run (the rest are counted, not stored).
pub const MAX_EVENTS: usize = 200_000;

impl TraceLog {
    /// A log for run `pid`.
    pub fn new(pid: u32) -> Self {
        Self { events: Rc::new(RefCell::new(Vec::new())), pid }
    }

    /// Records an instant event at `time_ps`.
    pub fn instant(
        &self,
        cat: &'static str,
        name: String,
        time_ps: u64,
        track: u32,
        args: serde_json::Value,
    ) {
        let mut ev = self.events.borrow_mut();
        if ev.len() < MAX_EVENTS {
            ev.push(TraceEvent {
                name,
                cat,
                ph: "i",
                ts: time_ps as f64 / 1e6,
                pid: self.pid,
                tid: track,
                s: "t",
                args,
            });
        }
    }

    /// The events recorded.
    pub fn events(&self) -> Vec<TraceEvent> {
        self.events.borrow().clone()
    }
}

/// The trace-event JSON of several runs (`names[i]` labels run `i`).
pub fn to_json(runs: &[(String, Vec<TraceEvent>)]) -> serde_json::Value {
    let mut all = Vec::new();
    for (i, (name, evs)) in runs.iter().enumerate() {
        all.push(serde_json::json!({ "name": "process_name", "ph": "M", "pid": i as u32 + 1, "args": { "name": name } }));
        all.extend(evs.iter().filter_map(|e| {
            let mut e = e.clone();
            e.pid = i as u32 + 1;
            serde_json::to_value(e).ok()
        }));
    }
    serde_json::json!({ "traceEvents": all, "displayTimeUnit": "ns" })
}
