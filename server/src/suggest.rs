//! Suggested themes: groups of notes whose words overlap, proposed to a facilitator who accepts,
//! renames or dismisses each one. Pure code: no I/O, no network, nothing leaves the server.
//!
//! # How
//! 1. **Words.** Each note is split into words (lowercase, Unicode-aware, on anything that is
//!    not a letter or digit; an apostrophe inside a word is dropped, a trailing `'s` too).
//!    Numbers, one-letter words and [stop words](STOP_WORDS) are dropped. Each word is reduced to
//!    a stem by a few predictable suffix rules ([`stem`]): "buses" and "bus", "waiting" and
//!    "wait", "houses" and "housing" share a stem; "parking" and "park" do not.
//! 2. **Vectors.** Each note becomes a sparse TF-IDF vector over stems, `(1 + ln tf) ×
//!    (ln((1 + n) / (1 + df)) + 1)` (smoothed IDF), normalised to length 1. Words found in one
//!    note only are kept: they link nothing, but a note with many of them is mostly about
//!    something else, and weighs less in any group.
//! 3. **Similarity.** The cosine similarity of every pair of notes that share a stem, found
//!    through an inverted index; pairs sharing nothing are never visited.
//! 4. **Groups.** Agglomerative clustering by centroid: each note starts as its own group; the
//!    two groups whose summed vectors have the highest cosine similarity are merged, again and
//!    again, until no pair reaches [`Options::threshold`]. A note joins a group when it shares
//!    the words most of the group shares ("bus"), not a word one member happens to use
//!    ("evening"). Ties go to the earlier notes, so the result depends only on the input: same
//!    notes, same order, same suggestions. Groups smaller than [`Options::min_group_size`] are
//!    left out, and their notes stay unthemed.
//! 5. **Titles.** The stems with the largest summed weight over the group's notes, among those
//!    found in at least two of them (after the first, only those at least half as heavy), each
//!    shown as people wrote it most often ("Bus"; "GP, appointments, phone", keeping capitals a
//!    word is mostly written in).
//!
//! The default threshold, 0.13, is the middle of the range (0.11 to 0.15) in which the fixture
//! `tests/fixtures/suggest-notes.json` comes out with no note in a wrong group, no one-off
//! grouped and every theme's notes grouped; lower merges more, higher splits more.
//!
//! # Cost
//! For `n` notes ([`MAX_NOTES`] at most): the vectors take time linear in the text; the
//! similarities, the sum over stems of (notes with that stem)², at worst `n²`, into an `n × n`
//! table of 4-byte numbers (16 MB for a full room of 2,000). Each merge adds one row to another
//! and scans every group's best neighbour once, and a group's best neighbour is looked for again
//! (`n` steps) only if it was one of the merged pair: about `O(n²)` in all. 2,000 notes take
//! about 0.25 s of CPU and 20 MB in a release build (a busy two-core machine); the
//! `two_thousand_notes` test in `tests/tests/suggest.rs` prints the time. Call it off the async
//! runtime (`spawn_blocking`).

use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// The most notes [`suggest`] looks at: those after are left out (never in a suggestion). It
/// holds an n × n table of 4-byte similarities: 36 MB at this size, 16 MB for a full room of
/// 2,000.
pub const MAX_NOTES: usize = 3000;

/// How [`suggest`] groups notes.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The cosine similarity (0 to 1) between two groups' summed vectors needed to merge them.
    /// Higher: fewer notes grouped, in tighter groups; lower: more notes, looser groups.
    pub threshold: f64,
    /// The fewest notes in a suggestion (at least 2: a group of one is not a theme).
    pub min_group_size: usize,
    /// The most words in a suggestion's title.
    pub max_title_words: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            threshold: 0.13,
            min_group_size: 2,
            max_title_words: 3,
        }
    }
}

