//! What the engine made of a native backup file: native backups are not compressed, so
//! the pages a full shares with the fulls before it are stored once. Each backup says how
//! much of it was new: what was not is what the repository held already, what repeats
//! within the file, and runs of zeros (never stored).

use rehydra_plugin_sdk::engine::ItemSummary;

/// `"48.0 MiB read, 4.2 MiB of it new (91% deduplicated)"`.
#[must_use]
pub fn summary(sum: &ItemSummary) -> String {
    let new = sum.new_bytes.min(sum.size);
    let saved = if sum.size == 0 {
        0
    } else {
        // rounded down: 99.6% is not said as all of it
        u128::from(sum.size - new) * 100 / u128::from(sum.size)
    };
    format!(
        "{} read, {} of it new ({saved}% deduplicated)",
        amount(sum.size),
        amount(new)
    )
}

/// `b` bytes in binary units, rounded down, one decimal from MiB on.
fn amount(b: u64) -> String {
    let tenths = |unit: u64| {
        let t = u128::from(b) * 10 / u128::from(unit);
        format!("{}.{}", t / 10, t % 10)
    };
    match b {
        0..0x400 => format!("{b} bytes"),
        0x400..0x10_0000 => format!("{} KiB", b >> 10),
        0x10_0000..0x4000_0000 => format!("{} MiB", tenths(1 << 20)),
        _ => format!("{} GiB", tenths(1 << 30)),
    }
}

#[cfg(test)]
mod tests {
    use rehydra_plugin_sdk::ItemKind;

    use super::*;

    fn sum(size: u64, new_bytes: u64) -> ItemSummary {
        ItemSummary {
            name: "backups/x.bak".into(),
            kind: ItemKind::Stream,
            size,
            new_bytes,
        }
    }

    #[test]
    fn says_how_much_of_a_backup_was_new() {
        assert_eq!(
            summary(&sum(393_216, 98_304)),
            "384 KiB read, 96 KiB of it new (75% deduplicated)"
        );
        assert_eq!(
            summary(&sum(50 << 30, 0)),
            "50.0 GiB read, 0 bytes of it new (100% deduplicated)"
        );
        assert_eq!(
            summary(&sum(3 << 20, 3 << 20)),
            "3.0 MiB read, 3.0 MiB of it new (0% deduplicated)"
        );
        // nothing read; and an engine saying more was new than was read is held to the size
        assert_eq!(
            summary(&sum(0, 0)),
            "0 bytes read, 0 bytes of it new (0% deduplicated)"
        );
        assert!(summary(&sum(1000, 5000)).contains("1000 bytes of it new"));
        // rounded down: 999 of 1000 bytes is 99%, not 100%; just under 1 GiB is not 1024.0 MiB
        assert!(summary(&sum(1000, 1)).contains("(99% deduplicated)"));
        assert!(summary(&sum((1 << 30) - 1, 0)).starts_with("1023.9 MiB read"));
        assert!(summary(&sum(u64::MAX, 1)).contains("(99% deduplicated)"));
    }
}
