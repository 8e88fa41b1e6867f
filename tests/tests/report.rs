//! `bothy report`: the real binary on real files. The fixture (`tests/fixtures/event-snapshot.json`)
//! is a finished three-room community health forum; tests that need hostile or tricky input
//! change a copy of it and write that to a temporary file.
//!
//! What is pinned: consent (a note whose author did not agree is never quoted, in any format,
//! unless `--quote-all`; hidden and removed notes never are), the CSV read back by a CSV parser
//! (formula cells neutralised, quotes, commas and line breaks intact, a BOM), HTML that renders
//! every user text inert, themes in ranked order, and exit code 2 with a message for a file that
//! cannot be used.

use bothy_shared::Limits;
use bothy_shared::board::ModerationState;
use bothy_shared::snapshot::{EventSnapshot, NoteExport};
use bothy_tests::bothy_binary;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/event-snapshot.json");
const BOM: &str = "\u{FEFF}";

fn fixture() -> EventSnapshot {
    let text = std::fs::read_to_string(FIXTURE).expect("the fixture is readable");
    serde_json::from_str(&text).expect("the fixture parses")
}

/// Runs `bothy report <args>` and returns its output.
fn report(args: &[&str]) -> Output {
    Command::new(bothy_binary())
        .arg("report")
        .args(args)
        .output()
        .expect("bothy runs")
}

/// `bothy report FILE --format FORMAT [extra]`: the report, checked to have succeeded.
fn render(file: &Path, format: &str, extra: &[&str]) -> String {
    let path = file.to_str().expect("utf-8 path");
    let mut args = vec![path, "--format", format];
    args.extend_from_slice(extra);
    let out = report(&args);
    assert!(
        out.status.success(),
        "bothy report {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "nothing on stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the report is UTF-8")
}

/// Writes `snapshot` to a file in `dir` and returns its path.
fn write_snapshot(dir: &Path, name: &str, snapshot: &EventSnapshot) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(snapshot).expect("serialise"),
    )
    .expect("write");
    path
}

/// HTML text back to plain text (the five references `escape_html` writes, and `&amp;` last).
fn html_text(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Markdown back to plain text, as far as escaping goes: backslash escapes dropped, so a note
/// cannot hide in the output behind them.
fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|n| n.is_ascii_punctuation()) {
            out.push(chars.next().expect("peeked"));
        } else if c == '\\' && chars.peek() == Some(&'\n') {
            // A hard line break.
        } else {
            out.push(c);
        }
    }
    out
}