/// One proposed theme.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion<K> {
    /// A proposed theme title: the `words`, joined by ", ", first letter capitalised.
    pub title: String,
    /// The words the title is made of, most weighty first, as people wrote them.
    pub words: Vec<String>,
    /// The notes of the group, in input order.
    pub notes: Vec<K>,
    /// How alike the notes are, 0 to 1: the average cosine similarity of each note to the
    /// group's centre (1 when they are all the same).
    pub score: f64,
}

/// Proposes groups of the given notes, each a `(key, text)` pair; the key (a note id, or a room
/// and a note id) is handed back in [`Suggestion::notes`]. Suggestions come largest first (ties:
/// the one whose first note comes first); a note is in at most one suggestion; notes in none
/// are left unthemed. The same input always gives the same output.
pub fn suggest<K: Clone, S: AsRef<str>>(notes: &[(K, S)], options: &Options) -> Vec<Suggestion<K>> {
    let notes = &notes[..notes.len().min(MAX_NOTES)];
    let corpus = Corpus::build(notes.iter().map(|(_, text)| text.as_ref()));
    let groups = cluster(&corpus.vectors, options.threshold);
    let mut suggestions: Vec<(usize, Suggestion<K>)> = groups
        .into_iter()
        .filter(|group| group.members.len() >= options.min_group_size.max(2))
        .map(|group| {
            let words = corpus.title_words(&group.members, options.max_title_words);
            let first = group.members[0];
            // Σ cos(vᵢ, c) over the notes, c the unit centre, is the length of their sum.
            let score = group.norm2.sqrt() / group.members.len() as f64;
            let suggestion = Suggestion {
                title: title(&words),
                words,
                notes: group.members.iter().map(|&i| notes[i].0.clone()).collect(),
                score: score.clamp(0.0, 1.0),
            };
            (first, suggestion)
        })
        .collect();
    suggestions.sort_by(|(a_first, a), (b_first, b)| {
        b.notes.len().cmp(&a.notes.len()).then(a_first.cmp(b_first))
    });
    suggestions.into_iter().map(|(_, s)| s).collect()
}

/// A sparse vector: (stem id, weight), sorted by stem id, length 1 (or empty).
type Vector = Vec<(usize, f64)>;

/// The notes as vectors, and what is needed to title a group.
struct Corpus {
    vectors: Vec<Vector>,
    /// For each stem id, how it is shown.
    display: Vec<String>,
}

