//! Unit tests of the command line: it parses, every verb has an example, usage errors.

#![allow(clippy::panic)]

use super::*;
use clap::CommandFactory;

#[test]
fn cli_is_well_formed() {
    Cli::command().debug_assert();
}

#[test]
fn verbs_parse() {
    let p = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
    let cli = p(&[
        "bpfmapctl",
        "-s",
        "a:1",
        "-s",
        "b:2",
        "map",
        "update",
        "id:3",
        "--key",
        "c1",
        "c2",
        "--value-num",
        "7",
        "--noexist",
    ]);
    let cli = cli.map_err(|e| e.to_string());
    let Ok(Cli {
        server,
        command: Command::Map(MapCmd::Update(u)),
        ..
    }) = cli
    else {
        panic!("{cli:?}");
    };
    assert_eq!(server, ["a:1", "b:2"]);
    assert_eq!(u.map, MapRef::Id(3));
    assert_eq!(u.key.key.as_deref().map(concat), Some(vec![0xc1, 0xc2]));
    assert_eq!(u.value_num, Some(7));
    assert_eq!(u.flag.flag(), bpfmap_client::Flag::NoExist);
    // Usage errors.
    assert!(p(&["bpfmapctl", "map", "update", "m", "--key", "01"]).is_err());
    assert!(p(&["bpfmapctl", "map", "update", "m", "--value", "01"]).is_err());
    assert!(p(&[
        "bpfmapctl",
        "map",
        "lookup",
        "m",
        "--key",
        "01",
        "--key-num",
        "1"
    ])
    .is_err());
    assert!(p(&[
        "bpfmapctl",
        "map",
        "update",
        "m",
        "--key",
        "1",
        "--value",
        "1",
        "--any",
        "--exist"
    ])
    .is_err());
    assert!(p(&["bpfmapctl", "map", "show", "id:x"]).is_err());
    assert!(p(&[
        "bpfmapctl",
        "map",
        "create",
        "m",
        "--type",
        "nope",
        "--entries",
        "1"
    ])
    .is_err());
    assert!(p(&[
        "bpfmapctl",
        "map",
        "create",
        "m",
        "--type",
        "hash",
        "--key-size",
        "4",
        "--value-size",
        "4",
        "--entries",
        "8"
    ])
    .is_ok());
    assert!(p(&["bpfmapctl", "map", "getnext", "m"]).is_ok());
    let u = p(&[
        "bpfmapctl",
        "map",
        "update",
        "m",
        "--key",
        "01",
        "--value",
        "a1",
        "a2",
    ]);
    let Ok(Cli {
        command: Command::Map(MapCmd::Update(u)),
        ..
    }) = u
    else {
        panic!("{u:?}");
    };
    assert_eq!(u.value.as_deref().map(concat), Some(vec![0xa1, 0xa2]));
    let u = p(&[
        "bpfmapctl",
        "map",
        "update",
        "m",
        "--key",
        "01",
        "--cpu-value",
        "01 00",
        "--cpu-value",
        "0200",
    ]);
    let Ok(Cli {
        command: Command::Map(MapCmd::Update(u)),
        ..
    }) = u
    else {
        panic!("{u:?}");
    };
    assert_eq!(u.cpu_value, [Hex(vec![1, 0]), Hex(vec![2, 0])]);
    assert!(p(&[
        "bpfmapctl",
        "map",
        "dump",
        "m",
        "--format",
        "raw",
        "-o",
        "f"
    ])
    .is_ok());
    assert!(p(&["bpfmapctl", "map", "lookup", "bloom", "--value", "01"]).is_ok());
    assert!(p(&["bpfmapctl", "completions", "bash"]).is_ok());
}

#[test]
fn every_verb_has_an_example() {
    let cmd = Cli::command();
    let map = cmd
        .find_subcommand("map")
        .map(|m| m.get_subcommands().collect::<Vec<_>>());
    let verbs = map.unwrap_or_default();
    assert_eq!(verbs.len(), 19);
    for v in verbs {
        let help = v
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(
            help.contains("bpfmapctl map"),
            "{} has no example",
            v.get_name()
        );
    }
}

#[test]
fn live_verbs_take_a_map_an_interval_and_a_count() {
    let cli = Cli::try_parse_from(["bpfmapctl", "map", "events", "id:4", "--count", "3"]);
    match cli.map(|c| c.command) {
        Ok(Command::Map(MapCmd::Events(a))) => {
            assert_eq!(a.map, MapRef::Id(4));
            assert_eq!(a.count, Some(3));
        }
        other => panic!("{other:?}"),
    }
    let cli = Cli::try_parse_from([
        "bpfmapctl",
        "-j",
        "map",
        "watch",
        "m",
        "-i",
        "250",
        "-c",
        "2",
    ]);
    match cli.map(|c| (c.json, c.command)) {
        Ok((true, Command::Map(MapCmd::Watch(a)))) => {
            assert_eq!(a.map, MapRef::name("m"));
            assert_eq!((a.interval, a.count), (250, Some(2)));
        }
        other => panic!("{other:?}"),
    }
    let cli = Cli::try_parse_from(["bpfmapctl", "map", "watch", "m"]);
    assert!(matches!(
        cli.map(|c| c.command),
        Ok(Command::Map(MapCmd::Watch(WatchArgs {
            interval: 0,
            count: None,
            ..
        })))
    ));
    assert!(Cli::try_parse_from(["bpfmapctl", "map", "events"]).is_err());
}
