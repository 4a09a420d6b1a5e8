//! The output of the target's `list` message: `<sector> <spare> <spare_sector> active` or
//! `<sector> - - pending`, one entry per line (`docs/status.md`).

use serde::Serialize;

use crate::tabular;

/// One remap entry as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListEntry {
    /// First sector of the unit on the device.
    pub sector: u64,
    /// `active` or `pending` (a later kernel may add states: kept as they are).
    pub state: String,
    /// Spare holding the unit; `null` when it has none (pending).
    pub spare: Option<u32>,
    /// Sector of the unit on that spare; `null` when it has none.
    pub spare_sector: Option<u64>,
}

fn field<T: std::str::FromStr>(tok: &str) -> Result<Option<T>, ()> {
    if tok == "-" {
        Ok(None)
    } else {
        tok.parse().map(Some).map_err(|_| ())
    }
}

/// Parses the whole output; an error names the first malformed line.
pub fn parse(output: &str) -> Result<Vec<ListEntry>, String> {
    output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let bad = || format!("unexpected line in the target's list output: '{line}'");
            let mut t = line.split_whitespace();
            let (Some(sector), Some(spare), Some(spare_sector), Some(state)) =
                (t.next(), t.next(), t.next(), t.next())
            else {
                return Err(bad());
            };
            Ok(ListEntry {
                sector: sector.parse().map_err(|_| bad())?,
                state: state.to_owned(),
                spare: field(spare).map_err(|()| bad())?,
                spare_sector: field(spare_sector).map_err(|()| bad())?,
            })
        })
        .collect()
}

/// The human table.
pub fn render_human(entries: &[ListEntry]) -> String {
    if entries.is_empty() {
        return "no remapped or pending units\n".into();
    }
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| {
            vec![
                e.sector.to_string(),
                e.state.clone(),
                dash(e.spare.map(|s| s.to_string())),
                dash(e.spare_sector.map(|s| s.to_string())),
            ]
        })
        .collect();
    tabular::render(&["SECTOR", "STATE", "SPARE", "SPARE_SECTOR"], &rows)
}

/// `--json`: an array of entries.
pub fn render_json(entries: &[ListEntry]) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "100 0 2048 active\n200 - - pending\n4096 0 2049 active\n";

    #[test]
    fn parses_active_and_pending() {
        let e = parse(OUTPUT).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[0],
            ListEntry {
                sector: 100,
                state: "active".into(),
                spare: Some(0),
                spare_sector: Some(2048)
            }
        );
        assert_eq!(
            e[1],
            ListEntry {
                sector: 200,
                state: "pending".into(),
                spare: None,
                spare_sector: None
            }
        );
        assert_eq!(parse("").unwrap(), []);
    }

    #[test]
    fn rejects_malformed_lines() {
        assert!(parse("100 0 2048\n").unwrap_err().contains("'100 0 2048'"));
        assert!(parse("x 0 1 active\n").is_err());
        assert!(parse("1 zero 1 active\n").is_err());
        assert!(parse("....\n").is_err());
    }

    #[test]
    fn renders_table_and_json() {
        let e = parse(OUTPUT).unwrap();
        let text = render_human(&e);
        assert_eq!(
            text,
            "SECTOR  STATE    SPARE  SPARE_SECTOR\n\
             100     active   0      2048\n\
             200     pending  -      -\n\
             4096    active   0      2049\n"
        );
        let json: serde_json::Value = serde_json::from_str(&render_json(&e).unwrap()).unwrap();
        assert_eq!(json[0]["sector"], 100);
        assert_eq!(json[0]["spare_sector"], 2048);
        assert_eq!(json[1]["state"], "pending");
        assert!(json[1]["spare"].is_null());
        assert_eq!(render_human(&[]), "no remapped or pending units\n");
    }
}