impl Corpus {
    fn build<'a>(texts: impl Iterator<Item = &'a str>) -> Self {
        let mut ids: HashMap<String, usize> = HashMap::new();
        // Per stem: lowercase form → how it was written, to show the commonest form.
        let mut forms: Vec<HashMap<String, Form>> = Vec::new();
        let mut seen = 0usize;
        let mut counts: Vec<BTreeMap<usize, u32>> = Vec::new();
        for text in texts {
            let mut tf = BTreeMap::new();
            for word in words(text) {
                let next = ids.len();
                let id = *ids.entry(word.stem).or_insert(next);
                if id == forms.len() {
                    forms.push(HashMap::new());
                }
                let form = forms[id].entry(word.lower).or_insert(Form {
                    count: 0,
                    first: seen,
                    capitals: 0,
                    written: None,
                });
                form.count += 1;
                if let Some(capitals) = word.capitals {
                    form.capitals += 1;
                    form.written.get_or_insert(capitals);
                }
                seen += 1;
                *tf.entry(id).or_insert(0u32) += 1;
            }
            counts.push(tf);
        }
        let mut df = vec![0usize; ids.len()];
        for tf in &counts {
            for &id in tf.keys() {
                df[id] += 1;
            }
        }
        let n = counts.len() as f64;
        let vectors = counts
            .iter()
            .map(|tf| {
                let mut v: Vector = tf
                    .iter()
                    .map(|(&id, &count)| {
                        let idf = ((1.0 + n) / (1.0 + df[id] as f64)).ln() + 1.0;
                        (id, (1.0 + f64::from(count).ln()) * idf)
                    })
                    .collect();
                let norm = v.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
                if norm > 0.0 {
                    v.iter_mut().for_each(|(_, w)| *w /= norm);
                }
                v
            })
            .collect();
        let display = forms
            .into_iter()
            .map(|forms| {
                forms
                    .into_iter()
                    .max_by(|(_, a), (_, b)| a.count.cmp(&b.count).then(b.first.cmp(&a.first)))
                    .map(|(lower, form)| match form.written {
                        // Mostly written in capitals: an acronym ("GP", "NHS").
                        Some(written) if form.capitals * 2 > form.count => written,
                        _ => lower,
                    })
                    .unwrap_or_default()
            })
            .collect();
        Self { vectors, display }
    }

    /// The title words of a group: the stems with the largest summed weight among those in at
    /// least two of its notes; after the first, only those weighing at least half as much.
    fn title_words(&self, members: &[usize], max: usize) -> Vec<String> {
        let mut sums: BTreeMap<usize, (f64, usize)> = BTreeMap::new();
        for &i in members {
            for &(id, w) in &self.vectors[i] {
                let entry = sums.entry(id).or_insert((0.0, 0));
                entry.0 += w;
                entry.1 += 1;
            }
        }
        let mut ranked: Vec<(usize, f64)> = sums
            .into_iter()
            .filter(|(_, (_, notes))| *notes >= 2)
            .map(|(id, (sum, _))| (id, sum))
            .collect();
        // Heaviest first; equal weights in stem order (first seen first).
        ranked.sort_by(|(a_id, a), (b_id, b)| b.total_cmp(a).then(a_id.cmp(b_id)));
        let top = ranked.first().map_or(0.0, |(_, w)| *w);
        ranked
            .into_iter()
            .take(max.max(1))
            .take_while(|(_, w)| *w >= top / 2.0)
            .map(|(id, _)| self.display[id].clone())
            .collect()
    }
}