/// Markdown quote lines back to the note text they came from: `> ` prefixes dropped.
fn md_quotes(s: &str) -> String {
    md_text(
        &s.lines()
            .map(|l| l.strip_prefix("> ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

fn csv_records(csv_text: &str) -> (Vec<String>, Vec<csv::StringRecord>) {
    let body = csv_text
        .strip_prefix(BOM)
        .expect("the CSV starts with a UTF-8 byte order mark");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body.as_bytes());
    let header = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    let records = reader
        .records()
        .collect::<Result<Vec<_>, _>>()
        .expect("every record parses");
    (header, records)
}

const HEADER: [&str; 13] = [
    "Room",
    "Prompt",
    "Theme",
    "Cross-room theme",
    "Text",
    "Votes",
    "Created (UTC)",
    "Proxy",
    "OK to quote",
    "Status",
    "Person",
    "Room id",
    "Note id",
];
const TEXT: usize = 4;
const ROOM_ID: usize = 11;
const NOTE_ID: usize = 12;

/// The CSV record of note `id` in room `room`.
fn record<'r>(records: &'r [csv::StringRecord], room: &str, id: u64) -> &'r csv::StringRecord {
    records
        .iter()
        .find(|r| &r[ROOM_ID] == room && r[NOTE_ID] == id.to_string())
        .unwrap_or_else(|| panic!("a row for note {id} of room {room}"))
}

fn visible_without_consent(s: &EventSnapshot) -> Vec<&NoteExport> {
    s.rooms
        .iter()
        .flat_map(|r| &r.notes)
        .filter(|n| !n.quotable && n.moderation.is_none())
        .collect()
}

#[test]
fn the_fixture_is_a_realistic_valid_event() {
    let s = fixture();
    s.check(&Limits::default())
        .expect("the fixture passes EventSnapshot::check");
    assert_eq!(s.rooms.len(), 3);
    for room in &s.rooms {
        assert!(
            (12..=20).contains(&room.notes.len()),
            "{}: {} notes",
            room.name,
            room.notes.len()
        );
        assert!(room.themes.len() >= 3, "{} has room themes", room.name);
    }
    let notes: Vec<&NoteExport> = s.rooms.iter().flat_map(|r| &r.notes).collect();
    let moderated = |m| notes.iter().filter(|n| n.moderation == Some(m)).count();
    assert_eq!(moderated(ModerationState::Hidden), 1);
    assert_eq!(moderated(ModerationState::Removed), 1);
    assert!(notes.iter().filter(|n| n.proxy).count() >= 2);
    assert!(notes.iter().any(|n| n.private));
    assert!(notes.iter().any(|n| n.quotable) && notes.iter().any(|n| !n.quotable));
    assert!(!s.event.anonymous && notes.iter().any(|n| n.person.is_some()));
    assert!((2..=3).contains(&s.synthesis.len()));
}

#[test]
fn words_without_consent_never_appear_unless_the_staff_quote_all() {
    let s = fixture();
    let fixture = Path::new(FIXTURE);
    let unconsented = visible_without_consent(&s);
    assert!(unconsented.len() >= 10, "the fixture has notes to protect");
    let hidden: Vec<&NoteExport> = s
        .rooms
        .iter()
        .flat_map(|r| &r.notes)
        .filter(|n| n.moderation == Some(ModerationState::Hidden))
        .collect();
    assert!(
        hidden.iter().all(|n| n.quotable),
        "the hidden note said yes to quoting, so only moderation keeps it out"
    );

    for quote_all in [false, true] {
        let extra: &[&str] = if quote_all { &["--quote-all"] } else { &[] };
        let csv_text = render(fixture, "csv", extra);
        let md = md_quotes(&render(fixture, "md", extra));
        let html = html_text(&render(fixture, "html", extra));
        for note in &unconsented {
            for (format, out) in [("CSV", &csv_text), ("Markdown", &md), ("HTML", &html)] {
                assert_eq!(
                    out.contains(&note.text),
                    quote_all,
                    "{format} (quote_all={quote_all}) and {:?}",
                    note.text
                );
            }
        }
        for note in &hidden {
            for (format, out) in [("CSV", &csv_text), ("Markdown", &md), ("HTML", &html)] {
                assert!(
                    !out.contains(&note.text),
                    "{format} (quote_all={quote_all}) shows the hidden note"
                );
            }
        }
        // The CSV still has a row for each, with a marker in place of the words.
        let (_, records) = csv_records(&csv_text);
        for room in &s.rooms {
            for note in &room.notes {
                let expected = match (note.moderation, note.quotable || quote_all) {
                    (Some(ModerationState::Removed), _) => "[removed by a facilitator]",
                    (Some(ModerationState::Hidden), _) => "[hidden by a facilitator]",
                    // Formula-like text keeps its words behind an apostrophe.
                    (None, true) if note.text.starts_with(['=', '+', '-', '@']) => {
                        &format!("'{}", note.text)
                    }
                    (None, true) => note.text.as_str(),
                    (None, false) => "[not quoted: no consent]",
                };
                assert_eq!(&record(&records, &room.id, note.id)[TEXT], expected);
            }
        }
    }

    // A quotable note is quoted by default, and the report says how many were not.
    let md = render(fixture, "md", &[]);
    assert!(md.contains("> Ringing at 8am and being 30th in the queue"));
    assert!(md.contains("3 more notes not quoted"));
    assert!(!render(fixture, "md", &["--quote-all"]).contains("not quoted"));
}

#[test]
fn csv_reads_back_into_the_intended_cells() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut s = fixture();
    let tricky: &[(&str, &str)] = &[
        ("=SUM(A1)", "'=SUM(A1)"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@cmd", "'@cmd"),
        (
            "=HYPERLINK(\"http://example.com\",\"click\")",
            "'=HYPERLINK(\"http://example.com\",\"click\")",
        ),
        ("\tindented", "'\tindented"),
        (
            "line one\nline two\n\nline four",
            "line one\nline two\n\nline four",
        ),
        (
            "commas, \"quotes\" and 'apostrophes'",
            "commas, \"quotes\" and 'apostrophes'",
        ),
        ("- a list\n- of two", "'- a list\n- of two"),
        ("a = b + c", "a = b + c"),
        ("café, naïve, 日本語, 👍🏽", "café, naïve, 日本語, 👍🏽"),
    ];
    let room = &mut s.rooms[0];
    room.name = "=Room one".into();
    room.prompt = "@prompt, with \"quotes\"\nand a second line".into();
    room.themes[0].title = "+theme".into();
    for (note, (text, _)) in room.notes.iter_mut().zip(tricky) {
        note.text = (*text).into();
        note.quotable = true;
        note.moderation = None;
        note.moderation_reason = None;
    }
    room.notes[0].person = Some("-Person 1".into());
    let room_id = room.id.clone();
    let file = write_snapshot(dir.path(), "tricky.json", &s);

    let out = dir.path().join("notes.csv");
    render(&file, "csv", &["--output", out.to_str().expect("utf-8")]);
    let bytes = std::fs::read(&out).expect("the report was written");
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 byte order mark");
    let text = String::from_utf8(bytes).expect("UTF-8");
    assert!(text.starts_with(&format!("{BOM}Room,Prompt,")));
    assert!(text.contains("Note id\r\n"), "lines end in CRLF");

    let (header, records) = csv_records(&text);
    assert_eq!(header, HEADER);
    let notes = s.rooms.iter().map(|r| r.notes.len()).sum::<usize>();
    assert_eq!(records.len(), notes, "one row per note");
    assert!(records.iter().all(|r| r.len() == HEADER.len()));
    for (i, (_, expected)) in tricky.iter().enumerate() {
        let id = s.rooms[0].notes[i].id;
        assert_eq!(&record(&records, &room_id, id)[TEXT], *expected);
    }
    let first = record(&records, &room_id, s.rooms[0].notes[0].id);
    assert_eq!(&first[0], "'=Room one");
    assert_eq!(&first[1], "'@prompt, with \"quotes\"\nand a second line");
    assert_eq!(&first[2], "'+theme");
    assert_eq!(&first[10], "'-Person 1");
    // Every cell a spreadsheet could take for a formula starts with the apostrophe.
    for r in &records {
        for cell in r {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?}"
            );
        }
    }

    // The plain columns of one untouched note, in full.
    let r = record(&records, &s.rooms[1].id, 1);
    assert_eq!(&r[0], "What could be better");
    assert_eq!(&r[2], "Getting an appointment");
    assert_eq!(&r[3], "Getting an appointment");
    assert_eq!(
        &r[TEXT],
        "Ringing at 8am and being 30th in the queue, then all the appointments have gone"
    );
    assert_eq!(&r[5], "9");
    assert_eq!(&r[6], "2025-03-12T10:05:43Z");
    assert_eq!((&r[7], &r[8], &r[9]), ("no", "yes", "shown"));
    assert_eq!(&r[10], "Person 7");
    let proxy = s.rooms[1].notes.iter().find(|n| n.proxy).expect("a proxy");
    let r = record(&records, &s.rooms[1].id, proxy.id);
    assert_eq!((&r[7], &r[10]), ("yes", ""));
    let private = s.rooms[2]
        .notes
        .iter()
        .find(|n| n.private)
        .expect("private");
    assert_eq!(&record(&records, &s.rooms[2].id, private.id)[9], "private");
}

