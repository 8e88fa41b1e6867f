//! Reports from an event snapshot, for staff writing up "what we heard": a CSV with one row per
//! note, a Markdown report and a printable HTML page. Pure: a snapshot in, text out (the caller
//! reads files and serves downloads). `docs/reports.md` describes the formats.
//!
//! # Layout
//! - [`parse_snapshot`]: bytes of a downloaded file to a checked [`EventSnapshot`], or a message
//!   naming the problem.
//! - [`render`]: a checked snapshot to CSV, Markdown or HTML.
//! - [`Analysis`] (private): what every format reports, worked out once: each note's state,
//!   themes counted and ranked, rooms summarised.
//! - `csv`, `markdown`, `html`: one writer each, with the escaping their format needs
//!   ([`escape_html`], [`csv_cell`], `md_inline`).
//!
//! # The consent rule
//! A note's words appear in a report only when its author said it may be quoted (`quotable`), or
//! when the staff ask for every note to be quoted ([`ReportOptions::quote_all`]). Notes a
//! facilitator hid or removed are never quoted, whatever the options: the CSV lists them with a
//! marker, Markdown and HTML leave them out of every count. Display names never appear; the CSV
//! carries the pseudonym (`Person 3`) of named events so staff can see notes from one person.

use bothy_shared::Limits;
use bothy_shared::board::ModerationState;
use bothy_shared::snapshot::{EventSnapshot, NoteExport, RoomExport};
use std::collections::HashMap;
use std::fmt::Write as _;

/// The largest snapshot file read (a full event of 20 rooms of 2000 long notes is well under).
pub const MAX_SNAPSHOT_BYTES: u64 = 256 * 1024 * 1024;

/// Marker in the CSV's text column for a note whose author did not agree to be quoted.
pub const NOT_QUOTED: &str = "[not quoted: no consent]";
/// Marker in the CSV's text column for a note a facilitator hid.
pub const HIDDEN: &str = "[hidden by a facilitator]";
/// Marker in the CSV's text column for a note a facilitator removed.
pub const REMOVED: &str = "[removed by a facilitator]";

/// The themes shown in the chart (and its table); the sections below the chart list them all.
const CHART_MAX_THEMES: usize = 40;

/// A report's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One row per note, for spreadsheets (UTF-8 with a byte order mark, CRLF line ends).
    Csv,
    /// A Markdown report.
    #[value(name = "md", alias = "markdown")]
    Markdown,
    /// One self-contained HTML page to read and print (no script, no external files).
    Html,
}

impl Format {
    /// The usual file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Markdown => "md",
            Format::Html => "html",
        }
    }

    /// The media type for a download.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Markdown => "text/markdown; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
        }
    }

    /// `csv`, `md` (or `markdown`), `html`: as the command line and a download link name them.
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "csv" => Some(Format::Csv),
            "md" | "markdown" => Some(Format::Markdown),
            "html" => Some(Format::Html),
            _ => None,
        }
    }
}

/// What the staff chose for this report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportOptions {
    /// Quote every note that is not hidden or removed, also those whose authors did not say they
    /// may be quoted ("unless the staff choose otherwise").
    pub quote_all: bool,
}

/// Why a file over [`MAX_SNAPSHOT_BYTES`] is refused.
pub fn too_large() -> String {
    format!(
        "the file is larger than {} MiB, too large for an event snapshot",
        MAX_SNAPSHOT_BYTES / (1024 * 1024)
    )
}

/// Reads a downloaded snapshot file and checks it as a restore would
/// ([`EventSnapshot::check`] with the default limits). The message names the problem.
pub fn parse_snapshot(bytes: &[u8]) -> Result<EventSnapshot, String> {
    if bytes.len() as u64 > MAX_SNAPSHOT_BYTES {
        return Err(too_large());
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty, not an event snapshot".to_owned());
    }
    let snapshot: EventSnapshot = serde_json::from_slice(bytes)
        .map_err(|e| format!("this is not a readable Bothy event snapshot: {e}"))?;
    snapshot
        .check(&Limits::default())
        .map_err(|e| format!("the snapshot was refused: {e}"))?;
    Ok(snapshot)
}

/// The report of `snapshot` in `format`. The snapshot should have passed
/// [`EventSnapshot::check`]; a note or room a reference misses is skipped, never a panic.
pub fn render(snapshot: &EventSnapshot, format: Format, options: &ReportOptions) -> String {
    match format {
        Format::Csv => csv::render(snapshot, options),
        Format::Markdown => markdown::render(&Analysis::new(snapshot, options)),
        Format::Html => html::render(&Analysis::new(snapshot, options)),
    }
}

// ---------------------------------------------------------------------------------------------
// What a note shows

/// What a report may show of one note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// Its words.
    Quoted,
    /// Counted, but its author did not agree to be quoted.
    NoConsent,
    /// Hidden by a facilitator: not counted, never quoted.
    Hidden,
    /// Removed by a facilitator: not counted, never quoted.
    Removed,
}

fn shown(note: &NoteExport, options: &ReportOptions) -> Shown {
    match note.moderation {
        Some(ModerationState::Removed) => Shown::Removed,
        Some(ModerationState::Hidden) => Shown::Hidden,
        None if note.quotable || options.quote_all => Shown::Quoted,
        None => Shown::NoConsent,
    }
}