/// "Buses, late" from ["buses", "late"]; "GP, appointments" keeps the capitals.
fn title(words: &[String]) -> String {
    let joined = words.join(", ");
    let mut chars = joined.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A word of a note: its stem (what is compared) and how it was written (what is shown).
#[derive(Debug, Clone, PartialEq)]
struct Word {
    stem: String,
    lower: String,
    /// The word as written, if in capitals ("GP", "NHS", "GPs").
    capitals: Option<String>,
}

/// How one lowercase form of a stem was written across the notes.
struct Form {
    count: usize,
    /// Position of its first use among all words, for ties.
    first: usize,
    /// Times written in capitals, and the first such spelling.
    capitals: usize,
    written: Option<String>,
}

/// The words of a note that count: no stop words, numbers or one-letter words.
fn words(text: &str) -> Vec<Word> {
    raw_words(text)
        .into_iter()
        .filter_map(|raw| {
            let lower = raw.to_lowercase();
            if lower.chars().count() < 2
                || lower.chars().all(char::is_numeric)
                || is_stop_word(&lower)
            {
                return None;
            }
            let stem = stem(&lower);
            // In capitals: every letter, but for a final plural "s" ("GPs").
            let trimmed = raw.strip_suffix('s').unwrap_or(&raw);
            let capitals = (trimmed.chars().filter(|c| c.is_alphabetic()).count() >= 2
                && !trimmed.chars().any(char::is_lowercase))
            .then_some(raw);
            Some(Word {
                stem,
                lower,
                capitals,
            })
        })
        .collect()
}

/// Splits on everything but letters and digits; an apostrophe between letters joins them
/// ("don't" → "dont") and a trailing "'s" is dropped ("children's" → "children").
fn raw_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() {
            current.push(c);
        } else if is_apostrophe(c)
            && !current.is_empty()
            && chars.peek().is_some_and(|next| next.is_alphanumeric())
        {
            // "'s" at the end of a word is a possessive: drop it.
            let mut ahead = chars.clone();
            let s = ahead.next().is_some_and(|n| n == 's' || n == 'S');
            if s && !ahead.peek().is_some_and(|n| n.is_alphanumeric()) {
                chars.next();
            }
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{02BC}')
}

/// Reduces a lowercase word to a stem with a few predictable rules (English; other words pass
/// through mostly unchanged). Stems are compared, never shown.
///
/// 1. Plurals: "-sses" → "-ss", "-ies" → "-y", "-ses"/"-xes"/"-zes"/"-ches"/"-shes"/"-oes" →
///    drop "-es", else a final "-s" (not "-ss", "-us", "-is") is dropped.
/// 2. "-ing" and "-ed" are dropped when at least three letters with a vowel remain ("-ied" →
///    "-y"); a doubled final consonant left behind is undoubled ("stopped" → "stop").
/// 3. A final "-e" is dropped, and a final "-ll" becomes "-l", so "house", "houses" and
///    "housing" meet, as do "cancel" and "cancelled".
///
/// A short list of words the rules get wrong comes first: "parking" and "parked" are not
/// "park", "evening" is not "even", "training" is not "train".
pub fn stem(word: &str) -> String {
    if let Some((_, stem)) = IRREGULAR.iter().find(|(w, _)| *w == word) {
        return (*stem).to_string();
    }
    let mut w = word.to_string();
    let len = w.chars().count();
    // 1. Plurals.
    if w.ends_with("sses") {
        w.truncate(w.len() - 2);
    } else if w.ends_with("ies") && len > 4 {
        w.truncate(w.len() - 3);
        w.push('y');
    } else if ["ses", "xes", "zes", "ches", "shes", "oes"]
        .iter()
        .any(|s| w.ends_with(s))
        && len > 4
    {
        w.truncate(w.len() - 2);
    } else if w.ends_with('s')
        && len >= 3
        && !w.ends_with("ss")
        && !w.ends_with("us")
        && !w.ends_with("is")
    {
        w.truncate(w.len() - 1);
    }
    // 2. -ing, -ed.
    if let Some(base) = w.strip_suffix("ied")
        && base.chars().count() >= 2
    {
        w = format!("{base}y");
    } else if let Some(base) = w.strip_suffix("ing").or_else(|| w.strip_suffix("ed"))
        && base.chars().count() >= 3
        && base.chars().any(is_vowel)
    {
        let mut base = base.to_string();
        let mut tail = base.chars().rev();
        if let (Some(a), Some(b)) = (tail.next(), tail.next())
            && a == b
            && a.is_ascii_alphabetic()
            && !is_vowel(a)
            && !matches!(a, 'l' | 's' | 'z')
        {
            base.pop();
        }
        w = base;
    }
    // 3. Final -e, -ll.
    if w.ends_with('e') && w.chars().count() > 3 {
        w.pop();
    }
    if w.ends_with("ll") && w.chars().count() > 3 {
        w.pop();
    }
    w
}

/// Words the rules would get wrong: "parking" is not about parks, nor "evening" even, nor
/// "training" trains.
const IRREGULAR: &[(&str, &str)] = &[
    ("children", "child"),
    ("evening", "evening"),
    ("evenings", "evening"),
    ("men", "man"),
    ("morning", "morning"),
    ("mornings", "morning"),
    ("parked", "parking"),
    ("parking", "parking"),
    ("training", "training"),
    ("wedding", "wedding"),
    ("weddings", "wedding"),
    ("women", "woman"),
];

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y')
}

fn is_stop_word(word: &str) -> bool {
    STOP_WORDS.binary_search(&word).is_ok()
}