/// Script payloads in every text field of a snapshot: title, room names, prompts, theme
/// titles, cross-room titles, note texts, authors, pseudonyms, moderation reasons.
const PAYLOADS: [&str; 5] = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "'><svg onload=alert(1)>",
    "</style><script>alert(2)</script>",
    "</title></svg><iframe srcdoc=x>",
];

fn hostile() -> EventSnapshot {
    let mut s = fixture();
    s.event.title = format!("Forum {}", PAYLOADS[0]);
    for (i, room) in s.rooms.iter_mut().enumerate() {
        room.name = PAYLOADS[i % 5].into();
        room.prompt = format!("{} {}", PAYLOADS[(i + 1) % 5], PAYLOADS[(i + 2) % 5]);
        for (j, t) in room.themes.iter_mut().enumerate() {
            t.title = PAYLOADS[(i + j) % 5].into();
        }
        for (j, n) in room.notes.iter_mut().enumerate() {
            if n.moderation != Some(ModerationState::Removed) {
                n.text = format!("{}\n{}", PAYLOADS[j % 5], PAYLOADS[(j + 3) % 5]);
            }
            if n.author.is_some() {
                n.author = Some(PAYLOADS[(j + 1) % 5].into());
            }
            if n.person.is_some() {
                n.person = Some(PAYLOADS[(j + 2) % 5].into());
            }
            if n.moderation.is_some() {
                n.moderation_reason = Some(PAYLOADS[j % 5].into());
            }
        }
    }
    for (i, t) in s.synthesis.iter_mut().enumerate() {
        t.title = PAYLOADS[(i + 4) % 5].into();
    }
    s.check(&Limits::default())
        .expect("the hostile snapshot is valid: it must be rendered inert, not refused");
    s
}

