//! Plain-text output helpers: aligned tables, byte sizes and times for people.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};

/// The widest a table gets: wider cells are elided in the middle.
pub const TABLE_WIDTH: usize = 120;

/// Renders rows under a header, columns padded to the widest cell and the whole no wider than
/// [`TABLE_WIDTH`]. A cell with newlines spans several lines (a snapshot's paths, one each).
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths = fitted(column_widths(header, rows));
    let mut out = vec![line(&widths, header), "-".repeat(total(&widths))];
    for row in rows {
        let cells: Vec<Vec<&str>> = row.iter().map(|c| c.lines().collect()).collect();
        let height = cells.iter().map(Vec::len).max().unwrap_or(0).max(1);
        for i in 0..height {
            let parts: Vec<&str> = cells.iter().map(|c| c.get(i).copied().unwrap_or("")).collect();
            out.push(line(&widths, &parts));
        }
    }
    out.join("\n")
}

fn column_widths(header: &[&str], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            let widest = cell.lines().map(|l| l.chars().count()).max().unwrap_or(0);
            *w = (*w).max(widest);
        }
    }
    widths
}

fn total(widths: &[usize]) -> usize {
    widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1)
}

/// Narrows the widest column until the table fits (no column below 8 characters).
fn fitted(mut widths: Vec<usize>) -> Vec<usize> {
    while total(&widths) > TABLE_WIDTH {
        let Some(widest) = (0..widths.len()).max_by_key(|&i| widths[i]) else {
            break;
        };
        if widths[widest] <= 8 {
            break;
        }
        widths[widest] -= 1;
    }
    widths
}

fn line(widths: &[usize], cells: &[&str]) -> String {
    let padded: Vec<String> =
        (cells.iter().zip(widths)).map(|(cell, &w)| format!("{:<w$}", elide(cell, w))).collect();
    padded.join("  ").trim_end().to_string()
}

/// A text cut to `width` characters by an ellipsis in its middle, as terminals elide paths.
pub fn elide(text: &str, width: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= width {
        return text.to_string();
    }
    if width < 2 {
        return chars[..width].iter().collect();
    }
    let head = (width - 1) / 2;
    let tail = width - 1 - head;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// 1536 -> "1.500 KiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    // The largest unit not above n: every 10 bits of n's magnitude is one step.
    let unit = (n.checked_ilog2().unwrap_or(0) / 10).min(5) as usize;
    match unit {
        0 => format!("{n} B"),
        _ => format!("{:.3} {}", n as f64 / (1u64 << (10 * unit)) as f64, UNITS[unit]),
    }
}

/// A snapshot time in the offset it was taken in, as RFC 3339.
pub fn time_with_offset(ns: i64, offset_s: i32) -> DateTime<FixedOffset> {
    let offset =
        FixedOffset::east_opt(offset_s).unwrap_or_else(|| FixedOffset::east_opt(0).expect("UTC"));
    offset.timestamp_nanos(ns)
}

/// A time as every table shows it, in UTC to the second, as the mount names snapshots
/// (`2026-12-04T18:30:00Z`), so a listed time finds its directory under `cairn mount`.
pub fn time(ns: i64) -> String {
    Utc.timestamp_nanos(ns).format("%Y-%m-%dT%H:%M:%SZ").to_string()
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
        let t = render(&["ID", "Paths"], &[vec!["abc".into(), "/etc\n/home".into()]]);
        assert_eq!(t, "ID   Paths\n----------\nabc  /etc\n     /home");
    }

    #[test]
    fn wide_tables_are_elided_to_fit() {
        let long = format!("/{}", "x".repeat(300));
        let t = render(&["ID", "Paths"], &[vec!["abc".into(), long]]);
        assert!(t.lines().all(|l| l.chars().count() <= TABLE_WIDTH), "{t}");
        assert!(t.contains('…'));
        assert_eq!(elide("/home/ann/projects", 9), "/hom…ects");
        assert_eq!(elide("short", 9), "short");
    }

    #[test]
    fn times_are_utc_as_the_mount_names_them() {
        assert_eq!(time(1_700_000_000_000_000_000), "2023-11-14T22:13:20Z");
    }
}