/// English words too common to say what a note is about: function words, contractions written
/// without their apostrophe, and the filler of sticky notes ("need", "really", "more", "lot").
/// Sorted, for a binary search (a test checks).
#[rustfmt::skip]
pub const STOP_WORDS: &[&str] = &[
    "able", "about", "above", "actually", "after", "again", "against", "ago", "all", "almost",
    "along", "already", "also", "although", "always", "am", "among", "an", "and", "another", "any",
    "anyone", "anything", "are", "arent", "around", "as", "at", "away", "back", "bad", "be",
    "because", "been", "before", "being", "below", "best", "better", "between", "big", "both",
    "but", "by", "came", "can", "cannot", "cant", "come", "comes", "could", "couldnt", "couldve",
    "did", "didnt", "do", "does", "doesnt", "doing", "don", "done", "dont", "down", "during",
    "each", "else", "enough", "etc", "even", "ever", "every", "everyone", "everything", "few",
    "for", "from", "further", "get", "gets", "getting", "give", "go", "goes", "going", "gone",
    "good", "got", "great", "had", "hadnt", "has", "hasnt", "have", "havent", "having", "he", "her",
    "here", "hers", "herself", "hes", "him", "himself", "his", "how", "however", "id", "if", "im",
    "in", "into", "is", "isnt", "it", "its", "itself", "ive", "just", "keep", "know", "last",
    "less", "let", "lets", "like", "lot", "lots", "made", "make", "makes", "making", "many", "may",
    "maybe", "me", "might", "more", "most", "much", "must", "my", "myself", "need", "needed",
    "needs", "never", "new", "no", "nor", "not", "nothing", "now", "of", "off", "often", "ok",
    "okay", "on", "once", "one", "only", "or", "other", "others", "our", "ours", "ourselves", "out",
    "over", "own", "people", "please", "put", "quite", "rather", "really", "right", "said", "same",
    "say", "says", "see", "seem", "seems", "shall", "she", "shes", "should", "shouldnt", "shouldve",
    "since", "so", "some", "someone", "something", "sometimes", "still", "such", "sure", "take",
    "than", "that", "thats", "the", "their", "theirs", "them", "themselves", "then", "there",
    "theres", "these", "they", "theyll", "theyre", "theyve", "thing", "things", "think", "thinking",
    "this", "those", "though", "through", "to", "too", "under", "until", "up", "upon", "us", "use",
    "used", "very", "want", "wanted", "wants", "was", "wasnt", "way", "we", "wed", "well", "were",
    "werent", "weve", "what", "whats", "when", "where", "whether", "which", "while", "who", "whole",
    "whom", "why", "will", "with", "within", "without", "wont", "would", "wouldnt", "wouldve",
    "yes", "yet", "you", "youd", "youll", "your", "youre", "yours", "yourself", "yourselves",
    "youve",
];

/// A group of notes being built.
struct Group {
    /// Note indexes, ascending.
    members: Vec<usize>,
    /// The squared length of the sum of its notes' vectors: the number of notes with words, plus
    /// twice the summed similarity of every pair of them.
    norm2: f64,
}