/// Whether a note counts in themes, rooms and totals: anything a facilitator did not hide or
/// remove (private notes never revealed included: somebody still said it).
fn counted(note: &NoteExport) -> bool {
    note.moderation.is_none()
}

// ---------------------------------------------------------------------------------------------
// The analysis shared by Markdown and HTML

/// A note and the room it came from.
#[derive(Clone, Copy)]
struct Placed<'a> {
    room: &'a RoomExport,
    note: &'a NoteExport,
}

/// A theme (across rooms, within a room, or a room's unthemed notes) as reported.
struct ThemeReport<'a> {
    title: &'a str,
    /// Counted notes, most dots first (then oldest first).
    notes: Vec<Placed<'a>>,
    dots: u64,
    /// The rooms the notes came from, in the event's order, with how many notes each.
    rooms: Vec<(&'a RoomExport, usize)>,
}

impl<'a> ThemeReport<'a> {
    fn new(title: &'a str, snapshot: &'a EventSnapshot, mut notes: Vec<Placed<'a>>) -> Self {
        notes.retain(|p| counted(p.note));
        notes.sort_by(|a, b| {
            b.note
                .votes
                .cmp(&a.note.votes)
                .then(a.note.created_at.cmp(&b.note.created_at))
                .then(a.note.id.cmp(&b.note.id))
        });
        let dots = notes.iter().map(|p| u64::from(p.note.votes)).sum();
        let rooms = snapshot
            .rooms
            .iter()
            .filter_map(|r| {
                let n = notes.iter().filter(|p| p.room.id == r.id).count();
                (n > 0).then_some((r, n))
            })
            .collect();
        Self {
            title,
            notes,
            dots,
            rooms,
        }
    }

    fn quoted<'s>(&'s self, options: &'s ReportOptions) -> impl Iterator<Item = Placed<'a>> + 's {
        self.notes
            .iter()
            .copied()
            .filter(move |p| shown(p.note, options) == Shown::Quoted)
    }

    fn not_quoted(&self, options: &ReportOptions) -> usize {
        self.notes.len() - self.quoted(options).count()
    }
}

/// Most notes first, then most dots; ties keep the snapshot's order.
fn rank(themes: &mut [ThemeReport<'_>]) {
    themes.sort_by(|a, b| b.notes.len().cmp(&a.notes.len()).then(b.dots.cmp(&a.dots)));
}

/// One room as reported.
struct RoomReport<'a> {
    room: &'a RoomExport,
    /// Counted notes.
    notes: usize,
    dots: u64,
    /// The room's own themes, ranked.
    themes: Vec<ThemeReport<'a>>,
    /// Counted notes in no theme of the room.
    unthemed: ThemeReport<'a>,
    hidden: usize,
    removed: usize,
    /// Counted notes written in private writing and never revealed.
    private: usize,
    /// Counted notes a facilitator added for someone without a device.
    proxy: usize,
}

/// Everything Markdown and HTML report.
struct Analysis<'a> {
    snapshot: &'a EventSnapshot,
    options: &'a ReportOptions,
    /// The synthesis board's themes, ranked.
    cross: Vec<ThemeReport<'a>>,
    rooms: Vec<RoomReport<'a>>,
    /// Counted notes and their dots, in the whole event.
    notes: usize,
    dots: u64,
    /// First and last note's time (ms), if there are notes.
    span: Option<(u64, u64)>,
}

impl<'a> Analysis<'a> {
    fn new(snapshot: &'a EventSnapshot, options: &'a ReportOptions) -> Self {
        let by_ref: HashMap<(&str, u64), Placed<'a>> = snapshot
            .rooms
            .iter()
            .flat_map(|room| {
                room.notes
                    .iter()
                    .map(move |note| ((room.id.as_str(), note.id), Placed { room, note }))
            })
            .collect();
        let mut cross: Vec<ThemeReport<'a>> = snapshot
            .synthesis
            .iter()
            .map(|t| {
                let notes = t
                    .notes
                    .iter()
                    .filter_map(|r| by_ref.get(&(r.room.as_str(), r.note)).copied())
                    .collect();
                ThemeReport::new(&t.title, snapshot, notes)
            })
            .collect();
        rank(&mut cross);
        let rooms: Vec<RoomReport<'a>> = snapshot
            .rooms
            .iter()
            .map(|room| Self::room(snapshot, room))
            .collect();
        let all = || snapshot.rooms.iter().flat_map(|r| r.notes.iter());
        let span = all()
            .map(|n| n.created_at)
            .min()
            .zip(all().map(|n| n.created_at).max());
        Self {
            snapshot,
            options,
            cross,
            notes: rooms.iter().map(|r| r.notes).sum(),
            dots: rooms.iter().map(|r| r.dots).sum(),
            rooms,
            span,
        }
    }

