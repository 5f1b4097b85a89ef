//! Sizes as people write them on a command line: a number with an optional binary unit
//! (`4096`, `64K`, `512M`, `2GiB`), for the CLI's options and `check --read-data-subset`.

/// A size counted in `unit` bytes, within `range` units: a bare number is in that unit (the
/// option's older, numeric form: `--pack-size 16` is 16 MiB), one with a suffix is converted
/// (`--pack-size 16MiB`) and must be a whole number of units.
pub fn parse_in_units(
    text: &str,
    unit: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, String> {
    let bare = !text.trim().is_empty() && text.trim().bytes().all(|b| b.is_ascii_digit());
    let bytes = if bare {
        parse_size(text)?.checked_mul(unit).ok_or("too large")?
    } else {
        parse_size(text)?
    };
    let units = bytes / unit;
    if bytes % unit != 0 || !range.contains(&units) {
        let (low, high) = (range.start() * unit, range.end() * unit);
        return Err(format!(
            "{text:?}: give a size from {} to {}, a whole number of {}",
            human(low),
            human(high),
            human(unit)
        ));
    }
    Ok(units)
}

/// 16777216 -> "16MiB": the form the size options take.
pub fn human(bytes: u64) -> String {
    let units = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
    for (shift, name) in units {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{name}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

/// Bytes in `text`; the error says what a size looks like.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let shift = match unit.trim_end_matches(['b', 'B', 'i']).to_ascii_uppercase().as_str() {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("unknown size unit {unit:?}: use K, M, G or T")),
    };
    let value: u64 =
        digits.parse().map_err(|_| format!("{text:?} is not a size such as 512M or 2G"))?;
    value.checked_mul(1 << shift).ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::{human, parse_in_units, parse_size};

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    /// Issue #17: one convention for sizes, the old numeric forms still accepted.
    #[test]
    fn sized_options_take_suffixes_and_their_old_numbers() {
        let mib = |t: &str| parse_in_units(t, 1 << 20, 1..=1024);
        assert_eq!(mib("16"), Ok(16));
        assert_eq!(mib("16MiB"), Ok(16));
        assert_eq!(mib("1G"), Ok(1024));
        assert!(mib("2G").unwrap_err().contains("from 1MiB to 1GiB"));
        assert!(mib("1536K").is_err(), "not whole MiB");
        assert_eq!(parse_in_units("64MiB", 1 << 10, 1..=u64::MAX), Ok(65536));
        assert_eq!(human(16 << 20), "16MiB");
        assert_eq!(human(1536), "1536B");
    }
}
