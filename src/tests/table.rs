//! The constructor's argument parser: every valid form and every way to get it wrong.

use dm_remap_v4_target::table::{
    parse_table, TableArgs, TableError, DEFAULT_RETRIES, DEFAULT_SCRUB_RATE_KIB,
    DEFAULT_SLOW_THRESHOLD_MS, MAX_RETRIES, MAX_SPARES,
};

fn parse(line: &str) -> Result<TableArgs<&str>, TableError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    parse_table(words.iter().copied())
}

#[test]
fn main_and_spare() {
    assert_eq!(
        parse("/dev/loop0 /dev/loop1"),
        Ok(TableArgs {
            main: "/dev/loop0",
            spares: {
                let mut s = [None; MAX_SPARES];
                s[0] = Some("/dev/loop1");
                s
            },
            spare_count: 1,
            retries: DEFAULT_RETRIES,
            main_id: None,
            min_spare_percent: 0,
            format_foreign: false,
            scrub_rate_kib: DEFAULT_SCRUB_RATE_KIB,
            slow_threshold_ms: DEFAULT_SLOW_THRESHOLD_MS,
        })
    );
}

#[test]
fn scrub_options() {
    assert_eq!(
        parse("m s 4 scrub_rate 65536 slow_threshold_ms 40")
            .map(|t| (t.scrub_rate_kib, t.slow_threshold_ms)),
        Ok((65536, 40))
    );
    assert_eq!(
        parse("m s 4 scrub_rate 1 slow_threshold_ms 60000")
            .map(|t| (t.scrub_rate_kib, t.slow_threshold_ms)),
        Ok((1, 60000))
    );
    assert_eq!(
        parse("m s 2 scrub_rate 1048576").map(|t| t.scrub_rate_kib),
        Ok(1 << 20)
    );
    for bad in [
        "m s 2 scrub_rate 0",
        "m s 2 scrub_rate 1048577",
        "m s 2 scrub_rate fast",
        "m s 1 scrub_rate",
    ] {
        assert_eq!(
            parse(bad).map(|_| ()),
            Err(TableError::BadScrubRate),
            "{bad}"
        );
    }
    for bad in [
        "m s 2 slow_threshold_ms 0",
        "m s 2 slow_threshold_ms 60001",
        "m s 1 slow_threshold_ms",
    ] {
        assert_eq!(
            parse(bad).map(|_| ()),
            Err(TableError::BadSlowThreshold),
            "{bad}"
        );
    }
    assert_eq!(
        parse("m s 4 scrub_rate 1 scrub_rate 2").map(|_| ()),
        Err(TableError::DuplicateOption)
    );
    assert_eq!(
        parse("m s 4 slow_threshold_ms 1 slow_threshold_ms 2").map(|_| ()),
        Err(TableError::DuplicateOption)
    );
}

#[test]
fn empty_optional_block_is_allowed() {
    assert_eq!(
        parse("7:0 7:1 0").map(|t| (t.main, t.spares().collect::<Vec<_>>())),
        Ok(("7:0", vec!["7:1"]))
    );
}

#[test]
fn retries_option() {
    assert_eq!(parse("a b 2 retries 0").map(|t| t.retries), Ok(0));
    assert_eq!(parse("a b 2 retries 8").map(|t| t.retries), Ok(MAX_RETRIES));
    assert_eq!(parse("a b 0").map(|t| t.retries), Ok(DEFAULT_RETRIES));
}

#[test]
fn spare_options_add_spares_in_table_order() {
    let t = parse("m s0 6 spare s1 retries 2 spare s2").unwrap();
    assert_eq!(t.spares().collect::<Vec<_>>(), ["s0", "s1", "s2"]);
    assert_eq!((t.spare_count, t.retries), (3, 2));
    let most: String = (1..MAX_SPARES).map(|i| format!(" spare s{i}")).collect();
    let n = 2 * (MAX_SPARES - 1);
    assert_eq!(
        parse(&format!("m s0 {n}{most}")).map(|t| t.spares().count()),
        Ok(MAX_SPARES)
    );
    assert_eq!(
        parse(&format!("m s0 {}{most} spare x", n + 2)),
        Err(TableError::TooManySpares)
    );
}

#[test]
fn format_foreign_option() {
    assert_eq!(
        parse("m s 1 format_foreign").map(|t| t.format_foreign),
        Ok(true)
    );
    assert_eq!(
        parse("m s 3 format_foreign retries 2").map(|t| (t.format_foreign, t.retries)),
        Ok((true, 2))
    );
    assert_eq!(
        parse("m s 2 format_foreign format_foreign"),
        Err(TableError::DuplicateOption)
    );
    // A flag takes no value: the word after it is the next option.
    assert_eq!(
        parse("m s 2 format_foreign yes"),
        Err(TableError::UnknownOption)
    );
}