    fn room(snapshot: &'a EventSnapshot, room: &'a RoomExport) -> RoomReport<'a> {
        let placed = |note| Placed { room, note };
        let mut themes: Vec<ThemeReport<'a>> = room
            .themes
            .iter()
            .map(|t| {
                let notes = room
                    .notes
                    .iter()
                    .filter(|n| n.theme == Some(t.id))
                    .map(placed)
                    .collect();
                ThemeReport::new(&t.title, snapshot, notes)
            })
            .collect();
        rank(&mut themes);
        let theme_ids: Vec<u64> = room.themes.iter().map(|t| t.id).collect();
        let unthemed = room
            .notes
            .iter()
            .filter(|n| !n.theme.is_some_and(|t| theme_ids.contains(&t)))
            .map(placed)
            .collect();
        let live = room.notes.iter().filter(|n| counted(n));
        let moderated = |state| {
            room.notes
                .iter()
                .filter(|n| n.moderation == Some(state))
                .count()
        };
        RoomReport {
            room,
            notes: live.clone().count(),
            dots: live.clone().map(|n| u64::from(n.votes)).sum(),
            themes,
            unthemed: ThemeReport::new("Not in a theme", snapshot, unthemed),
            hidden: moderated(ModerationState::Hidden),
            removed: moderated(ModerationState::Removed),
            private: live.clone().filter(|n| n.private).count(),
            proxy: live.filter(|n| n.proxy).count(),
        }
    }

    fn title(&self) -> String {
        format!("What we heard: {}", self.snapshot.event.title)
    }

    /// "Notes written on 12 March 2025 · snapshot taken 12 March 2025 at 15:42 UTC".
    fn dates(&self) -> String {
        let written = match self.span {
            Some((first, last)) if human_date(first) == human_date(last) => {
                format!("Notes written on {}", human_date(first))
            }
            Some((first, last)) => format!(
                "Notes written from {} to {}",
                human_date(first),
                human_date(last)
            ),
            None => "No notes were written".to_owned(),
        };
        let taken = self.snapshot.exported_at;
        format!(
            "{written} · snapshot taken {} at {} UTC",
            human_date(taken),
            hour_minute(taken)
        )
    }

    /// "3 rooms · 47 notes · 221 dots · 3 themes across rooms".
    fn totals(&self) -> String {
        format!(
            "{} · {} · {} · {} across rooms",
            count(self.rooms.len(), "room", "rooms"),
            count(self.notes, "note", "notes"),
            count_u64(self.dots, "dot", "dots"),
            count(self.cross.len(), "theme", "themes"),
        )
    }

    /// What the reader must know about quoting, in plain words.
    fn consent_rule(&self) -> &'static str {
        if self.options.quote_all {
            "The staff chose to quote every note word for word, including notes whose authors \
             did not say they could be quoted. Notes hidden or removed by a facilitator are \
             neither counted nor quoted. Names are not shown."
        } else {
            "Notes are quoted word for word only where the person who wrote them said it was OK \
             to quote them. Other notes are counted in their theme but not quoted. Notes hidden \
             or removed by a facilitator are neither counted nor quoted. Names are not shown."
        }
    }

    /// The chart's groups: across rooms, then each room; at most [`CHART_MAX_THEMES`] themes in
    /// all, each group ranked.
    fn chart(&self) -> Vec<(&str, Vec<&ThemeReport<'a>>)> {
        let mut groups = Vec::new();
        let mut left = CHART_MAX_THEMES;
        let sources = std::iter::once(("Across rooms", &self.cross))
            .chain(self.rooms.iter().map(|r| (r.room.name.as_str(), &r.themes)));
        for (name, themes) in sources {
            let n = themes.len().min(left);
            left -= n;
            if n > 0 {
                groups.push((name, themes[..n].iter().collect()));
            }
        }
        groups
    }

    fn chart_len(&self) -> usize {
        self.cross.len() + self.rooms.iter().map(|r| r.themes.len()).sum::<usize>()
    }

    /// "6 dots · added for someone without a device · never revealed to the room".
    fn note_details(note: &NoteExport) -> String {
        let mut s = count_u64(u64::from(note.votes), "dot", "dots");
        if note.proxy {
            s.push_str(" · added by a facilitator for someone without a device");
        }
        if note.private {
            s.push_str(" · never revealed to the room");
        }
        s
    }

    /// "3 more notes not quoted (their authors did not say they could be quoted)".
    fn not_quoted_line(n: usize) -> String {
        format!(
            "{} more {} not quoted (the {} did not say {} could be quoted).",
            n,
            if n == 1 { "note" } else { "notes" },
            if n == 1 { "author" } else { "authors" },
            if n == 1 { "it" } else { "they" },
        )
    }

    fn room_line(r: &RoomReport<'_>) -> String {
        let mut parts = vec![
            count(r.notes, "note", "notes"),
            count_u64(r.dots, "dot", "dots"),
            count(r.themes.len(), "theme", "themes"),
        ];
        if r.proxy > 0 {
            parts.push(format!(
                "{} added for {} without a device",
                count(r.proxy, "note", "notes"),
                if r.proxy == 1 { "someone" } else { "people" }
            ));
        }
        if r.private > 0 {
            parts.push(format!(
                "{} never revealed to the room",
                count(r.private, "note", "notes")
            ));
        }
        let mut line = parts.join(" · ");
        let moderated = match (r.hidden, r.removed) {
            (0, 0) => None,
            (h, 0) => Some(format!("{h} hidden")),
            (0, m) => Some(format!("{m} removed")),
            (h, m) => Some(format!("{h} hidden and {m} removed")),
        };
        if let Some(m) = moderated {
            let _ = write!(line, " · {m} by a facilitator (not counted)");
        }
        line
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn count_u64(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

// ---------------------------------------------------------------------------------------------
// Time (UTC, from milliseconds since the Unix epoch; no time zone database needed)

/// Year, month (1-12), day, hour, minute, second.
fn utc(ms: u64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = (ms / 1000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem / 3600, rem / 60 % 60, rem % 60)
}

/// ISO 8601 in UTC: `2025-03-12T10:05:00Z`.
pub fn iso8601(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = utc(ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `2025-03-12` (UTC), for file names.
pub fn file_date(ms: u64) -> String {
    let (y, mo, d, ..) = utc(ms);
    format!("{y:04}-{mo:02}-{d:02}")
}

/// `12 March 2025`.
fn human_date(ms: u64) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let (y, mo, d, ..) = utc(ms);
    format!("{d} {} {y}", MONTHS[(mo as usize).saturating_sub(1) % 12])
}

/// `15:42`.
fn hour_minute(ms: u64) -> String {
    let (_, _, _, h, mi, _) = utc(ms);
    format!("{h:02}:{mi:02}")
}

// ---------------------------------------------------------------------------------------------
// CSV

/// A CSV cell as RFC 4180 and spreadsheets want it. A cell starting with `=`, `+`, `-`, `@`, a
/// tab or a carriage return gets a leading apostrophe, so a spreadsheet shows it as text and
/// never runs it as a formula (OWASP, "CSV Injection"). A cell holding a comma, a double quote,
/// a line break or an apostrophe-escaped formula is quoted, its double quotes doubled.
pub fn csv_cell(value: &str) -> String {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let value = if formula {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\r', '\n']) || formula {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

mod csv {
    use super::*;

    /// The header row. Kept stable: spreadsheets and scripts refer to these names.
    pub const HEADER: [&str; 13] = [
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

    /// A byte order mark, the header, then one row per note: rooms in the event's order, notes
    /// oldest first. Lines end in CRLF (RFC 4180).
    pub fn render(snapshot: &EventSnapshot, options: &ReportOptions) -> String {
        let cross: HashMap<(&str, u64), &str> = snapshot
            .synthesis
            .iter()
            .flat_map(|t| {
                t.notes
                    .iter()
                    .map(|r| ((r.room.as_str(), r.note), t.title.as_str()))
            })
            .collect();
        // The BOM tells Excel the file is UTF-8 (without it, "café" opens as "cafÃ©").
        let mut out = String::from("\u{FEFF}");
        row(&mut out, HEADER);
        for room in &snapshot.rooms {
            let themes: HashMap<u64, &str> = room
                .themes
                .iter()
                .map(|t| (t.id, t.title.as_str()))
                .collect();
            let mut notes: Vec<&NoteExport> = room.notes.iter().collect();
            notes.sort_by_key(|n| (n.created_at, n.id));
            for note in notes {
                let text = match shown(note, options) {
                    Shown::Quoted => note.text.as_str(),
                    Shown::NoConsent => NOT_QUOTED,
                    Shown::Hidden => HIDDEN,
                    Shown::Removed => REMOVED,
                };
                let status = match note.moderation {
                    Some(ModerationState::Removed) => "removed",
                    Some(ModerationState::Hidden) => "hidden",
                    None if note.private => "private",
                    None => "shown",
                };
                let theme = note.theme.and_then(|t| themes.get(&t).copied());
                let cross_theme = cross.get(&(room.id.as_str(), note.id)).copied();
                row(
                    &mut out,
                    [
                        room.name.as_str(),
                        room.prompt.as_str(),
                        theme.unwrap_or(""),
                        cross_theme.unwrap_or(""),
                        text,
                        &note.votes.to_string(),
                        &iso8601(note.created_at),
                        yes_no(note.proxy),
                        yes_no(note.quotable),
                        status,
                        note.person.as_deref().unwrap_or(""),
                        room.id.as_str(),
                        &note.id.to_string(),
                    ],
                );
            }
        }
        out
    }

    fn yes_no(b: bool) -> &'static str {
        if b { "yes" } else { "no" }
    }

    fn row<'s>(out: &mut String, cells: impl IntoIterator<Item = &'s str>) {
        for (i, cell) in cells.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&csv_cell(cell));
        }
        out.push_str("\r\n");
    }
}

// ---------------------------------------------------------------------------------------------
// Markdown

/// User text for Markdown, shown literally: every character with a meaning inline (emphasis,
/// code, links, HTML, entities, tables, strikethrough) is backslash-escaped, and so is a first
/// character that would start a block (heading, quote, list, rule). Line breaks become spaces;
/// callers that keep lines split first.
fn md_inline(s: &str) -> String {
    let line = s.split(['\n', '\r']).collect::<Vec<_>>().join(" ");
    let line = line.trim();
    let mut out = String::with_capacity(line.len() + 8);
    for (i, c) in line.chars().enumerate() {
        let starts_block = i == 0 && matches!(c, '#' | '-' | '+' | '=');
        if starts_block
            || matches!(
                c,
                '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '!'
            )
        {
            out.push('\\');
        }
        out.push(c);
    }
    // "1. " or "2) " at the start would make a numbered list.
    let digits = out.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && matches!(out[digits..].chars().next(), Some('.' | ')')) {
        out.insert(digits, '\\');
    }
    out
}

/// A note's text as Markdown lines, each escaped, joined by hard line breaks.
fn md_lines(s: &str) -> Vec<String> {
    s.lines().map(md_inline).filter(|l| !l.is_empty()).collect()
}

mod markdown {
    use super::*;

    pub fn render(a: &Analysis<'_>) -> String {
        let mut out = String::new();
        let o = &mut out;
        let _ = writeln!(o, "# {}\n", md_inline(&a.title()));
        let _ = writeln!(
            o,
            "{}\\\n{}\n",
            md_inline(&a.dates()),
            md_inline(&a.totals())
        );
        let _ = writeln!(o, "**Quoting.** {}\n", a.consent_rule());

        let _ = writeln!(o, "## Rooms\n");
        let _ = writeln!(o, "| Room | Prompt | Notes | Themes | Dots |");
        let _ = writeln!(o, "| --- | --- | ---: | ---: | ---: |");
        for r in &a.rooms {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                md_inline(&r.room.name),
                md_inline(&r.room.prompt),
                r.notes,
                r.themes.len(),
                r.dots
            );
        }
        o.push('\n');

        chart(o, a);

        let _ = writeln!(o, "## Themes across rooms\n");
        if a.cross.is_empty() {
            let _ = writeln!(o, "No themes were made across rooms.\n");
        }
        for (i, t) in a.cross.iter().enumerate() {
            let _ = writeln!(o, "### {}. {}\n", i + 1, md_inline(t.title));
            let from: Vec<String> = t
                .rooms
                .iter()
                .map(|(r, n)| format!("{} ({n})", md_inline(&r.name)))
                .collect();
            let mut line = format!(
                "{} · {}",
                count(t.notes.len(), "note", "notes"),
                count_u64(t.dots, "dot", "dots")
            );
            if !from.is_empty() {
                let _ = write!(line, " · from {}", from.join(", "));
            }
            let _ = writeln!(o, "{line}\n");
            quotes(o, a, t, true);
        }

        let _ = writeln!(o, "## Themes in each room\n");
        for r in &a.rooms {
            let _ = writeln!(o, "### {}\n", md_inline(&r.room.name));
            let _ = writeln!(o, "Prompt: {}\\", md_inline(&r.room.prompt));
            let _ = writeln!(o, "{}\n", md_inline(&Analysis::room_line(r)));
            if r.themes.is_empty() {
                let _ = writeln!(o, "No themes in this room.\n");
            }
            for (i, t) in r.themes.iter().enumerate() {
                let _ = writeln!(o, "#### {}. {}\n", i + 1, md_inline(t.title));
                let _ = writeln!(
                    o,
                    "{} · {}\n",
                    count(t.notes.len(), "note", "notes"),
                    count_u64(t.dots, "dot", "dots")
                );
                quotes(o, a, t, false);
            }
            if !r.unthemed.notes.is_empty() {
                let _ = writeln!(o, "#### Not in a theme\n");
                let _ = writeln!(
                    o,
                    "{} · {}\n",
                    count(r.unthemed.notes.len(), "note", "notes"),
                    count_u64(r.unthemed.dots, "dot", "dots")
                );
                quotes(o, a, &r.unthemed, false);
            }
        }
        let _ = writeln!(
            o,
            "---\n\nMade by Bothy from the event snapshot. Times are in UTC."
        );
        out
    }

    fn quotes(o: &mut String, a: &Analysis<'_>, t: &ThemeReport<'_>, with_room: bool) {
        for p in t.quoted(a.options) {
            for line in md_lines(&p.note.text) {
                let _ = writeln!(o, "> {line}\\");
            }
            let mut source = String::new();
            if with_room {
                let _ = write!(source, "{} · ", md_inline(&p.room.name));
            }
            source.push_str(&Analysis::note_details(p.note));
            let _ = writeln!(o, "> — {source}\n");
        }
        let rest = t.not_quoted(a.options);
        if rest > 0 {
            let _ = writeln!(o, "{}\n", Analysis::not_quoted_line(rest));
        }
    }

    /// A text bar chart in a code block (most Markdown viewers strip inline SVG), then the same
    /// figures as a table.
    fn chart(o: &mut String, a: &Analysis<'_>) {
        let _ = writeln!(o, "## Themes at a glance\n");
        let groups = a.chart();
        if groups.is_empty() {
            let _ = writeln!(o, "No themes were made.\n");
            return;
        }
        let max = groups
            .iter()
            .flat_map(|(_, ts)| ts.iter().map(|t| t.notes.len()))
            .max()
            .unwrap_or(0)
            .max(1);
        let width = groups
            .iter()
            .flat_map(|(_, ts)| ts.iter().map(|t| t.title.chars().count()))
            .max()
            .unwrap_or(0)
            .min(40);
        let mut block = String::new();
        for (gi, (group, themes)) in groups.iter().enumerate() {
            if gi > 0 {
                block.push('\n');
            }
            let _ = writeln!(block, "{}", one_line(group));
            for t in themes {
                let label = truncate(&one_line(t.title), width);
                let pad = width.saturating_sub(label.chars().count());
                let bar = "█".repeat((t.notes.len() * 30).div_ceil(max));
                let _ = writeln!(
                    block,
                    "  {label}{} {bar} {}",
                    " ".repeat(pad),
                    t.notes.len()
                );
            }
        }
        let longest_ticks = longest_run(&block, '`');
        let fence = "`".repeat(longest_ticks.max(2) + 1);
        let _ = writeln!(o, "Notes per theme:\n\n{fence}text\n{block}{fence}\n");
        let _ = writeln!(o, "| Theme | Where | Notes | Dots |");
        let _ = writeln!(o, "| --- | --- | ---: | ---: |");
        for (group, themes) in &groups {
            for t in themes {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} |",
                    md_inline(t.title),
                    md_inline(group),
                    t.notes.len(),
                    t.dots
                );
            }
        }
        let hidden = a.chart_len().saturating_sub(CHART_MAX_THEMES);
        if hidden > 0 {
            let _ = writeln!(
                o,
                "\nThe chart shows the first {CHART_MAX_THEMES} themes; {hidden} more are listed below."
            );
        }
        o.push('\n');
    }

    fn one_line(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn longest_run(s: &str, c: char) -> usize {
        let (mut best, mut run) = (0, 0);
        for ch in s.chars() {
            run = if ch == c { run + 1 } else { 0 };
            best = best.max(run);
        }
        best
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

// ---------------------------------------------------------------------------------------------
// HTML

/// Text for HTML element content and attribute values: `&`, `<`, `>`, `"` and `'` become
/// character references. Every piece of user text in the page goes through here.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

mod html {
    use super::*;

    /// Dark blue bars and rules: 8.6:1 on white (text), well above 3:1 (graphics).
    const STYLE: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: #1b1b1b;
  font: 1rem/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 48rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.8rem; line-height: 1.2; margin: 0 0 .5rem; }
h2 { font-size: 1.4rem; line-height: 1.25; margin: 2.5rem 0 .75rem; padding-bottom: .25rem;
  border-bottom: 2px solid #1d4f91; }
h3 { font-size: 1.2rem; line-height: 1.3; margin: 2rem 0 .25rem; }
h4 { font-size: 1.05rem; line-height: 1.3; margin: 1.5rem 0 .25rem; }
p { margin: .5rem 0; }
.meta { color: #444; margin: .25rem 0; }
.prompt { font-style: italic; }
.consent { margin: 1.25rem 0; padding: .75rem 1rem; background: #eef3f9;
  border-left: 4px solid #1d4f91; }
h1, h2, h3, h4, p, td, th, figcaption { overflow-wrap: anywhere; }
/* Fixed layout: the number columns keep their width and the first column takes the rest, so
   long words break only where they must. */
table { border-collapse: collapse; width: 100%; margin: .75rem 0 1.25rem; table-layout: fixed; }
caption { text-align: left; font-weight: 600; padding: 0 0 .35rem; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem;
  border-bottom: 1px solid #bbb; }
thead th { border-bottom: 2px solid #1b1b1b; }
.num { text-align: right; white-space: nowrap; width: 4.75rem; }
.rooms .name { display: block; }
.rooms .prompt-line { display: block; font-weight: 400; font-style: italic; }
.room { margin-top: 2.5rem; padding-top: .25rem; border-top: 1px solid #bbb; }
.room > h3 { font-size: 1.3rem; margin-top: .75rem; }
h2 + .room { margin-top: 0; padding-top: 0; border-top: none; }
tbody th[scope="rowgroup"] { background: #eef3f9; }
figure { margin: 0; }
.quote { margin: .75rem 0; padding: .5rem .85rem; border-left: 4px solid #1d4f91;
  background: #f6f6f6; }
.quote blockquote { margin: 0; }
.quote blockquote p { margin: 0; white-space: pre-line; }
.quote figcaption { margin-top: .25rem; font-size: .9rem; color: #444; }
.more { color: #444; }
.chart { margin: 1rem 0 .5rem; }
.chart svg { display: block; width: 100%; }
.chart text { font-size: 14px; fill: #1b1b1b; }
.chart .group { font-weight: 700; }
.chart .bar { fill: #1d4f91; }
.theme { margin-bottom: 1.5rem; }
footer { margin-top: 3rem; padding-top: .75rem; border-top: 1px solid #bbb; color: #444;
  font-size: .9rem; }
@media (max-width: 30rem) {
  main { padding: 1rem .75rem 2rem; }
  h1 { font-size: 1.5rem; }
  th, td { padding: .3rem .3rem; }
  table { font-size: .9rem; }
  .num { width: 4rem; }
}
@media print {
  @page { margin: 16mm 14mm; }
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  h2 { break-before: auto; }
  h2, h3, h4 { break-after: avoid; }
  .quote, tr, .chart, .consent, .theme-head { break-inside: avoid; }
  .chart .bar, .consent, .quote, tbody th[scope="rowgroup"] {
    print-color-adjust: exact; -webkit-print-color-adjust: exact; }
}
"#;

    pub fn render(a: &Analysis<'_>) -> String {
        let mut out = String::with_capacity(32 * 1024);
        let o = &mut out;
        let title = escape_html(&a.title());
        let _ = write!(
            o,
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
        );
        let _ = writeln!(o, "<header>\n<h1 dir=\"auto\">{title}</h1>");
        let _ = writeln!(o, "<p class=\"meta\">{}</p>", escape_html(&a.dates()));
        let _ = writeln!(
            o,
            "<p class=\"meta\">{}</p>\n</header>",
            escape_html(&a.totals())
        );
        let _ = writeln!(
            o,
            "<p class=\"consent\"><strong>Quoting.</strong> {}</p>",
            escape_html(a.consent_rule())
        );

        rooms_table(o, a);
        chart(o, a);

        let _ = writeln!(o, "<h2 id=\"across\">Themes across rooms</h2>");
        if a.cross.is_empty() {
            let _ = writeln!(o, "<p>No themes were made across rooms.</p>");
        }
        for (i, t) in a.cross.iter().enumerate() {
            let _ = writeln!(o, "<section class=\"theme\">");
            let _ = writeln!(
                o,
                "<div class=\"theme-head\"><h3 dir=\"auto\">{}. {}</h3>",
                i + 1,
                escape_html(t.title)
            );
            let from: Vec<String> = t
                .rooms
                .iter()
                .map(|(r, n)| format!("{} ({n})", escape_html(&r.name)))
                .collect();
            let mut line = format!(
                "{} · {}",
                count(t.notes.len(), "note", "notes"),
                count_u64(t.dots, "dot", "dots")
            );
            if !from.is_empty() {
                let _ = write!(line, " · from {}", from.join(", "));
            }
            let _ = writeln!(o, "<p class=\"meta\">{line}</p></div>");
            quotes(o, a, t, true);
            let _ = writeln!(o, "</section>");
        }

        let _ = writeln!(o, "<h2 id=\"rooms-themes\">Themes in each room</h2>");
        for r in &a.rooms {
            let _ = writeln!(o, "<section class=\"room\">");
            let _ = writeln!(
                o,
                "<h3 dir=\"auto\">{}</h3>\n<p class=\"prompt\" dir=\"auto\">{}</p>",
                escape_html(&r.room.name),
                escape_html(&r.room.prompt)
            );
            let _ = writeln!(
                o,
                "<p class=\"meta\">{}</p>",
                escape_html(&Analysis::room_line(r))
            );
            if r.themes.is_empty() {
                let _ = writeln!(o, "<p>No themes in this room.</p>");
            }
            for (i, t) in r.themes.iter().enumerate() {
                room_theme(o, a, &format!("{}. {}", i + 1, t.title), t);
            }
            if !r.unthemed.notes.is_empty() {
                room_theme(o, a, r.unthemed.title, &r.unthemed);
            }
            let _ = writeln!(o, "</section>");
        }
        let _ = writeln!(
            o,
            "<footer><p>Made by Bothy from the event snapshot. Times are in UTC.</p></footer>"
        );
        let _ = writeln!(o, "</main>\n</body>\n</html>");
        out
    }

    fn room_theme(o: &mut String, a: &Analysis<'_>, heading: &str, t: &ThemeReport<'_>) {
        let _ = writeln!(
            o,
            "<section class=\"theme\">\n<div class=\"theme-head\"><h4 dir=\"auto\">{}</h4>",
            escape_html(heading)
        );
        let _ = writeln!(
            o,
            "<p class=\"meta\">{} · {}</p></div>",
            count(t.notes.len(), "note", "notes"),
            count_u64(t.dots, "dot", "dots")
        );
        quotes(o, a, t, false);
        let _ = writeln!(o, "</section>");
    }

    fn quotes(o: &mut String, a: &Analysis<'_>, t: &ThemeReport<'_>, with_room: bool) {
        for p in t.quoted(a.options) {
            let mut source = String::from("— ");
            if with_room {
                let _ = write!(source, "{} · ", escape_html(&p.room.name));
            }
            source.push_str(&escape_html(&Analysis::note_details(p.note)));
            let _ = writeln!(
                o,
                "<figure class=\"quote\"><blockquote><p dir=\"auto\">{}</p></blockquote>\
                 <figcaption>{source}</figcaption></figure>",
                escape_html(p.note.text.trim())
            );
        }
        let rest = t.not_quoted(a.options);
        if rest > 0 {
            let _ = writeln!(
                o,
                "<p class=\"more\">{}</p>",
                escape_html(&Analysis::not_quoted_line(rest))
            );
        }
    }

    fn rooms_table(o: &mut String, a: &Analysis<'_>) {
        let _ = writeln!(o, "<h2 id=\"rooms\">Rooms</h2>");
        let _ = writeln!(
            o,
            "<table class=\"rooms\">\n<caption>Notes, themes and dots in each room</caption>\n\
             <thead><tr><th scope=\"col\">Room and prompt</th>\
             <th scope=\"col\" class=\"num\">Notes</th><th scope=\"col\" class=\"num\">Themes</th>\
             <th scope=\"col\" class=\"num\">Dots</th></tr></thead>\n<tbody>"
        );
        for r in &a.rooms {
            let _ = writeln!(
                o,
                "<tr><th scope=\"row\"><span class=\"name\" dir=\"auto\">{}</span> \
                 <span class=\"prompt-line\" dir=\"auto\">{}</span></th>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                escape_html(&r.room.name),
                escape_html(&r.room.prompt),
                r.notes,
                r.themes.len(),
                r.dots
            );
        }
        let _ = writeln!(o, "</tbody>\n</table>");
    }

    /// The bar chart as inline SVG: groups (across rooms, then each room), each theme a label
    /// line and a bar whose length is its notes, with the count after the bar. Widths are
    /// percentages and text is in pixels, so the chart fills any width and its text stays
    /// readable on a phone. The same figures follow as a table.
    fn chart(o: &mut String, a: &Analysis<'_>) {
        let _ = writeln!(o, "<h2 id=\"glance\">Themes at a glance</h2>");
        let groups = a.chart();
        if groups.is_empty() {
            let _ = writeln!(o, "<p>No themes were made.</p>");
            return;
        }
        let max = groups
            .iter()
            .flat_map(|(_, ts)| ts.iter().map(|t| t.notes.len()))
            .max()
            .unwrap_or(0)
            .max(1);
        const GROUP: u32 = 30;
        const ROW: u32 = 48;
        let mut body = String::new();
        let mut y: u32 = 0;
        for (gi, (group, themes)) in groups.iter().enumerate() {
            if gi > 0 {
                y += 12;
            }
            let _ = writeln!(
                body,
                "<text class=\"group\" x=\"0\" y=\"{}\">{}</text>",
                y + 18,
                escape_html(&truncate(group, 38))
            );
            y += GROUP;
            for t in themes {
                let n = t.notes.len();
                // The longest bar takes 85% of the width, leaving room for its count.
                let pct = (n as f64) * 85.0 / (max as f64);
                let _ = writeln!(
                    body,
                    "<text x=\"0\" y=\"{}\">{}</text>\
                     <rect class=\"bar\" x=\"0\" y=\"{}\" width=\"{pct:.1}%\" height=\"18\" rx=\"2\"></rect>\
                     <text x=\"{pct:.1}%\" dx=\"6\" y=\"{}\">{n}</text>",
                    y + 15,
                    escape_html(&truncate(t.title, 38)),
                    y + 21,
                    y + 35,
                );
                y += ROW;
            }
        }
        let _ = writeln!(
            o,
            "<figure class=\"chart\">\n<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" \
             aria-labelledby=\"chart-title\" width=\"100%\" height=\"{y}\">\n\
             <title id=\"chart-title\">Bar chart of the number of notes in each theme, across \
             rooms and then room by room. The table after the chart gives the same figures.\
             </title>\n{body}</svg>\n</figure>"
        );
        let _ = writeln!(
            o,
            "<table>\n<caption>Notes and dots in each theme</caption>\n<thead><tr>\
             <th scope=\"col\">Theme</th><th scope=\"col\" class=\"num\">Notes</th>\
             <th scope=\"col\" class=\"num\">Dots</th></tr></thead>"
        );
        for (group, themes) in &groups {
            let _ = writeln!(
                o,
                "<tbody><tr><th scope=\"rowgroup\" colspan=\"3\" dir=\"auto\">{}</th></tr>",
                escape_html(group)
            );
            for t in themes {
                let _ = writeln!(
                    o,
                    "<tr><th scope=\"row\" dir=\"auto\">{}</th><td class=\"num\">{}</td>\
                     <td class=\"num\">{}</td></tr>",
                    escape_html(t.title),
                    t.notes.len(),
                    t.dots
                );
            }
            let _ = writeln!(o, "</tbody>");
        }
        let _ = writeln!(o, "</table>");
        let hidden = a.chart_len().saturating_sub(CHART_MAX_THEMES);
        if hidden > 0 {
            let _ = writeln!(
                o,
                "<p>The chart shows the first {CHART_MAX_THEMES} themes; {hidden} more are listed below.</p>"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_match_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        // 2024-02-29 (a leap day), 12:34:56.789.
        assert_eq!(iso8601(1_709_210_096_789), "2024-02-29T12:34:56Z");
        assert_eq!(iso8601(1_741_794_120_000), "2025-03-12T15:42:00Z");
        assert_eq!(human_date(1_741_794_120_000), "12 March 2025");
        assert_eq!(iso8601(4_102_444_799_000), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn csv_cells_neutralise_formulas_and_quote_separators() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("=SUM(A1)"), "\"'=SUM(A1)\"");
        assert_eq!(csv_cell("+1"), "\"'+1\"");
        assert_eq!(csv_cell("-2"), "\"'-2\"");
        assert_eq!(csv_cell("@cmd"), "\"'@cmd\"");
        assert_eq!(csv_cell("\tx"), "\"'\tx\"");
        assert_eq!(csv_cell("a, \"b\""), "\"a, \"\"b\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("a=b"), "a=b");
    }

    #[test]
    fn html_escapes_all_five() {
        assert_eq!(
            escape_html(r#"<a href="x" title='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn markdown_text_is_literal() {
        assert_eq!(md_inline("# not a heading"), "\\# not a heading");
        assert_eq!(md_inline("1. not a list"), "1\\. not a list");
        assert_eq!(md_inline("- nor this"), "\\- nor this");
        assert_eq!(
            md_inline("<script>*x* [a](b) a|b"),
            "\\<script\\>\\*x\\* \\[a\\](b) a\\|b"
        );
        assert_eq!(md_inline("two\nlines"), "two lines");
        assert_eq!(md_inline("back\\slash"), "back\\\\slash");
    }

    #[test]
    fn formats_are_named_as_on_the_command_line() {
        for f in [Format::Csv, Format::Markdown, Format::Html] {
            assert_eq!(Format::from_name(f.extension()), Some(f));
        }
        assert_eq!(Format::from_name("pdf"), None);
    }
}
