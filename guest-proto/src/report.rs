//! Result lines on the serial console: `HFI-GUEST <kind> <json>`, one per line, so the host
//! can pick them out of the kernel's output. `HFI-GUEST done ok|fail` ends a run.

use serde::Serialize;

/// Line prefix.
pub const PREFIX: &str = "HFI-GUEST";

/// Prints one result line.
pub fn line(kind: &str, value: &impl Serialize) {
    let json = serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    println!("{PREFIX} {kind} {json}");
}

/// Prints the final line.
pub fn done(ok: bool) {
    println!("{PREFIX} done {}", if ok { "ok" } else { "fail" });
}

/// Splits a console line into (kind, json) if it is a result line. Console lines may carry a
/// carriage return or leading kernel noise; everything before the prefix is ignored.
pub fn parse(line: &str) -> Option<(&str, &str)> {
    let rest = &line[line.find(PREFIX)? + PREFIX.len()..];
    let rest = rest.trim_start().trim_end_matches(['\r', '\n']);
    Some(rest.split_once(' ').unwrap_or((rest, "")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lines() {
        assert_eq!(parse("HFI-GUEST row {\"a\":1}\r"), Some(("row", "{\"a\":1}")));
        assert_eq!(parse("[ 1.0] x HFI-GUEST done ok"), Some(("done", "ok")));
        assert_eq!(parse("nothing here"), None);
    }
}
