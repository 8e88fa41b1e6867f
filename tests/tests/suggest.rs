//! Suggested themes on a realistic fixture: 44 notes from three tables of a community forum on
//! local services (`tests/fixtures/suggest-notes.json`), each labelled with the theme a person
//! would put it under, or none for a one-off. Run with `--nocapture` to see the groups.

use bothy_server::suggest::{Options, Suggestion, suggest};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

#[derive(Debug, Deserialize)]
struct Fixture {
    notes: Vec<FixtureNote>,
}

#[derive(Debug, Deserialize)]
struct FixtureNote {
    room: String,
    id: u64,
    /// The theme a person would choose; `None` for a one-off.
    topic: Option<String>,
    text: String,
}

/// A note's key, as the server would pass it: room and note id.
type Key = (String, u64);

fn fixture() -> Vec<FixtureNote> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/suggest-notes.json");
    let text = std::fs::read_to_string(path).expect("read the fixture");
    let fixture: Fixture = serde_json::from_str(&text).expect("parse the fixture");
    fixture.notes
}

fn run(notes: &[FixtureNote]) -> Vec<Suggestion<Key>> {
    let input: Vec<(Key, &str)> = notes
        .iter()
        .map(|n| ((n.room.clone(), n.id), n.text.as_str()))
        .collect();
    suggest(&input, &Options::default())
}

fn topic_of<'a>(notes: &'a [FixtureNote], key: &Key) -> Option<&'a str> {
    notes
        .iter()
        .find(|n| n.room == key.0 && n.id == key.1)
        .and_then(|n| n.topic.as_deref())
}

fn text_of<'a>(notes: &'a [FixtureNote], key: &Key) -> &'a str {
    let note = notes.iter().find(|n| n.room == key.0 && n.id == key.1);
    note.map_or("", |n| n.text.as_str())
}

/// Prints the suggestions, then the unthemed notes.
fn print(notes: &[FixtureNote], suggestions: &[Suggestion<Key>]) {
    let mut grouped = BTreeSet::new();
    for s in suggestions {
        println!(
            "{:?} ({} notes, score {:.2})",
            s.title,
            s.notes.len(),
            s.score
        );
        for key in &s.notes {
            let topic = topic_of(notes, key).unwrap_or("-");
            println!(
                "    [{topic:7}] {}/{}: {}",
                key.0,
                key.1,
                text_of(notes, key)
            );
            grouped.insert(key.clone());
        }
    }
    println!("Unthemed:");
    for n in notes {
        if !grouped.contains(&(n.room.clone(), n.id)) {
            let topic = n.topic.as_deref().unwrap_or("-");
            println!("    [{topic:7}] {}/{}: {}", n.room, n.id, n.text);
        }
    }
}

#[test]
fn fixture_is_realistic() {
    let notes = fixture();
    assert!(notes.len() >= 40, "{} notes", notes.len());
    let mut per_topic: BTreeMap<Option<&str>, usize> = BTreeMap::new();
    for n in &notes {
        *per_topic.entry(n.topic.as_deref()).or_default() += 1;
    }
    for topic in ["buses", "gp", "parks", "housing"] {
        assert!(
            per_topic.get(&Some(topic)) >= Some(&6),
            "{topic}: {per_topic:?}"
        );
    }
    assert!(per_topic.get(&None) >= Some(&5), "{per_topic:?}");
}

#[test]
fn each_theme_forms_one_group() {
    let notes = fixture();
    let suggestions = run(&notes);
    print(&notes, &suggestions);
    for topic in ["buses", "gp", "parks", "housing"] {
        let of_topic: Vec<Key> = notes
            .iter()
            .filter(|n| n.topic.as_deref() == Some(topic))
            .map(|n| (n.room.clone(), n.id))
            .collect();
        // Exactly one suggestion holds this theme's notes...
        let holding: Vec<&Suggestion<Key>> = suggestions
            .iter()
            .filter(|s| s.notes.iter().any(|k| of_topic.contains(k)))
            .collect();
        assert_eq!(holding.len(), 1, "{topic} is split: {holding:#?}");
        // ...and it holds all of them.
        let missing: Vec<&str> = of_topic
            .iter()
            .filter(|k| !holding[0].notes.contains(k))
            .map(|k| text_of(&notes, k))
            .collect();
        assert!(missing.is_empty(), "{topic}: left out {missing:#?}");
    }
}

#[test]
fn no_group_mixes_themes() {
    let notes = fixture();
    for s in run(&notes) {
        let topics: BTreeSet<Option<&str>> = s.notes.iter().map(|k| topic_of(&notes, k)).collect();
        assert_eq!(topics.len(), 1, "{:?} mixes {topics:?}", s.title);
    }
}

#[test]
fn one_offs_stay_unthemed() {
    let notes = fixture();
    let suggestions = run(&notes);
    for n in notes.iter().filter(|n| n.topic.is_none()) {
        let key = (n.room.clone(), n.id);
        let found = suggestions.iter().find(|s| s.notes.contains(&key));
        assert!(found.is_none(), "{:?} was put in {found:#?}", n.text);
    }
}

#[test]
fn titles_name_the_theme() {
    let notes = fixture();
    let suggestions = run(&notes);
    let expected = [
        ("buses", "Bus"),
        ("gp", "GP"),
        ("housing", "Damp"),
        ("parks", "Park"),
    ];
    for (topic, word) in expected {
        let s = suggestions
            .iter()
            .find(|s| s.notes.iter().any(|k| topic_of(&notes, k) == Some(topic)))
            .unwrap_or_else(|| panic!("no suggestion for {topic}"));
        assert!(s.title.starts_with(word), "{topic}: title {:?}", s.title);
        assert!(s.words.len() <= 3 && !s.words.is_empty(), "{:?}", s.words);
        assert!(s.score > 0.0 && s.score <= 1.0, "{}", s.score);
    }
}

#[test]
fn same_notes_same_suggestions() {
    let notes = fixture();
    let first = run(&notes);
    assert_eq!(first, run(&notes));
    assert_eq!(first, run(&notes));
}

/// 2,000 notes (a full room) made from the fixture's words: prints how long it takes. Not timed
/// by an assertion; `cargo test --release -- --nocapture two_thousand` for a fair number.
#[test]
fn two_thousand_notes() {
    let notes = fixture();
    let words: Vec<&str> = notes
        .iter()
        .flat_map(|n| n.text.split_whitespace())
        .collect();
    let mut rng = StdRng::seed_from_u64(5);
    let texts: Vec<(usize, String)> = (0..2000)
        .map(|i| {
            let base = &notes[rng.random_range(0..notes.len())].text;
            let extra: Vec<&str> = (0..rng.random_range(0..12))
                .map(|_| words[rng.random_range(0..words.len())])
                .collect();
            (i, format!("{base} {}", extra.join(" ")))
        })
        .collect();
    let started = Instant::now();
    let suggestions = suggest(&texts, &Options::default());
    let took = started.elapsed();
    let grouped: usize = suggestions.iter().map(|s| s.notes.len()).sum();
    println!(
        "2000 notes: {} suggestions holding {grouped} notes in {took:?} ({} build)",
        suggestions.len(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let mut seen = BTreeSet::new();
    for s in &suggestions {
        assert!(s.notes.len() >= 2);
        for i in &s.notes {
            assert!(seen.insert(*i), "note {i} in two suggestions");
        }
    }
}