/// The names of the tags in `html`, in order (`div`, `/div`, `!doctype`, …).
fn tag_names(html: &str) -> Vec<String> {
    html.split('<')
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| !c.is_whitespace() && *c != '>')
                .collect()
        })
        .collect()
}

#[test]
fn html_renders_script_payloads_in_every_field_inert() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write_snapshot(dir.path(), "hostile.json", &hostile());
    for extra in [&[][..], &["--quote-all"][..]] {
        let html = render(&file, "html", extra);
        let lower = html.to_lowercase();
        for tag in ["<script", "<img", "<iframe", "<svg onload"] {
            assert!(!lower.contains(tag), "{tag} in the HTML report");
        }
        // Exactly the page's own elements: one style, two titles (page, chart), one svg.
        assert_eq!(lower.matches("</style>").count(), 1);
        assert_eq!(lower.matches("</title>").count(), 2);
        assert_eq!(lower.matches("<svg").count(), 1);
        assert_eq!(lower.matches("</svg>").count(), 1);
        for p in PAYLOADS {
            assert!(!html.contains(p), "{p} unescaped in the HTML report");
        }
        // The same elements, in the same order, as the report of the harmless fixture (which
        // has the same notes, flags and counts): user text added no element and closed none.
        let plain = render(Path::new(FIXTURE), "html", extra);
        assert_eq!(tag_names(&html), tag_names(&plain));
        // The payload is still there, as text.
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("&#39;&gt;&lt;svg onload=alert(1)&gt;"));

        // Markdown: every '<' from user text is escaped, so no viewer renders it as HTML;
        // except inside the chart's fenced code block, shown literally.
        let md = render(&file, "md", extra);
        let (before, rest) = md.split_once("```text\n").expect("the chart's code block");
        let (_, after) = rest.split_once("\n```\n").expect("closed");
        for part in [before, after] {
            for (i, _) in part.match_indices('<') {
                assert_eq!(
                    &part[i - 1..i],
                    "\\",
                    "unescaped '<' in the Markdown at {i}"
                );
            }
        }
    }
}

