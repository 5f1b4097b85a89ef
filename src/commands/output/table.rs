//! Plain-text output helpers: aligned tables, byte sizes and times for people.

use chrono::{DateTime, FixedOffset, Local, TimeZone};

/// Renders rows under a header with columns padded to the widest cell.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.push("-".repeat(widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1)));
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// 1536 -> "1.500 KiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.3} {}", UNITS[unit])
    }
}

/// A snapshot time in the offset it was taken in, as RFC 3339.
pub fn time_with_offset(ns: i64, offset_s: i32) -> DateTime<FixedOffset> {
    let offset =
        FixedOffset::east_opt(offset_s).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"));
    offset.timestamp_nanos(ns)
}

/// A time in this machine's zone, to the second.
pub fn local_time(ns: i64) -> String {
    Local
        .timestamp_nanos(ns)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_tables() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.500 KiB");
        assert_eq!(bytes(3 << 30), "3.000 GiB");
        let t = render(&["ID", "Host"], &[vec!["abc".into(), "h".into()]]);
        assert_eq!(t, "ID   Host\n---------\nabc  h");
    }
}