/// Agglomerative clustering of unit vectors by the cosine similarity of their groups' summed
/// vectors; every note ends in exactly one group.
fn cluster(vectors: &[Vector], threshold: f64) -> Vec<Group> {
    let n = vectors.len();
    // dots[c * n + k]: the dot product of groups c and k's summed vectors, which is the summed
    // similarity of every pair of notes across them (0 if they share no word). Rows and
    // columns of merged-away groups are stale, and never read: their `inverse` is 0.
    // n² × 4 bytes: 16 MB for 2,000 notes.
    let mut dots = similarities(vectors);
    let mut groups: Vec<Option<Group>> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            Some(Group {
                members: vec![i],
                norm2: v.iter().map(|(_, w)| w * w).sum(),
            })
        })
        .collect();
    // 1 / the length of each group's summed vector; 0 for a note without words, and for a
    // group merged away.
    let inverse_of = |g: &Group| {
        if g.norm2 > 0.0 {
            (1.0 / g.norm2.sqrt()) as f32
        } else {
            0.0
        }
    };
    let mut inverse: Vec<f32> = groups.iter().flatten().map(inverse_of).collect();
    let mut best: Vec<Option<(usize, f32)>> = (0..n)
        .map(|c| most_similar(&dots, &inverse, n, c))
        .collect();
    loop {
        // The most similar pair of groups; ties to the lowest index.
        let mut pick: Option<(usize, usize, f32)> = None;
        for (c, b) in best.iter().enumerate() {
            if let Some((k, sim)) = *b
                && pick.is_none_or(|(_, _, p)| sim > p)
            {
                pick = Some((c, k, sim));
            }
        }
        let Some((c, k, sim)) = pick else { break };
        if f64::from(sim) < threshold || sim.is_nan() {
            break;
        }
        // Merge b into a: a's sum becomes the sum of both.
        let (a, b) = (c.min(k), c.max(k));
        let across = f64::from(dots[a * n + b]);
        if let Some(merged) = groups[b].take()
            && let Some(group) = groups[a].as_mut()
        {
            group.norm2 += merged.norm2 + 2.0 * across;
            group.members.extend(merged.members);
            group.members.sort_unstable();
            inverse[a] = inverse_of(group);
        }
        inverse[b] = 0.0;
        best[b] = None;
        // Row a += row b (a < b), and column a likewise.
        let (head, tail) = dots.split_at_mut(b * n);
        let row_a = &mut head[a * n..(a + 1) * n];
        for (x, y) in row_a.iter_mut().zip(&tail[..n]) {
            *x += *y;
        }
        row_a[a] = 0.0;
        for other in 0..n {
            dots[other * n + a] = dots[a * n + other];
        }
        best[a] = most_similar(&dots, &inverse, n, a);
        // Only similarities to a changed: a group whose best was a or b is looked at again;
        // any other keeps its best unless a now beats it.
        for other in 0..n {
            if other == a || groups[other].is_none() {
                continue;
            }
            match best[other] {
                Some((target, _)) if target == a || target == b => {
                    best[other] = most_similar(&dots, &inverse, n, other);
                }
                current => {
                    // As in `most_similar`, to compare like with like.
                    let sim = dots[other * n + a] * inverse[a] * inverse[other];
                    if sim > 0.0 && current.is_none_or(|(t, b)| sim > b || (sim == b && a < t)) {
                        best[other] = Some((a, sim));
                    }
                }
            }
        }
    }
    groups.into_iter().flatten().collect()
}

/// The live group most similar to group c, and that cosine similarity; ties to the lowest
/// index; `None` if c shares no word with any other.
fn most_similar(dots: &[f32], inverse: &[f32], n: usize, c: usize) -> Option<(usize, f32)> {
    let mut best = (usize::MAX, 0.0f32);
    // Merged-away groups have inverse 0, and dots[c][c] is 0: neither can win.
    for (k, (dot, inv)) in dots[c * n..(c + 1) * n].iter().zip(inverse).enumerate() {
        let scaled = dot * inv;
        if scaled > best.1 {
            best = (k, scaled);
        }
    }
    (best.0 != usize::MAX).then(|| (best.0, best.1 * inverse[c]))
}