#[test]
fn the_html_report_is_one_self_contained_page_without_script() {
    let html = render(Path::new(FIXTURE), "html", &[]);
    assert!(html.starts_with("<!doctype html>\n<html lang=\"en\">"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(html.contains(
        "<title>What we heard: Community Health Forum: getting the care we need</title>"
    ));
    assert!(html.contains("<style>") && html.contains("@media print"));
    let lower = html.to_lowercase();
    for outside in ["<script", "<link", "src=", "href=", "url(", "@import"] {
        assert!(
            !lower.contains(outside),
            "{outside} in a self-contained page"
        );
    }
    assert!(html.contains("role=\"img\" aria-labelledby=\"chart-title\""));
    assert!(html.contains("<caption>Notes and dots in each theme</caption>"));
}

/// The cross-room themes and the first room's themes in the order the report must give them:
/// most notes first, then most dots. Two cross-room themes have 9 notes each (a hidden note of
/// "Being heard" is not counted); dots decide.
const CROSS: [(&str, usize, u64); 3] = [
    ("Being heard and treated with respect", 9, 47),
    ("Getting an appointment", 9, 46),
    ("Community and peer support", 6, 38),
];
const ROOM_ONE: [(&str, usize, u64); 4] = [
    ("Community groups and peer support", 4, 26),
    ("Staff who take time to listen", 4, 19),
    ("Pharmacy", 4, 15),
    ("Booking by phone and online", 2, 6),
];

fn in_order(out: &str, needles: &[String]) {
    let mut from = 0;
    for n in needles {
        let at = out[from..]
            .find(n.as_str())
            .unwrap_or_else(|| panic!("{n:?} after byte {from} of:\n{out}"));
        from += at + n.len();
    }
}

#[test]
fn markdown_and_html_rank_themes_by_notes_then_dots() {
    let fixture = Path::new(FIXTURE);
    let md = render(fixture, "md", &[]);
    let mut expected: Vec<String> = vec!["## Themes across rooms".into()];
    for (i, (title, notes, dots)) in CROSS.iter().enumerate() {
        expected.push(format!(
            "### {}. {title}\n\n{notes} notes · {dots} dots · from ",
            i + 1
        ));
    }
    expected.push("## Themes in each room".into());
    expected.push("### What's working".into());
    for (i, (title, notes, dots)) in ROOM_ONE.iter().enumerate() {
        expected.push(format!(
            "#### {}. {title}\n\n{notes} notes · {dots} dots",
            i + 1
        ));
    }
    in_order(&md, &expected);
    assert!(md.contains("from What's working (4), What could be better (4), Ideas (1)"));

    let html = html_text(&render(fixture, "html", &[]));
    let mut expected: Vec<String> = vec!["<h2 id=\"across\">Themes across rooms</h2>".into()];
    for (i, (title, notes, dots)) in CROSS.iter().enumerate() {
        expected.push(format!(
            "<h3 dir=\"auto\">{}. {title}</h3>\n<p class=\"meta\">{notes} notes · {dots} dots",
            i + 1
        ));
    }
    expected.push("<h3 dir=\"auto\">What's working</h3>".into());
    for (i, (title, notes, dots)) in ROOM_ONE.iter().enumerate() {
        expected.push(format!(
            "<h4 dir=\"auto\">{}. {title}</h4>\n<p class=\"meta\">{notes} notes · {dots} dots",
            i + 1
        ));
    }
    in_order(&html, &expected);

    // The chart and its table list the cross-room themes first, in the same order, each bar
    // with its count.
    let svg = &html[html.find("<svg").expect("svg")..html.find("</svg>").expect("end")];
    let bars: Vec<String> = CROSS
        .iter()
        .flat_map(|(t, n, _)| {
            [
                format!(">{t}</text><rect class=\"bar\""),
                format!(">{n}</text>"),
            ]
        })
        .collect();
    in_order(svg, &bars);
    let table = &html[html
        .find("<caption>Notes and dots in each theme")
        .expect("table")..];
    let rows: Vec<String> = CROSS
        .iter()
        .map(|(t, n, d)| format!("{t}</th><td class=\"num\">{n}</td><td class=\"num\">{d}</td>"))
        .collect();
    in_order(table, &rows);
}

#[test]
fn the_output_flag_writes_what_stdout_would_show() {
    let dir = tempfile::tempdir().expect("temp dir");
    for format in ["csv", "md", "html"] {
        let out = dir.path().join(format!("report.{format}"));
        let stdout = render(Path::new(FIXTURE), format, &[]);
        let written = render(
            Path::new(FIXTURE),
            format,
            &["-o", out.to_str().expect("utf-8")],
        );
        assert!(written.is_empty(), "nothing on stdout with --output");
        assert_eq!(std::fs::read_to_string(&out).expect("written"), stdout);
    }
}

/// A snapshot changed by `edit` (as JSON, to reach what the types cannot express).
fn edited(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(FIXTURE).expect("fixture")).expect("json");
    edit(&mut v);
    serde_json::to_vec(&v).expect("serialise")
}

#[test]
fn broken_or_hostile_files_are_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "the file is empty"),
        ("not json", b"hello, world".to_vec(), "not a readable"),
        ("a list", b"[1, 2, 3]".to_vec(), "not a readable"),
        (
            "cut short",
            std::fs::read(FIXTURE).expect("fixture")[..4000].to_vec(),
            "not a readable",
        ),
        (
            "deeply nested",
            "[".repeat(100_000).into_bytes(),
            "not a readable",
        ),
        (
            "wrong format",
            edited(|v| v["format"] = "trello-export".into()),
            "not a Bothy event snapshot",
        ),
        (
            "future version",
            edited(|v| v["version"] = 99.into()),
            "version 99 is not supported",
        ),
        (
            "unknown field",
            edited(|v| v["rooms"][0]["notes"][0]["script"] = "alert(1)".into()),
            "unknown field `script`",
        ),
        (
            "note too long",
            edited(|v| v["rooms"][1]["notes"][2]["text"] = "x".repeat(501).into()),
            "at most 500 characters",
        ),
        (
            "control character",
            edited(|v| v["rooms"][0]["name"] = "Room\u{7}".into()),
            "cannot be shown",
        ),
        (
            "dangling cross-room note",
            edited(|v| v["synthesis"][0]["notes"][0]["note"] = 9999.into()),
            "is not in the snapshot",
        ),
        (
            "room id twice",
            edited(|v| v["rooms"][1]["id"] = v["rooms"][0]["id"].clone()),
            "appears twice",
        ),
        (
            "theme lists a missing note",
            edited(|v| {
                v["rooms"][0]["themes"][0]["notes"]
                    .as_array_mut()
                    .expect("list")
                    .push(777.into())
            }),
            "missing note 777",
        ),
        (
            "a name in an anonymous event",
            edited(|v| v["event"]["anonymous"] = true.into()),
            "anonymity differs",
        ),
    ];
    for (name, bytes, expected) in cases {
        let file = dir.path().join(format!("{}.json", name.replace(' ', "-")));
        std::fs::write(&file, &bytes).expect("write");
        assert_refused(name, &file, &dir.path().join("never.html"), expected);
    }

    // A file that is not there.
    let out = report(&["/no/such/snapshot.json", "--format", "csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the file"));
    // A format that does not exist is a usage error (clap's exit code is 2 too).
    let out = report(&[FIXTURE, "--format", "pdf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'pdf'"));
}

