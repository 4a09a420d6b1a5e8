//! The boot-time assembly files of dm-remap-tools: the systemd unit and the udev rule (`tools/dmremap/systemd`,
//! `tools/dmremap/udev`). The unit goes through `systemd-analyze verify` when the host has it; the rule through
//! a parser of udev's rule syntax (bookworm's udev 252 has no `udevadm verify`, and the test hosts have no udev).

// Tests fail by panicking; the workspace's no-panic lints are for the code that runs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const UNIT_NAME: &str = "dmremap-assemble.service";
const RULE_NAME: &str = "69-dmremap.rules";

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `(section, key, value)` of every setting of a unit file.
fn unit_settings(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_owned();
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a setting: '{line}'"));
        assert!(!section.is_empty(), "'{line}' is outside a section");
        out.push((section.clone(), k.trim().to_owned(), v.trim().to_owned()));
    }
    out
}

fn setting<'a>(s: &'a [(String, String, String)], section: &str, key: &str) -> Vec<&'a str> {
    s.iter()
        .filter(|(sec, k, _)| sec == section && k == key)
        .map(|(_, _, v)| v.as_str())
        .collect()
}

#[test]
fn the_unit_runs_assemble_all_once_per_start() {
    let text = read(&crate_dir().join("systemd").join(UNIT_NAME));
    let s = unit_settings(&text);
    assert_eq!(setting(&s, "Service", "Type"), ["oneshot"]);
    assert_eq!(
        setting(&s, "Service", "ExecStart"),
        ["/usr/sbin/dmremap assemble --all"]
    );
    // Every start runs it again (each device event): no RemainAfterExit.
    assert!(setting(&s, "Service", "RemainAfterExit").is_empty());
    assert_eq!(setting(&s, "Unit", "DefaultDependencies"), ["no"]);
    assert!(setting(&s, "Unit", "Before")
        .iter()
        .any(|v| v.split_whitespace().any(|u| u == "local-fs-pre.target")));
    assert_eq!(setting(&s, "Install", "WantedBy"), ["sysinit.target"]);
    // debian/rules installs the binary where ExecStart looks for it, and the unit and the rule.
    let rules = read(&crate_dir().join("../../debian/rules"));
    assert!(rules.contains("debian/dm-remap-tools/usr/sbin/dmremap"));
    assert!(rules.contains(&format!("lib/systemd/system/{UNIT_NAME}")));
    assert!(rules.contains(&format!("lib/udev/rules.d/{RULE_NAME}")));
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze not installed: unit not verified");
        return;
    }
    // verify checks that ExecStart's program exists: point it at the build's binary.
    let dir = std::env::temp_dir().join(format!("dmremap-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unit = dir.join(UNIT_NAME);
    let text = read(&crate_dir().join("systemd").join(UNIT_NAME))
        .replace("/usr/sbin/dmremap", env!("CARGO_BIN_EXE_dmremap"));
    std::fs::write(&unit, text).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unknown keys and bad values are only warnings (exit 0): any output is a failure.
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

/// One `KEY[{attr}]OP"value"` of a rule line.
#[derive(Debug, PartialEq, Eq)]
struct Token {
    key: String,
    attr: Option<String>,
    op: String,
    value: String,
}

/// Splits a rule line into its tokens, as udev does: comma-separated, each a key, an optional `{attribute}`,
/// an operator and a double-quoted value.
fn tokens(line: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let key_end = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .ok_or_else(|| format!("no operator in '{rest}'"))?;
        let key = &rest[..key_end];
        rest = &rest[key_end..];
        let mut attr = None;
        if let Some(r) = rest.strip_prefix('{') {
            let end = r
                .find('}')
                .ok_or_else(|| format!("unclosed {{ in '{line}'"))?;
            attr = Some(r[..end].to_owned());
            rest = &r[end + 1..];
        }
        let op = ["==", "!=", "+=", "-=", ":=", "="]
            .into_iter()
            .find(|op| rest.starts_with(op))
            .ok_or_else(|| format!("no operator after {key} in '{line}'"))?;
        rest = rest[op.len()..]
            .strip_prefix('"')
            .ok_or_else(|| format!("the value of {key} is not quoted in '{line}'"))?;
        let end = rest
            .find('"')
            .ok_or_else(|| format!("unclosed value of {key} in '{line}'"))?;
        out.push(Token {
            key: key.to_owned(),
            attr,
            op: op.to_owned(),
            value: rest[..end].to_owned(),
        });
        rest = rest[end + 1..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
            if rest.is_empty() {
                return Err(format!("trailing comma in '{line}'"));
            }
        } else if !rest.is_empty() {
            return Err(format!("missing comma before '{rest}'"));
        }
    }
    Ok(out)
}

/// Checks a rules file against udev's keys and operators (`udev(7)`); returns the tokens of each rule line.
fn check_rules(text: &str) -> Result<Vec<Vec<Token>>, String> {
    const MATCH: &[&str] = &[
        "ACTION",
        "DEVPATH",
        "KERNEL",
        "KERNELS",
        "NAME",
        "SYMLINK",
        "SUBSYSTEM",
        "SUBSYSTEMS",
        "DRIVER",
        "DRIVERS",
        "ATTR",
        "ATTRS",
        "SYSCTL",
        "TAG",
        "TAGS",
        "ENV",
        "CONST",
        "TEST",
        "PROGRAM",
        "RESULT",
    ];
    const ASSIGN: &[&str] = &[
        "NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "ATTR", "SYSCTL", "ENV", "TAG",
        "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS",
    ];
    const WITH_ATTR: &[&str] = &[
        "ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "TEST", "SECLABEL", "RUN", "IMPORT",
    ];
    let mut lines = Vec::new();
    let (mut labels, mut gotos) = (HashSet::new(), Vec::new());
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.ends_with('\\') {
            return Err(format!(
                "line {}: continuation lines are not used here",
                n + 1
            ));
        }
        let toks = tokens(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        for t in &toks {
            let is_match = t.op == "==" || t.op == "!=";
            let allowed = if is_match { MATCH } else { ASSIGN };
            if !allowed.contains(&t.key.as_str()) {
                return Err(format!(
                    "line {}: {} cannot be used with {}",
                    n + 1,
                    t.key,
                    t.op
                ));
            }
            if t.attr.is_some() && !WITH_ATTR.contains(&t.key.as_str()) {
                return Err(format!("line {}: {} takes no {{attribute}}", n + 1, t.key));
            }
            if ["ATTR", "ATTRS", "ENV", "SYSCTL"].contains(&t.key.as_str()) && t.attr.is_none() {
                return Err(format!("line {}: {} needs an {{attribute}}", n + 1, t.key));
            }
            if (t.key == "LABEL" || t.key == "GOTO") && t.op != "=" {
                return Err(format!("line {}: {} takes '='", n + 1, t.key));
            }
            match t.key.as_str() {
                "LABEL" if !labels.insert(t.value.clone()) => {
                    return Err(format!("line {}: label {} defined twice", n + 1, t.value))
                }
                "GOTO" => gotos.push(t.value.clone()),
                _ => {}
            }
        }
        lines.push(toks);
    }
    if let Some(g) = gotos.iter().find(|g| !labels.contains(*g)) {
        return Err(format!("GOTO=\"{g}\" has no LABEL"));
    }
    Ok(lines)
}

#[test]
fn the_rule_parser_catches_mistakes() {
    assert!(check_rules("KERNEL==\"sd*\", RUN+=\"/bin/true\"\n").is_ok());
    assert!(
        check_rules("KERNEL=\"sd*\"").is_err(),
        "KERNEL cannot be assigned"
    );
    assert!(check_rules("RUN==\"x\"").is_err(), "RUN is not a match");
    assert!(check_rules("KERNEL==sd*").is_err(), "unquoted");
    assert!(
        check_rules("KERNEL==\"sd*\" RUN+=\"x\"").is_err(),
        "no comma"
    );
    assert!(check_rules("KERNEL==\"sd*\",").is_err(), "trailing comma");
    assert!(check_rules("GOTO=\"nowhere\"").is_err(), "no such label");
    assert!(
        check_rules("ATTR==\"0\"").is_err(),
        "ATTR without attribute"
    );
    assert!(
        check_rules("LABEL=\"a\"\nLABEL=\"a\"").is_err(),
        "label twice"
    );
    assert!(check_rules("Kernel==\"sd*\"").is_err(), "lower case key");
}

#[test]
fn the_rule_starts_the_unit_for_new_block_devices_only() {
    let rules = check_rules(&read(&crate_dir().join("udev").join(RULE_NAME))).unwrap();
    let runs: Vec<&Token> = rules.iter().flatten().filter(|t| t.key == "RUN").collect();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].op, "+=");
    assert_eq!(
        runs[0].value,
        format!("/bin/systemctl --no-block start {UNIT_NAME}")
    );
    assert!(crate_dir().join("systemd").join(UNIT_NAME).is_file());
    // The first rule leaves everything but block devices; device-mapper devices (the assembled ones among
    // them) never start it; only add and change events do, and only under systemd.
    let has = |key: &str, op: &str, value: &str| {
        rules
            .iter()
            .flatten()
            .any(|t| t.key == key && t.op == op && t.value == value)
    };
    assert_eq!(rules[0][0].key, "SUBSYSTEM");
    assert_eq!(
        (rules[0][0].op.as_str(), rules[0][0].value.as_str()),
        ("!=", "block")
    );
    assert!(rules
        .iter()
        .flatten()
        .any(|t| t.key == "KERNEL" && t.op == "==" && t.value.split('|').any(|k| k == "dm-*")));
    assert!(has("ACTION", "==", "add"));
    assert!(has("ACTION", "==", "change"));
    assert!(!rules
        .iter()
        .flatten()
        .any(|t| t.key == "ACTION" && t.value.contains("remove")));
    assert!(has("TEST", "!=", "/run/systemd/system"));
}