/// The n × n matrix of the notes' cosine similarities (the vectors have length 1, so these are
/// dot products), computed through an inverted index: pairs sharing no word are never visited.
fn similarities(vectors: &[Vector]) -> Vec<f32> {
    let n = vectors.len();
    let words = vectors
        .iter()
        .flat_map(|v| v.iter().map(|(id, _)| id + 1))
        .max()
        .unwrap_or(0);
    // postings[word]: (note, weight), in note order.
    let mut postings: Vec<Vec<(usize, f32)>> = vec![Vec::new(); words];
    for (i, v) in vectors.iter().enumerate() {
        for &(id, w) in v {
            postings[id].push((i, w as f32));
        }
    }
    let mut dots = vec![0.0f32; n * n];
    for (i, v) in vectors.iter().enumerate() {
        let row = &mut dots[i * n..(i + 1) * n];
        for &(id, w) in v {
            let list = &postings[id];
            // Only the notes after i: each pair once.
            let start = list.partition_point(|(j, _)| *j <= i);
            for &(j, wj) in &list[start..] {
                row[j] += w as f32 * wj;
            }
        }
    }
    for i in 0..n {
        for j in i + 1..n {
            dots[j * n + i] = dots[i * n + j];
        }
    }
    dots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stems(text: &str) -> Vec<String> {
        words(text).into_iter().map(|w| w.stem).collect()
    }

    #[test]
    fn stop_words_are_sorted_and_unique() {
        assert!(
            STOP_WORDS.windows(2).all(|w| w[0] < w[1]),
            "sort STOP_WORDS"
        );
    }

    #[test]
    fn plurals_and_endings_meet() {
        for group in [
            &["bus", "buses"][..],
            &["park", "parks"],
            &["parking", "parked"],
            &["evening", "evenings"],
            &["child", "children"],
            &["wait", "waits", "waiting", "waited"],
            &["house", "houses", "housing"],
            &["appointment", "appointments"],
            &["cancel", "cancelled", "cancelling", "cancels"],
            &["light", "lights", "lighting"],
            &["repair", "repairs", "repaired"],
            &["stop", "stops", "stopped", "stopping"],
            &["facility", "facilities"],
            &["queue", "queues", "queuing", "queueing"],
            &["damage", "damaged"],
            &["church", "churches"],
            &["class", "classes"],
        ] {
            let first = stem(group[0]);
            for word in group {
                assert_eq!(stem(word), first, "{word} should stem like {}", group[0]);
            }
        }
        // Kept apart: a different word, not an ending.
        assert_ne!(stem("parking"), stem("park"));
        assert_ne!(stem("evening"), stem("even"));
        assert_ne!(stem("training"), stem("train"));
        // Left alone: too short to strip, or not a plural.
        assert_eq!(stem("bring"), "bring");
        assert_eq!(stem("grass"), "grass");
        assert_eq!(stem("status"), "status");
    }

    #[test]
    fn words_drop_stop_words_numbers_and_emoji() {
        assert_eq!(
            stems("The 42 bus is LATE again 🚌🚌 — we really need more buses!!"),
            ["bus", "lat", "bus"]
        );
        assert_eq!(stems("don't can't it's I'm"), Vec::<String>::new());
        assert_eq!(stems("the children's bedroom"), ["child", "bedroom"]);
        assert_eq!(stems("🙂 👍 !!! 2024 10:30"), Vec::<String>::new());
        assert_eq!(stems(""), Vec::<String>::new());
    }

    #[test]
    fn acronyms_keep_their_capitals() {
        let capitals: Vec<Option<String>> = words("GP GPs NHS Bus BUSES")
            .into_iter()
            .map(|w| w.capitals)
            .collect();
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            capitals,
            [some("GP"), some("GPs"), some("NHS"), None, some("BUSES")]
        );
        // Shown in capitals only when mostly written so.
        let notes = [
            (1, "GP appointments"),
            (2, "gp appointments"),
            (3, "GP APPOINTMENTS"),
        ];
        assert_eq!(
            suggest(&notes, &Options::default())[0].title,
            "GP, appointments"
        );
    }

    #[test]
    fn unicode_words_are_split_and_lowercased() {
        assert_eq!(stems("Café CRÈCHE naïve"), ["café", "crèch", "naïv"]);
        // Scripts without spaces stay one word; nothing panics.
        assert_eq!(words("公共汽车总是迟到。").len(), 1);
        assert_eq!(stems("Mae'r bysiau'n hwyr"), ["maer", "bysiaun", "hwyr"]);
        assert_eq!(stems("İSTANBUL ǅ ß Ωmega"), ["i̇stanbul", "ωmega"]);
    }

    #[test]
    fn empty_and_single_inputs_suggest_nothing() {
        let none: [(u32, &str); 0] = [];
        assert!(suggest(&none, &Options::default()).is_empty());
        assert!(suggest(&[(1, "Buses are late")], &Options::default()).is_empty());
        let filler = [(1, "the and of"), (2, "🙂🙂"), (3, "the and of"), (4, "")];
        assert!(suggest(&filler, &Options::default()).is_empty());
    }

    #[test]
    fn notes_beyond_the_limit_are_left_out() {
        let mut notes = vec![(0, ""); MAX_NOTES + 1];
        notes[0].1 = "bus late";
        notes[MAX_NOTES - 1].1 = "bus late";
        notes[MAX_NOTES].1 = "bus late";
        let got = suggest(&notes, &Options::default());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].notes.len(), 2);
    }

    #[test]
    fn duplicates_group_together() {
        let notes = [
            (1, "Buses are late"),
            (2, "Thanks for the biscuits"),
            (3, "Buses are late"),
            (4, "Buses are late"),
        ];
        let got = suggest(&notes, &Options::default());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].notes, [1, 3, 4]);
        assert_eq!(got[0].title, "Buses, late");
        assert!((got[0].score - 1.0).abs() < 1e-6, "{}", got[0].score);
    }

    #[test]
    fn unrelated_notes_stay_apart() {
        let notes = [
            (1, "Buses late every morning"),
            (2, "Damp and mould in the flat"),
            (3, "Bus route cut"),
            (4, "Mould in the bedroom, damp walls"),
            (5, "Park lighting broken"),
        ];
        let got = suggest(&notes, &Options::default());
        let groups: Vec<&[i32]> = got.iter().map(|s| &s.notes[..]).collect();
        assert_eq!(groups, [&[1, 3][..], &[2, 4]]);
        assert_eq!(got[0].title, "Buses");
        assert!(got[1].title.starts_with("Damp") || got[1].title.starts_with("Mould"));
    }

    #[test]
    fn groups_respect_min_size() {
        let notes = [
            (1, "bus late"),
            (2, "bus late"),
            (3, "park dark"),
            (4, "park dark"),
            (5, "park dark"),
        ];
        let options = Options {
            min_group_size: 3,
            ..Options::default()
        };
        let got = suggest(&notes, &options);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].notes, [3, 4, 5]);
    }

    #[test]
    fn long_and_foreign_notes_do_not_panic() {
        let long = "bus ".repeat(125) + &"é".repeat(200);
        let notes = vec![
            (0, long.clone()),
            (1, long),
            (2, "公共汽车总是迟到".to_string()),
            (3, "公共汽车总是迟到".to_string()),
            (4, "Mae'r bysiau'n hwyr bob bore".to_string()),
            (5, "Bysiau'n hwyr eto".to_string()),
            (6, "Автобусы опаздывают".to_string()),
            (7, "\u{0}\u{200B}\u{FEFF}".to_string()),
        ];
        let got = suggest(&notes, &Options::default());
        assert!(
            got.iter()
                .all(|s| s.notes.len() >= 2 && !s.title.is_empty())
        );
        assert!(got.iter().any(|s| s.notes == [0, 1]));
    }

    #[test]
    fn strange_options_do_not_panic() {
        let notes = [(1, "bus late"), (2, "bus late"), (3, "park dark")];
        for threshold in [f64::NAN, -1.0, 0.0, 1.0, 2.0, f64::INFINITY] {
            for max_title_words in [0, 1, 10] {
                let options = Options {
                    threshold,
                    max_title_words,
                    min_group_size: 0,
                };
                for s in suggest(&notes, &options) {
                    assert!(s.notes.len() >= 2 && !s.title.is_empty());
                }
            }
        }
    }
}