/// The documented limit on a `bothy report` input file (`docs/security.md`).
const MAX_INPUT: u64 = 256 * 1024 * 1024;

#[test]
fn a_file_over_256_mib_is_refused_with_exit_code_2_and_no_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Sparse files of zeros: no disk used. One byte over the limit must be refused for its size;
    // exactly the limit must get past the size check and be refused as unreadable JSON instead.
    for (name, len, expected) in [
        ("over", MAX_INPUT + 1, "the file is larger than 256 MiB"),
        ("at", MAX_INPUT, "not a readable Bothy event snapshot"),
    ] {
        let file = dir.path().join(format!("{name}.json"));
        std::fs::File::create(&file)
            .and_then(|f| f.set_len(len))
            .expect("a sparse file");
        let out_file = dir.path().join(format!("{name}.html"));
        let stderr = assert_refused(name, &file, &out_file, expected);
        assert_eq!(
            stderr.contains("larger than"),
            len > MAX_INPUT,
            "{name}: only a file over the limit is refused for its size: {stderr:?}"
        );
    }
}

/// Runs `bothy report FILE --format html --output OUT_FILE` and checks that it was refused:
/// exit code 2, one line on stderr that names `expected`, nothing on stdout and no report
/// written. Returns the stderr.
fn assert_refused(name: &str, file: &Path, out_file: &Path, expected: &str) -> String {
    let out = report(&[
        file.to_str().expect("utf-8"),
        "--format",
        "html",
        "--output",
        out_file.to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
    assert!(stderr.starts_with("bothy report: "), "{name}: {stderr}");
    assert!(
        stderr.contains(expected),
        "{name}: {expected:?} in {stderr:?}"
    );
    assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr:?}");
    assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
    assert!(!out_file.exists(), "{name}: no report written");
    stderr
}

#[test]
fn an_anonymous_event_without_synthesis_or_themes_still_reports() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut s = fixture();
    s.event.anonymous = true;
    s.synthesis.clear();
    for room in &mut s.rooms {
        room.state.anonymous = true;
        for n in &mut room.notes {
            n.author = None;
            n.person = None;
        }
        for a in &mut room.audit {
            a.by = None;
        }
    }
    // The last room has no themes; a theme title of the first room has backticks, which must
    // not close the chart's code block in Markdown.
    let last = s.rooms.last_mut().expect("a room");
    last.themes.clear();
    for n in &mut last.notes {
        n.theme = None;
    }
    s.rooms[0].themes[0].title = "``` not code ````".into();
    let file = write_snapshot(dir.path(), "anonymous.json", &s);

    let md = render(&file, "md", &[]);
    assert!(md.contains("No themes were made across rooms."));
    assert!(md.contains("No themes in this room."));
    assert!(
        md.contains("`````text\n"),
        "the fence is longer than any run of backticks"
    );
    let html = render(&file, "html", &[]);
    assert!(html.contains("<p>No themes were made across rooms.</p>"));
    assert!(!html.contains("Across rooms</th>"));
    let (_, records) = csv_records(&render(&file, "csv", &[]));
    assert!(records.iter().all(|r| r[10].is_empty() && r[3].is_empty()));
}
