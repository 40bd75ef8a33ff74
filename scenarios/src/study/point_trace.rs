//! Per-point traces (`hfi-sim study --trace`): the run's events (see [`crate::world::trace`]) on named
//! per-context tracks — packets (payload DMA), RHQ entries (entry and tail DMA), TID
//! programming (RcvArray stores), invalidations (MMU notifier) and faults (the workload's buffer
//! invalidations) — as Chrome/Perfetto trace-event JSON.

use std::path::Path;

use serde_json::{json, Value};

use super::sweep::Point;
use crate::world::node::RX_CTXT;
use crate::world::trace::TraceEvent;

/// The tracks of one context, in display order.
pub const TRACKS: [&str; 5] =
    ["packets", "RHQ entries", "TID programming", "invalidations", "faults"];

/// Which track an event belongs to: `(context, track index)`. Host-side events (RcvArray
/// stores, notifier callbacks, faults) belong to the node's receive context.
fn track_of(e: &TraceEvent) -> (u32, usize) {
    let ctxt = if e.tid == 0 { RX_CTXT } else { e.tid };
    let kind = match e.cat {
        "dma" if e.name.starts_with("RHQ") => 1,
        "dma" => 0,
        "rcvarray" => 2,
        "invalidate" => 3,
        _ => 4,
    };
    (ctxt, kind)
}

/// The trace-event JSON of one run named `name`.
pub fn to_json(name: &str, events: &[TraceEvent]) -> Value {
    let mut out =
        vec![json!({ "name": "process_name", "ph": "M", "pid": 1, "args": { "name": name } })];
    let mut tracks: Vec<(u32, usize)> = Vec::new();
    let mut body = Vec::with_capacity(events.len());
    for e in events {
        let (ctxt, kind) = track_of(e);
        if !tracks.contains(&(ctxt, kind)) {
            tracks.push((ctxt, kind));
        }
        let mut e = e.clone();
        e.pid = 1;
        e.tid = ctxt * 8 + kind as u32 + 1;
        if let Ok(v) = serde_json::to_value(e) {
            body.push(v);
        }
    }
    tracks.sort_unstable();
    for (ctxt, kind) in tracks {
        let tid = ctxt * 8 + kind as u32 + 1;
        let label = TRACKS.get(kind).copied().unwrap_or("other");
        out.push(json!({ "name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": { "name": format!("ctxt {ctxt}: {label}") } }));
        out.push(json!({ "name": "thread_sort_index", "ph": "M", "pid": 1, "tid": tid, "args": { "sort_index": tid } }));
    }
    out.extend(body);
    json!({ "traceEvents": out, "displayTimeUnit": "ns" })
}

/// Writes the trace of `point` to `<dir>/<point file stem>.json`.
pub fn write(dir: &Path, point: &Point, events: &[TraceEvent]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{}.json", point.file_stem()));
    let text =
        serde_json::to_string(&to_json(&point.label(), events)).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