#[test]
fn min_spare_percent_option() {
    assert_eq!(
        parse("m s 2 min_spare_percent 105").map(|t| t.min_spare_percent),
        Ok(105)
    );
    assert_eq!(
        parse("m s 2 min_spare_percent 1000").map(|t| t.min_spare_percent),
        Ok(1000)
    );
    for bad in [
        "m s 2 min_spare_percent 1001",
        "m s 2 min_spare_percent x",
        "m s 1 min_spare_percent",
    ] {
        assert_eq!(parse(bad), Err(TableError::BadMinSparePercent), "{bad}");
    }
    assert_eq!(
        parse("m s 4 min_spare_percent 1 min_spare_percent 2"),
        Err(TableError::DuplicateOption)
    );
}

#[test]
fn main_id_option() {
    assert_eq!(
        parse("m s 2 main_id wwn:naa.5000c500a1b2c3d4").map(|t| t.main_id),
        Ok(Some("wwn:naa.5000c500a1b2c3d4"))
    );
    let longest = "x".repeat(64);
    assert_eq!(
        parse(&format!("m s 2 main_id {longest}")).map(|t| t.main_id),
        Ok(Some(longest.as_str()))
    );
    let words = |id: &'static str| parse_table(["m", "s", "2", "main_id", id]);
    for bad in ["", "caf\u{e9}", "a\u{7f}", "tab\there"] {
        assert_eq!(words(bad), Err(TableError::BadMainId), "main_id {bad:?}");
    }
    let too_long = "x".repeat(65);
    assert_eq!(
        parse(&format!("m s 2 main_id {too_long}")),
        Err(TableError::BadMainId)
    );
}

#[test]
fn each_bad_form_has_its_own_error() {
    let cases = [
        ("", TableError::NoArguments),
        ("/dev/loop0", TableError::MissingSpare),
        ("/dev/loop0 /dev/loop1 x", TableError::BadOptionCount),
        ("/dev/loop0 /dev/loop1 -1", TableError::BadOptionCount),
        ("/dev/loop0 /dev/loop1 +1 a", TableError::BadOptionCount),
        (
            "/dev/loop0 /dev/loop1 99999999999 a",
            TableError::BadOptionCount,
        ),
        ("/dev/loop0 /dev/loop1 2 a", TableError::TooFewOptions),
        ("/dev/loop0 /dev/loop1 0 a", TableError::TooManyArguments),
        ("/dev/loop0 /dev/loop1 1 a b", TableError::TooManyArguments),
        (
            "/dev/loop0 /dev/loop1 1 frobnicate",
            TableError::UnknownOption,
        ),
        ("/dev/loop0 /dev/loop1 1 retries", TableError::BadRetries),
        ("/dev/loop0 /dev/loop1 2 retries x", TableError::BadRetries),
        ("/dev/loop0 /dev/loop1 2 retries 9", TableError::BadRetries),
        ("/dev/loop0 /dev/loop1 2 retries -1", TableError::BadRetries),
        (
            "/dev/loop0 /dev/loop1 4 retries 1 retries 2",
            TableError::DuplicateOption,
        ),
        (
            "/dev/loop0 /dev/loop1 3 retries 1 x",
            TableError::UnknownOption,
        ),
        (
            "/dev/loop0 /dev/loop1 1 spare",
            TableError::MissingSpareDevice,
        ),
        ("/dev/loop0 /dev/loop1 1 main_id", TableError::BadMainId),
        (
            "/dev/loop0 /dev/loop1 4 main_id a main_id b",
            TableError::DuplicateOption,
        ),
    ];
    for (line, want) in cases {
        assert_eq!(parse(line), Err(want), "table line {line:?}");
    }
}

#[test]
fn messages_are_distinct_and_nonempty() {
    let all = [
        TableError::NoArguments,
        TableError::MissingSpare,
        TableError::MissingSpareDevice,
        TableError::TooManySpares,
        TableError::BadMainId,
        TableError::BadMinSparePercent,
        TableError::BadOptionCount,
        TableError::TooFewOptions,
        TableError::TooManyArguments,
        TableError::UnknownOption,
        TableError::BadRetries,
        TableError::DuplicateOption,
    ];
    for (i, a) in all.iter().enumerate() {
        assert!(!a.message().to_bytes().is_empty());
        for b in all.iter().skip(i + 1) {
            assert_ne!(a.message(), b.message(), "{a:?} and {b:?} share a message");
        }
    }
}
