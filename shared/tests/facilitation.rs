//! The facilitation rules, one named test per rule: who may ask for what ([`Board::apply`]),
//! what each person is shown ([`Board::view`]) and who is told about each change
//! ([`Board::delivery`], [`Board::shown_author`]).
//!
//! Every change goes through [`Room`], which checks the board's invariants after each accepted
//! operation and that a refused one changed nothing.

use bothy_shared::board::{AuditAction, ModerationState, REASON_CHARS};
use bothy_shared::op::*;
use bothy_shared::{
    ActorKey, Board, BoardView, Delivery, Limits, NoteId, Op, OpContext, RejectReason, Role,
    ThemeId, Viewer,
};

// ---------------------------------------------------------------------------------------------
// A room, the people in it, and one constructor per operation
// ---------------------------------------------------------------------------------------------

/// Who asks for an operation.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    /// A participant, by actor key; their display name is the key with a capital letter.
    P(&'static str),
    /// A facilitator, by actor key.
    F(&'static str),
    /// The server itself.
    System,
}

const ALICE: Who = Who::P("alice");
const BOB: Who = Who::P("bob");
const FRAN: Who = Who::F("fran");

fn key(name: &str) -> ActorKey {
    ActorKey::new(name)
}

fn display_name(key: &str) -> String {
    let mut cs = key.chars();
    cs.next()
        .map(|c| c.to_uppercase().chain(cs).collect())
        .unwrap_or_default()
}

struct Room {
    board: Board,
    limits: Limits,
    /// The server clock: every operation is one second after the one before.
    clock: u64,
}

impl Room {
    fn named() -> Self {
        Self::with(Board::for_room("Table 3", "What went well?", false))
    }

    fn anonymous() -> Self {
        Self::with(Board::for_room("Table 4", "What went well?", true))
    }

    fn with(board: Board) -> Self {
        Self {
            board,
            limits: Limits::default(),
            clock: 1_767_225_600_000,
        }
    }

    /// The context `who` asks in, at the next tick of the clock.
    fn ctx(&mut self, who: Who) -> OpContext {
        self.clock += 1000;
        let (actor, author, role) = match who {
            Who::P(k) => (key(k), Some(display_name(k)), Role::Participant),
            Who::F(k) => (key(k), Some(display_name(k)), Role::Facilitator),
            Who::System => (key("server"), None, Role::System),
        };
        OpContext {
            actor: Some(actor),
            author,
            at: self.clock,
            role,
        }
    }

    /// Applies `op`, which must be accepted; what it created, if anything.
    #[track_caller]
    fn ok(&mut self, who: Who, op: Op) -> Option<u64> {
        let ctx = self.ctx(who);
        let applied = self
            .board
            .apply(&op, &ctx, &self.limits)
            .unwrap_or_else(|e| panic!("{op:?} by {who:?} was refused: {:?} {e}", e.reason));
        self.board
            .check_invariants(&self.limits)
            .unwrap_or_else(|e| panic!("{op:?} by {who:?} broke the board: {e}"));
        applied.created
    }

    /// Applies `op`, which must be refused without changing anything; the reason.
    #[track_caller]
    fn refused(&mut self, who: Who, op: Op) -> RejectReason {
        let ctx = self.ctx(who);
        let before = self.board.clone();
        let e = self
            .board
            .apply(&op, &ctx, &self.limits)
            .expect_err(&format!("{op:?} by {who:?} was accepted"));
        assert!(!e.message.is_empty());
        assert_eq!(
            self.board, before,
            "{op:?} was refused but changed the board"
        );
        e.reason
    }

    /// Who would be told about `op` by `who`, judged now.
    fn delivery(&mut self, who: Who, op: &Op) -> Delivery {
        let ctx = self.ctx(who);
        self.board.delivery(op, &ctx)
    }

    /// A new note by `who`.
    #[track_caller]
    fn note(&mut self, who: Who, text: &str) -> NoteId {
        self.ok(who, create(text)).expect("a note id")
    }

    #[track_caller]
    fn theme(&mut self, who: Who, title: &str) -> ThemeId {
        self.ok(
            who,
            Op::CreateTheme(CreateTheme {
                title: title.into(),
            }),
        )
        .expect("a theme id")
    }

    fn view_of(&self, who: Who) -> BoardView {
        match who {
            Who::P(k) => self.board.view(Viewer::Participant(&key(k))),
            Who::F(_) | Who::System => self.board.view(Viewer::Facilitator),
        }
    }
}

fn create(text: &str) -> Op {
    Op::CreateNote(CreateNote {
        text: text.into(),
        colour: Colour::Yellow,
        x: 100.0,
        y: 100.0,
    })
}

fn edit(note: NoteId, text: &str) -> Op {
    Op::EditNote(EditNote {
        note,
        text: text.into(),
    })
}

fn recolour(note: NoteId) -> Op {
    Op::RecolourNote(RecolourNote {
        note,
        colour: Colour::Blue,
    })
}

fn move_to(note: NoteId) -> Op {
    Op::MoveNote(MoveNote {
        note,
        x: 200.5,
        y: 300.25,
    })
}

fn delete(note: NoteId) -> Op {
    Op::DeleteNote(DeleteNote { note })
}

fn set_theme(note: NoteId, theme: Option<ThemeId>) -> Op {
    Op::SetNoteTheme(SetNoteTheme {
        note,
        theme,
        position: None,
    })
}

fn vote(note: NoteId) -> Op {
    Op::Vote(NoteRef { note })
}

fn unvote(note: NoteId) -> Op {
    Op::Unvote(NoteRef { note })
}

fn writing(writing: Writing) -> Op {
    Op::SetWriting(SetWriting { writing })
}

fn start_timer(seconds: u32, on_end: OnEnd) -> Op {
    Op::StartTimer(StartTimer { seconds, on_end })
}

fn locked(locked: bool) -> Op {
    Op::SetLocked(SetLocked { locked })
}

fn open_voting(budget: u32, show_tallies: bool) -> Op {
    Op::OpenVoting(OpenVoting {
        budget,
        show_tallies,
    })
}

fn close_voting() -> Op {
    Op::CloseVoting(NoFields {})
}

fn theming(theming: Theming) -> Op {
    Op::SetTheming(SetTheming { theming })
}

fn spotlight(note: Option<NoteId>) -> Op {
    Op::Spotlight(Spotlight { note })
}

fn hide(note: NoteId, reason: &str) -> Op {
    Op::HideNote(Moderate {
        note,
        reason: reason.into(),
    })
}

fn unhide(note: NoteId) -> Op {
    Op::UnhideNote(NoteRef { note })
}

fn remove(note: NoteId, reason: &str) -> Op {
    Op::RemoveNote(Moderate {
        note,
        reason: reason.into(),
    })
}

fn proxy_note(text: &str) -> Op {
    Op::ProxyNote(CreateNote {
        text: text.into(),
        colour: Colour::Green,
        x: 50.0,
        y: 60.0,
    })
}

fn proxy_vote(note: NoteId) -> Op {
    Op::ProxyVote(NoteRef { note })
}

fn timer_ended() -> Op {
    Op::TimerEnded(NoFields {})
}

/// Which kind an operation is, as an index into [`KIND_COUNT`] kinds. The match fails to
/// compile when a kind is added, so the lists below cannot silently fall behind.
fn kind(op: &Op) -> usize {
    match op {
        Op::CreateNote(_) => 0,
        Op::EditNote(_) => 1,
        Op::RecolourNote(_) => 2,
        Op::MoveNote(_) => 3,
        Op::DeleteNote(_) => 4,
        Op::CreateTheme(_) => 5,
        Op::RenameTheme(_) => 6,
        Op::DeleteTheme(_) => 7,
        Op::SetNoteTheme(_) => 8,
        Op::Vote(_) => 9,
        Op::Unvote(_) => 10,
        Op::SetWriting(_) => 11,
        Op::StartTimer(_) => 12,
        Op::StopTimer(_) => 13,
        Op::SetLocked(_) => 14,
        Op::OpenVoting(_) => 15,
        Op::CloseVoting(_) => 16,
        Op::SetTheming(_) => 17,
        Op::Spotlight(_) => 18,
        Op::HideNote(_) => 19,
        Op::UnhideNote(_) => 20,
        Op::RemoveNote(_) => 21,
        Op::ProxyNote(_) => 22,
        Op::ProxyVote(_) => 23,
        Op::TimerEnded(_) => 24,
        Op::SetQuotable(_) => 25,
    }
}

const KIND_COUNT: usize = 26;

/// One of every facilitator operation on note `n`, in an order in which a facilitator can apply
/// them one after another to a room where `n` is an ordinary note.
fn facilitator_ops(n: NoteId) -> Vec<Op> {
    vec![
        writing(Writing::Open),
        start_timer(60, OnEnd::Nothing),
        Op::StopTimer(NoFields {}),
        locked(true),
        open_voting(3, false),
        proxy_vote(n),
        close_voting(),
        theming(Theming::Facilitators),
        spotlight(Some(n)),
        hide(n, "Off topic"),
        unhide(n),
        proxy_note("For Grandad"),
        remove(n, "A phone number"),
    ]
}

/// One of every operation a participant may ask for, about their own note `n` and theme `t`:
/// while voting is open and they have a dot on `n`, each is acceptable on its own, and all of
/// them one after another.
fn participant_ops(n: NoteId, t: ThemeId) -> Vec<Op> {
    vec![
        create("Another"),
        edit(n, "Edited"),
        recolour(n),
        Op::SetQuotable(SetQuotable {
            note: n,
            quotable: true,
        }),
        move_to(n),
        Op::CreateTheme(CreateTheme {
            title: "Water".into(),
        }),
        Op::RenameTheme(RenameTheme {
            theme: t,
            title: "Outdoors".into(),
        }),
        set_theme(n, Some(t)),
        vote(n),
        unvote(n),
        Op::DeleteTheme(DeleteTheme { theme: t }),
        delete(n),
    ]
}

#[test]
fn the_lists_cover_every_kind_of_operation_once() {
    let mut seen = [0; KIND_COUNT];
    for op in facilitator_ops(1)
        .into_iter()
        .chain(participant_ops(1, 1))
        .chain([timer_ended()])
    {
        seen[kind(&op)] += 1;
    }
    assert_eq!(seen, [1; KIND_COUNT]);
    assert!(facilitator_ops(1).iter().all(Op::is_facilitator_only));
    assert!(!participant_ops(1, 1).iter().any(Op::is_facilitator_only));
    assert!(!timer_ended().is_facilitator_only());
}

/// A room with a note and a theme of Alice's, voting open (3 dots each, tallies shown) and one
/// of Alice's dots on her note.
fn busy_room() -> (Room, NoteId, ThemeId) {
    let mut room = Room::named();
    let n = room.note(ALICE, "More shade");
    let t = room.theme(ALICE, "Outside");
    room.ok(FRAN, open_voting(3, true));
    room.ok(ALICE, vote(n));
    (room, n, t)
}

// ---------------------------------------------------------------------------------------------
// Rights: facilitator operations, the server's own operation, the lock, theming
// ---------------------------------------------------------------------------------------------

#[test]
fn a_participant_asking_for_any_facilitator_op_gets_facilitator_only() {
    let (mut room, n, _) = busy_room();
    for op in facilitator_ops(n) {
        assert_eq!(
            room.refused(ALICE, op.clone()),
            RejectReason::FacilitatorOnly,
            "{op:?}"
        );
    }
    // Rights come before everything else: a lock, or a note that does not exist, does not
    // change the answer.
    room.ok(FRAN, locked(true));
    for op in facilitator_ops(9999) {
        assert_eq!(
            room.refused(BOB, op.clone()),
            RejectReason::FacilitatorOnly,
            "{op:?}"
        );
    }
}

#[test]
fn a_facilitator_may_ask_for_every_facilitator_op() {
    let mut room = Room::named();
    let n = room.note(ALICE, "More shade");
    for op in facilitator_ops(n) {
        room.ok(FRAN, op);
    }
}

#[test]
fn timer_ended_is_refused_from_participants_and_facilitators() {
    let mut room = Room::named();
    room.ok(FRAN, start_timer(300, OnEnd::Lock));
    for who in [ALICE, FRAN] {
        assert_eq!(
            room.refused(who, timer_ended()),
            RejectReason::NotAllowed,
            "{who:?}"
        );
    }
    assert!(room.board.state.timer.is_some());
    assert!(!room.board.state.locked);
    // The server's own context may: the timer ends and, as asked, the board locks.
    room.ok(Who::System, timer_ended());
    assert_eq!(room.board.state.timer, None);
    assert!(room.board.state.locked);
}

#[test]
fn a_timer_that_ends_with_nothing_only_stops() {
    let mut room = Room::named();
    room.ok(FRAN, start_timer(60, OnEnd::Nothing));
    room.ok(Who::System, timer_ended());
    assert_eq!(room.board.state.timer, None);
    assert!(!room.board.state.locked);
    // With no timer running, the server's `timer_ended` changes nothing.
    let before = room.board.clone();
    room.ok(Who::System, timer_ended());
    assert_eq!(room.board, before);
}

#[test]
fn a_timer_runs_from_the_server_clock_for_1_second_to_6_hours() {
    let mut room = Room::named();
    for seconds in [0, 6 * 60 * 60 + 1, u32::MAX] {
        assert_eq!(
            room.refused(FRAN, start_timer(seconds, OnEnd::Lock)),
            RejectReason::Invalid,
            "{seconds} s"
        );
    }
    for seconds in [1, 6 * 60 * 60] {
        room.ok(FRAN, start_timer(seconds, OnEnd::Lock));
        let timer = room.board.state.timer.expect("running");
        assert_eq!(timer.ends_at, room.clock + u64::from(seconds) * 1000);
        assert_eq!(timer.on_end, OnEnd::Lock);
    }
    // A new timer replaces the old one; stopping it does nothing else.
    room.ok(FRAN, start_timer(90, OnEnd::Nothing));
    assert_eq!(
        room.board.state.timer.expect("running").ends_at,
        room.clock + 90_000
    );
    room.ok(FRAN, Op::StopTimer(NoFields {}));
    assert_eq!(room.board.state.timer, None);
    assert!(!room.board.state.locked);
}

#[test]
fn a_lock_refuses_every_participant_op_with_locked() {
    let (mut room, n, t) = busy_room();
    // Unlocked, Alice may do each of these…
    let mut copy = Room::with(room.board.clone());
    for op in participant_ops(n, t) {
        copy.ok(ALICE, op);
    }
    // …locked, none of them.
    room.ok(FRAN, locked(true));
    for op in participant_ops(n, t) {
        assert_eq!(
            room.refused(ALICE, op.clone()),
            RejectReason::Locked,
            "{op:?}"
        );
    }
    room.ok(FRAN, locked(false));
    room.ok(ALICE, edit(n, "Back in"));
}

#[test]
fn a_lock_does_not_bind_facilitators() {
    let (mut room, n, t) = busy_room();
    room.ok(FRAN, locked(true));
    let mine = room.note(FRAN, "From the front");
    room.ok(FRAN, edit(mine, "From the front, edited"));
    room.ok(FRAN, move_to(n));
    room.ok(FRAN, set_theme(n, Some(t)));
    room.ok(FRAN, vote(n));
    let t2 = room.theme(FRAN, "Later");
    room.ok(FRAN, Op::DeleteTheme(DeleteTheme { theme: t2 }));
    room.ok(FRAN, delete(mine));
    assert!(room.board.state.locked);
}

#[test]
fn theming_for_facilitators_refuses_every_participant_theme_op() {
    let (mut room, n, t) = busy_room();
    room.ok(FRAN, theming(Theming::Facilitators));
    let theme_ops: Vec<Op> = participant_ops(n, t)
        .into_iter()
        .filter(Op::is_theming)
        .collect();
    assert_eq!(theme_ops.len(), 4);
    for op in &theme_ops {
        assert_eq!(
            room.refused(ALICE, op.clone()),
            RejectReason::NotAllowed,
            "{op:?}"
        );
    }
    // Notes are still everyone's to write and move.
    room.note(BOB, "Still writing");
    room.ok(BOB, move_to(n));
    // Facilitators may do every one of them.
    for op in theme_ops {
        room.ok(FRAN, op);
    }
    room.ok(FRAN, theming(Theming::Everyone));
    room.theme(ALICE, "Mine again");
}

// ---------------------------------------------------------------------------------------------
// Private writing
// ---------------------------------------------------------------------------------------------

/// A room where Alice wrote "Before" openly, then, during private writing, Bob wrote "Bob's
/// secret" (which the facilitator put in theme `t`) and Alice wrote "Alice's secret".
fn private_room() -> (Room, NoteId, NoteId, NoteId, ThemeId) {
    let mut room = Room::named();
    let before = room.note(ALICE, "Before");
    let t = room.theme(FRAN, "Ideas");
    room.ok(FRAN, writing(Writing::Private));
    let bobs = room.note(BOB, "Bob's secret");
    let alices = room.note(ALICE, "Alice's secret");
    room.ok(FRAN, set_theme(bobs, Some(t)));
    room.ok(FRAN, set_theme(before, Some(t)));
    (room, before, bobs, alices, t)
}

fn ids(view: &BoardView) -> Vec<NoteId> {
    view.notes.iter().map(|n| n.id).collect()
}

fn themed(view: &BoardView) -> Vec<NoteId> {
    view.themes
        .iter()
        .flat_map(|t| t.notes.iter().copied())
        .collect()
}

#[test]
fn a_participant_never_sees_another_participants_private_note() {
    let (room, before, bobs, alices, _) = private_room();
    assert!(room.board.notes[&bobs].private);
    assert!(room.board.has_private_notes());

    let alice = room.view_of(ALICE);
    assert_eq!(ids(&alice), vec![before, alices]);
    assert_eq!(themed(&alice), vec![before]);
    let json = serde_json::to_string(&alice).expect("serialises");
    assert!(!json.contains("Bob's secret"), "{json}");

    let bob = room.view_of(BOB);
    assert_eq!(ids(&bob), vec![before, bobs]);
    assert_eq!(themed(&bob), vec![bobs, before]);
    assert!(
        bob.notes
            .iter()
            .find(|n| n.id == bobs)
            .expect("his")
            .private
    );

    let anyone = room.board.view(Viewer::Anyone);
    assert_eq!(ids(&anyone), vec![before]);
    assert_eq!(themed(&anyone), vec![before]);
    assert_eq!(room.board.public(), anyone);

    let facilitator = room.view_of(FRAN);
    assert_eq!(ids(&facilitator), vec![before, bobs, alices]);
    assert_eq!(themed(&facilitator), vec![bobs, before]);
}

#[test]
fn set_writing_open_reveals_every_note() {
    let (mut room, before, bobs, alices, _) = private_room();
    assert_eq!(
        room.delivery(FRAN, &writing(Writing::Open)),
        Delivery::Resync
    );
    room.ok(FRAN, writing(Writing::Open));
    assert!(!room.board.has_private_notes());
    for who in [ALICE, BOB] {
        let view = room.view_of(who);
        assert_eq!(ids(&view), vec![before, bobs, alices], "{who:?}");
        assert_eq!(themed(&view), vec![bobs, before], "{who:?}");
        assert!(view.notes.iter().all(|n| !n.private));
    }
    assert_eq!(room.board.view(Viewer::Anyone), room.view_of(ALICE));
    // From now on new notes are everyone's at once.
    let after = room.note(BOB, "After");
    assert!(!room.board.notes[&after].private);
    assert_eq!(room.delivery(BOB, &create("More")), Delivery::Everyone);
}

#[test]
fn a_participant_cannot_find_another_participants_private_note() {
    let (mut room, _, bobs, _, t) = private_room();
    room.ok(FRAN, open_voting(3, true));
    // "Not found", not "not yours": a guessed id tells Alice nothing.
    for op in [
        edit(bobs, "Mine now"),
        recolour(bobs),
        move_to(bobs),
        delete(bobs),
        set_theme(bobs, None),
        set_theme(bobs, Some(t)),
        vote(bobs),
        unvote(bobs),
    ] {
        assert_eq!(
            room.refused(ALICE, op.clone()),
            RejectReason::NotFound,
            "{op:?}"
        );
    }
    // Bob and the facilitators can.
    room.ok(BOB, edit(bobs, "Bob's secret, longer"));
    room.ok(BOB, vote(bobs));
    room.ok(FRAN, move_to(bobs));
}

#[test]
fn ops_on_a_private_note_go_only_to_the_people_they_concern() {
    let (mut room, before, bobs, _, t) = private_room();
    let only = |people: &[&str]| Delivery::Restricted(people.iter().map(|k| key(k)).collect());
    let cases = [
        (BOB, create("New"), only(&["bob"])),
        (FRAN, proxy_note("For Grandad"), only(&["fran"])),
        (BOB, edit(bobs, "Edited"), only(&["bob"])),
        (BOB, recolour(bobs), only(&["bob"])),
        (BOB, delete(bobs), only(&["bob"])),
        (FRAN, move_to(bobs), only(&["fran", "bob"])),
        (FRAN, set_theme(bobs, None), only(&["fran", "bob"])),
        (BOB, set_theme(bobs, Some(t)), only(&["bob"])),
        // Operations on a note everyone sees go to everyone.
        (BOB, move_to(before), Delivery::Everyone),
        (ALICE, edit(before, "Before, edited"), Delivery::Everyone),
        (FRAN, set_theme(before, None), Delivery::Everyone),
        // So do the room's settings; private writing starting again shows or hides nothing.
        (FRAN, writing(Writing::Private), Delivery::Everyone),
        (FRAN, locked(true), Delivery::Everyone),
        (FRAN, start_timer(60, OnEnd::Lock), Delivery::Everyone),
        (
            ALICE,
            Op::CreateTheme(CreateTheme {
                title: "More".into(),
            }),
            Delivery::Everyone,
        ),
        // A reveal shows notes no operation can describe: participants get a fresh board.
        (FRAN, writing(Writing::Open), Delivery::Resync),
    ];
    for (who, op, expected) in cases {
        assert_eq!(room.delivery(who, &op), expected, "{op:?} by {who:?}");
    }
    // With nothing private left, a reveal changes nothing anyone sees.
    room.ok(FRAN, writing(Writing::Open));
    assert_eq!(
        room.delivery(FRAN, &writing(Writing::Open)),
        Delivery::Everyone
    );
}

/// During private writing with the tallies shown, a dot on a private note goes only to the
/// people the note concerns, like every other operation on a private note: the others would
/// learn the id of a note they cannot see, and its tally.
#[test]
fn a_vote_on_a_private_note_goes_only_to_the_people_it_concerns() {
    let (mut room, _, bobs, _, _) = private_room();
    room.ok(FRAN, open_voting(3, true));
    let only = |people: &[&str]| Delivery::Restricted(people.iter().map(|k| key(k)).collect());
    assert_eq!(room.delivery(BOB, &vote(bobs)), only(&["bob"]));
    room.ok(BOB, vote(bobs));
    assert_eq!(room.delivery(BOB, &unvote(bobs)), only(&["bob"]));
    assert_eq!(
        room.delivery(FRAN, &proxy_vote(bobs)),
        only(&["fran", "bob"])
    );
}

/// While the tallies are hidden, nobody but facilitators and the voter hears of a dot, not even
/// the author of the note it went on: a facilitator's dot on Bob's private note must not tell
/// Bob his note's tally went up.
#[test]
fn with_hidden_tallies_a_dot_on_a_private_note_is_not_sent_to_its_author() {
    let (mut room, _, bobs, _, _) = private_room();
    room.ok(FRAN, open_voting(3, false));
    let fran_only = Delivery::Restricted(vec![key("fran")]);
    assert_eq!(room.delivery(FRAN, &proxy_vote(bobs)), fran_only);
    assert_eq!(room.delivery(FRAN, &vote(bobs)), fran_only);
}

/// A participant's client places a note in a theme at `position` in the list it is shown. While
/// the theme holds a private note the participant cannot see, the server counts that note too,
/// so participants are sent the theme afresh (`Resync`) rather than the position.
#[test]
fn a_theme_position_means_the_same_to_a_participant_as_to_the_server() {
    let mut room = Room::named();
    let t = room.theme(FRAN, "Ideas");
    let a = room.note(ALICE, "First");
    let b = room.note(ALICE, "Second");
    room.ok(ALICE, set_theme(a, Some(t)));
    room.ok(FRAN, writing(Writing::Private));
    let secret = room.note(BOB, "Bob's secret");
    room.ok(
        BOB,
        Op::SetNoteTheme(SetNoteTheme {
            note: secret,
            theme: Some(t),
            position: Some(0),
        }),
    );
    // Alice is shown [a]; the server holds [secret, a].
    let before = room.view_of(ALICE);
    assert_eq!(before.themes[0].notes, vec![a]);
    let op = Op::SetNoteTheme(SetNoteTheme {
        note: b,
        theme: Some(t),
        position: Some(1),
    });
    assert_eq!(room.delivery(ALICE, &op), Delivery::Resync);
    room.ok(ALICE, op);
    // The fresh board Alice is sent has the server's order, without Bob's note.
    assert_eq!(room.view_of(ALICE).themes[0].notes, vec![b, a]);
    // With no private note in the theme, the position means the same to everyone.
    room.ok(FRAN, writing(Writing::Open));
    let op = Op::SetNoteTheme(SetNoteTheme {
        note: b,
        theme: Some(t),
        position: Some(0),
    });
    assert_eq!(room.delivery(ALICE, &op), Delivery::Everyone);
}

// ---------------------------------------------------------------------------------------------
// Dot voting
// ---------------------------------------------------------------------------------------------

#[test]
fn dots_are_refused_while_voting_is_closed() {
    let mut room = Room::named();
    let n = room.note(ALICE, "More shade");
    assert_eq!(room.refused(ALICE, vote(n)), RejectReason::NotAllowed);
    assert_eq!(room.refused(FRAN, proxy_vote(n)), RejectReason::NotAllowed);
    room.ok(FRAN, open_voting(3, true));
    room.ok(ALICE, vote(n));
    room.ok(FRAN, close_voting());
    assert_eq!(room.refused(ALICE, vote(n)), RejectReason::NotAllowed);
    assert_eq!(room.refused(ALICE, unvote(n)), RejectReason::NotAllowed);
    // The dots given stay on the note.
    assert_eq!(room.board.notes[&n].tally(), 1);
}

#[test]
fn voting_opens_with_1_to_99_dots() {
    let mut room = Room::named();
    for budget in [0, 100, u32::MAX] {
        assert_eq!(
            room.refused(FRAN, open_voting(budget, true)),
            RejectReason::Invalid
        );
    }
    for budget in [1, 99] {
        room.ok(FRAN, open_voting(budget, false));
        assert_eq!(room.board.state.voting.expect("open").budget, budget);
    }
}

#[test]
fn the_dot_budget_is_enforced() {
    let mut room = Room::named();
    let a = room.note(ALICE, "More shade");
    let b = room.note(BOB, "A pond");
    room.ok(FRAN, open_voting(2, true));
    // Dots may be stacked on one note, one's own included.
    room.ok(ALICE, vote(a));
    room.ok(ALICE, vote(a));
    assert_eq!(room.refused(ALICE, vote(b)), RejectReason::NoVotesLeft);
    assert_eq!(room.board.votes_of(&key("alice")), vec![(a, 2)]);
    // Taking one back frees it.
    room.ok(ALICE, unvote(a));
    room.ok(ALICE, vote(b));
    assert_eq!(room.board.votes_of(&key("alice")), vec![(a, 1), (b, 1)]);
    assert_eq!(room.refused(ALICE, vote(b)), RejectReason::NoVotesLeft);
    // Everyone has their own budget.
    room.ok(BOB, vote(a));
    room.ok(BOB, vote(a));
    assert_eq!(room.board.notes[&a].tally(), 3);
    assert_eq!(room.board.notes[&b].tally(), 1);
}

#[test]
fn a_participant_can_take_back_only_their_own_dots() {
    let mut room = Room::named();
    let n = room.note(ALICE, "More shade");
    room.ok(FRAN, open_voting(3, true));
    room.ok(ALICE, vote(n));
    assert_eq!(room.refused(BOB, unvote(n)), RejectReason::NotAllowed);
    assert_eq!(room.board.notes[&n].tally(), 1);
    room.ok(ALICE, unvote(n));
    assert_eq!(room.refused(ALICE, unvote(n)), RejectReason::NotAllowed);
    assert_eq!(room.board.notes[&n].tally(), 0);
    assert!(room.board.notes[&n].votes.is_empty());
}

#[test]
fn tallies_are_hidden_from_participants_while_voting_with_hidden_tallies() {
    let mut room = Room::named();
    let n = room.note(ALICE, "More shade");
    assert_eq!(
        room.delivery(FRAN, &open_voting(3, false)),
        Delivery::Resync
    );
    room.ok(FRAN, open_voting(3, false));
    room.ok(ALICE, vote(n));
    room.ok(BOB, vote(n));
    for who in [ALICE, BOB] {
        let view = room.view_of(who);
        assert!(view.notes.iter().all(|n| n.votes.is_none()), "{who:?}");
    }
    assert!(room.board.public().notes.iter().all(|n| n.votes.is_none()));
    assert_eq!(room.view_of(FRAN).notes[0].votes, Some(2));
    // Each person still knows their own dots, and only they are told of them.
    assert_eq!(room.board.votes_of(&key("alice")), vec![(n, 1)]);
    assert_eq!(
        room.delivery(ALICE, &vote(n)),
        Delivery::Restricted(vec![key("alice")])
    );
    assert_eq!(
        room.delivery(ALICE, &unvote(n)),
        Delivery::Restricted(vec![key("alice")])
    );
    assert_eq!(
        room.delivery(FRAN, &proxy_vote(n)),
        Delivery::Restricted(vec![key("fran")])
    );
}

#[test]
fn tallies_are_shown_to_everyone_after_voting_closes() {
    let mut room = Room::named();
    let n = room.note(ALICE, "More shade");
    room.ok(FRAN, open_voting(3, false));
    room.ok(BOB, vote(n));
    assert_eq!(room.delivery(FRAN, &close_voting()), Delivery::Resync);
    room.ok(FRAN, close_voting());
    for who in [ALICE, BOB, FRAN] {
        assert_eq!(room.view_of(who).notes[0].votes, Some(1), "{who:?}");
    }
    // With the tallies shown, every dot is everyone's news.
    room.ok(FRAN, open_voting(3, true));
    assert_eq!(room.view_of(ALICE).notes[0].votes, Some(1));
    assert_eq!(room.delivery(ALICE, &vote(n)), Delivery::Everyone);
}

#[test]
fn proxy_dots_count_in_the_tally_but_use_no_ones_budget() {
    let mut room = Room::named();
    let n = room.note(ALICE, "More shade");
    room.ok(FRAN, open_voting(1, true));
    for _ in 0..3 {
        room.ok(FRAN, proxy_vote(n));
    }
    room.ok(FRAN, vote(n));
    assert_eq!(room.refused(FRAN, vote(n)), RejectReason::NoVotesLeft);
    room.ok(ALICE, vote(n));
    assert_eq!(room.board.notes[&n].proxy_votes, 3);
    assert_eq!(room.board.notes[&n].tally(), 5);
    assert_eq!(room.board.votes_of(&key("fran")), vec![(n, 1)]);
}

#[test]
fn a_moderated_note_takes_no_dots() {
    let mut room = Room::named();
    let n = room.note(ALICE, "More shade");
    room.ok(FRAN, open_voting(3, true));
    room.ok(FRAN, hide(n, "Off topic"));
    assert_eq!(room.refused(BOB, vote(n)), RejectReason::NotAllowed);
    assert_eq!(room.refused(FRAN, proxy_vote(n)), RejectReason::NotAllowed);
}

#[test]
fn removing_or_deleting_a_note_gives_its_dots_back() {
    let mut room = Room::named();
    let a = room.note(ALICE, "More shade");
    let b = room.note(ALICE, "A pond");
    let c = room.note(ALICE, "Benches");
    room.ok(FRAN, open_voting(1, true));
    room.ok(BOB, vote(a));
    room.ok(FRAN, remove(a, "Off topic"));
    assert_eq!(room.board.notes[&a].tally(), 0);
    room.ok(BOB, vote(b));
    room.ok(ALICE, delete(b));
    room.ok(BOB, vote(c));
}

// ---------------------------------------------------------------------------------------------
// Moderation
// ---------------------------------------------------------------------------------------------

#[test]
fn a_hidden_note_is_a_placeholder_for_participants() {
    let mut room = Room::named();
    let n = room.note(ALICE, "The hedge at number 4");
    room.ok(FRAN, hide(n, "Names a neighbour"));
    // Its author sees the placeholder too.
    for view in [
        room.view_of(ALICE),
        room.view_of(BOB),
        room.board.view(Viewer::Anyone),
    ] {
        let note = &view.notes[0];
        assert_eq!(note.text, "");
        assert_eq!(note.moderation, Some(ModerationState::Hidden));
        assert_eq!(note.moderation_reason, None);
        assert_eq!(note.author, None);
        let json = serde_json::to_string(&view).expect("serialises");
        assert!(!json.contains("hedge") && !json.contains("neighbour") && !json.contains("Alice"));
    }
    let facilitator = room.view_of(FRAN);
    let note = &facilitator.notes[0];
    assert_eq!(note.text, "The hedge at number 4");
    assert_eq!(note.moderation, Some(ModerationState::Hidden));
    assert_eq!(note.moderation_reason.as_deref(), Some("Names a neighbour"));
    assert_eq!(note.author.as_deref(), Some("Alice"));
}

#[test]
fn unhide_shows_a_hidden_note_again() {
    let mut room = Room::named();
    let n = room.note(ALICE, "The hedge at number 4");
    assert_eq!(room.refused(FRAN, unhide(n)), RejectReason::NotAllowed);
    room.ok(FRAN, hide(n, "Names a neighbour"));
    assert_eq!(
        room.refused(FRAN, hide(n, "Again")),
        RejectReason::NotAllowed
    );
    room.ok(FRAN, unhide(n));
    let note = &room.view_of(BOB).notes[0];
    assert_eq!(note.text, "The hedge at number 4");
    assert_eq!(note.moderation, None);
    assert_eq!(note.author.as_deref(), Some("Alice"));
}

#[test]
fn remove_erases_the_text_for_good() {
    let limits = Limits::default();
    for hidden_first in [false, true] {
        let mut room = Room::named();
        let n = room.note(ALICE, "Call me on 07700 900123");
        if hidden_first {
            room.ok(FRAN, hide(n, "A phone number"));
        }
        room.ok(FRAN, remove(n, "A phone number"));
        let note = &room.board.notes[&n];
        assert_eq!(note.text, "");
        assert_eq!(
            note.moderation.as_ref().map(|m| m.action),
            Some(ModerationState::Removed)
        );
        // Gone from what is saved, and the board is still a valid board, before and after a
        // round trip through its file format.
        let stored = serde_json::to_string(&room.board).expect("serialises");
        assert!(!stored.contains("07700"), "{stored}");
        room.board.check_invariants(&limits).expect("valid");
        let back: Board = serde_json::from_str(&stored).expect("reads back");
        assert_eq!(back, room.board);
        back.check_invariants(&limits)
            .expect("valid after a round trip");
        // Nobody can bring it back, or moderate it again; its placeholder stays.
        for op in [unhide(n), hide(n, "Again"), remove(n, "Again")] {
            assert_eq!(
                room.refused(FRAN, op.clone()),
                RejectReason::NotAllowed,
                "{op:?}"
            );
        }
        assert_eq!(
            room.refused(ALICE, edit(n, "Sorry")),
            RejectReason::NotAllowed
        );
        for who in [ALICE, FRAN] {
            let view = room.view_of(who);
            assert_eq!(view.notes[0].text, "");
            assert_eq!(view.notes[0].moderation, Some(ModerationState::Removed));
        }
    }
}

#[test]
fn a_moderated_note_cannot_be_edited() {
    let mut room = Room::named();
    let n = room.note(ALICE, "The hedge at number 4");
    room.ok(FRAN, hide(n, "Names a neighbour"));
    assert_eq!(
        room.refused(ALICE, edit(n, "The hedge")),
        RejectReason::NotAllowed
    );
    // Its author may still take it down.
    room.ok(ALICE, delete(n));
}

#[test]
fn a_moderation_reason_is_one_line_of_1_to_200_characters() {
    let mut room = Room::named();
    let n = room.note(ALICE, "The hedge");
    let long = "x".repeat(REASON_CHARS + 1);
    for (reason, expected) in [
        ("", RejectReason::TextEmpty),
        ("   ", RejectReason::TextEmpty),
        (long.as_str(), RejectReason::TextTooLong),
        ("Names\na neighbour", RejectReason::TextControlCharacters),
    ] {
        assert_eq!(room.refused(FRAN, hide(n, reason)), expected, "{reason:?}");
        assert_eq!(
            room.refused(FRAN, remove(n, reason)),
            expected,
            "{reason:?}"
        );
    }
    assert_eq!(
        room.refused(FRAN, hide(9999, "Why")),
        RejectReason::NotFound
    );
    room.ok(FRAN, hide(n, &"x".repeat(REASON_CHARS)));
}

#[test]
fn the_audit_list_is_shown_to_facilitators_only() {
    let mut room = Room::named();
    let n = room.note(ALICE, "The hedge at number 4");
    room.ok(FRAN, hide(n, "Names a neighbour"));
    let hidden_at = room.clock;
    room.ok(FRAN, unhide(n));
    room.ok(Who::F("gus"), remove(n, "Names them again"));
    let audit = &room.board.audit;
    let summary: Vec<_> = audit
        .iter()
        .map(|e| (e.action, e.note, e.reason.as_deref(), e.by.as_deref()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                AuditAction::Hide,
                n,
                Some("Names a neighbour"),
                Some("Fran")
            ),
            (AuditAction::Unhide, n, None, Some("Fran")),
            (
                AuditAction::Remove,
                n,
                Some("Names them again"),
                Some("Gus")
            ),
        ]
    );
    assert_eq!(audit[0].at, hidden_at);
    assert_eq!(&room.view_of(FRAN).audit, audit);
    for view in [
        room.view_of(ALICE),
        room.view_of(BOB),
        room.board.view(Viewer::Anyone),
    ] {
        assert!(view.audit.is_empty());
    }
}

#[test]
fn moderation_is_sent_to_participants_as_a_fresh_board() {
    let mut room = Room::named();
    let n = room.note(ALICE, "The hedge");
    for op in [hide(n, "Why"), unhide(n), remove(n, "Why")] {
        assert_eq!(room.delivery(FRAN, &op), Delivery::Resync, "{op:?}");
        let ctx = room.ctx(FRAN);
        assert_eq!(room.board.shown_author(&op, &ctx), None);
        room.ok(FRAN, op);
    }
}

// ---------------------------------------------------------------------------------------------
// Anonymity
// ---------------------------------------------------------------------------------------------

#[test]
fn an_anonymous_room_stores_and_sends_no_author_name() {
    let mut room = Room::anonymous();
    let mut ctx = room.ctx(ALICE);
    ctx.author = Some("Ann".into());
    let op = create("More shade");
    assert_eq!(room.board.shown_author(&op, &ctx), None);
    let n = room
        .board
        .apply(&op, &ctx, &room.limits)
        .expect("accepted")
        .created
        .expect("a note");
    assert_eq!(room.board.notes[&n].author, None);
    let stored = serde_json::to_string(&room.board).expect("serialises");
    assert!(!stored.contains("Ann"), "{stored}");
    for who in [ALICE, BOB, FRAN] {
        assert_eq!(room.view_of(who).notes[0].author, None, "{who:?}");
    }
    // The owner is still kept, so Alice may still change her own note, and only hers.
    assert_eq!(room.board.notes_owned_by(&key("alice")), vec![n]);
    room.ok(ALICE, edit(n, "More shade, please"));
    assert_eq!(room.refused(BOB, edit(n, "No")), RejectReason::NotYours);
}

#[test]
fn only_a_new_note_in_a_named_room_carries_its_authors_name() {
    let mut room = Room::named();
    let n = room.note(ALICE, "More shade");
    room.ok(FRAN, open_voting(3, true));
    let ctx = room.ctx(ALICE);
    assert_eq!(
        room.board.shown_author(&create("Another"), &ctx),
        Some("Alice".into())
    );
    assert_eq!(room.board.notes[&n].author.as_deref(), Some("Alice"));
    for op in [
        edit(n, "Edited"),
        move_to(n),
        vote(n),
        Op::CreateTheme(CreateTheme {
            title: "Outside".into(),
        }),
    ] {
        assert_eq!(room.board.shown_author(&op, &ctx), None, "{op:?}");
    }
    let ctx = room.ctx(FRAN);
    assert_eq!(
        room.board.shown_author(&proxy_note("For Grandad"), &ctx),
        None
    );
}

// ---------------------------------------------------------------------------------------------
// Spotlight
// ---------------------------------------------------------------------------------------------

#[test]
fn the_spotlight_refuses_private_and_moderated_notes() {
    let (mut room, before, bobs, _, _) = private_room();
    assert_eq!(
        room.refused(FRAN, spotlight(Some(bobs))),
        RejectReason::NotAllowed
    );
    assert_eq!(
        room.refused(FRAN, spotlight(Some(9999))),
        RejectReason::NotFound
    );
    let hidden = room.note(FRAN, "Hidden soon");
    room.ok(FRAN, writing(Writing::Open));
    room.ok(FRAN, hide(hidden, "Off topic"));
    assert_eq!(
        room.refused(FRAN, spotlight(Some(hidden))),
        RejectReason::NotAllowed
    );
    room.ok(FRAN, spotlight(Some(before)));
    assert_eq!(room.board.state.spotlight, Some(before));
    assert_eq!(room.view_of(ALICE).state.spotlight, Some(before));
    assert_eq!(room.delivery(FRAN, &spotlight(None)), Delivery::Everyone);
    room.ok(FRAN, spotlight(None));
    assert_eq!(room.board.state.spotlight, None);
}

#[test]
fn the_spotlight_goes_out_when_its_note_is_deleted_hidden_or_removed() {
    let mut room = Room::named();
    let deleted = room.note(ALICE, "Deleted");
    let hidden = room.note(ALICE, "Hidden");
    let removed = room.note(ALICE, "Removed");
    let other = room.note(ALICE, "Other");
    for (n, op, who) in [
        (deleted, delete(deleted), ALICE),
        (hidden, hide(hidden, "Off topic"), FRAN),
        (removed, remove(removed, "Off topic"), FRAN),
    ] {
        room.ok(FRAN, spotlight(Some(n)));
        room.ok(who, op);
        assert_eq!(room.board.state.spotlight, None, "note {n}");
    }
    // Another note going does not put out the spotlight.
    room.ok(FRAN, spotlight(Some(other)));
    let gone = room.note(BOB, "Gone");
    room.ok(BOB, delete(gone));
    assert_eq!(room.board.state.spotlight, Some(other));
}

// ---------------------------------------------------------------------------------------------
// Proxy notes
// ---------------------------------------------------------------------------------------------

#[test]
fn a_proxy_note_is_marked_and_belongs_to_no_one() {
    let mut room = Room::named();
    let n = room.ok(FRAN, proxy_note("For Grandad")).expect("a note");
    let note = &room.board.notes[&n];
    assert!(note.proxy);
    assert_eq!(note.owner, None);
    // Not the facilitator's name: they wrote it down for someone else.
    assert_eq!(note.author, None);
    assert!(room.board.notes_owned_by(&key("fran")).is_empty());
    for who in [ALICE, FRAN] {
        assert!(room.view_of(who).notes[0].proxy);
    }
    // During private writing it is private like any other new note.
    room.ok(FRAN, writing(Writing::Private));
    let later = room.ok(FRAN, proxy_note("For Gran")).expect("a note");
    assert!(room.board.notes[&later].private);
    assert!(!ids(&room.view_of(ALICE)).contains(&later));
}

#[test]
fn participants_cannot_change_a_proxy_note() {
    let mut room = Room::named();
    let n = room.ok(FRAN, proxy_note("For Grandad")).expect("a note");
    for op in [edit(n, "Mine"), recolour(n), delete(n)] {
        assert_eq!(
            room.refused(ALICE, op.clone()),
            RejectReason::NotYours,
            "{op:?}"
        );
    }
    // Anyone may move any note; any facilitator may change it.
    room.ok(ALICE, move_to(n));
    room.ok(Who::F("gus"), edit(n, "For Grandad, who is deaf"));
    room.ok(FRAN, recolour(n));
    room.ok(FRAN, delete(n));
}

// ---------------------------------------------------------------------------------------------
// Replay
// ---------------------------------------------------------------------------------------------

#[test]
fn a_facilitated_session_replays_to_the_same_board() {
    let mut room = Room::named();
    let script: Vec<(Who, Op)> = vec![
        (ALICE, create("Before")),
        (FRAN, writing(Writing::Private)),
        (BOB, create("Secret")),
        (FRAN, proxy_note("For Grandad")),
        (FRAN, start_timer(120, OnEnd::Lock)),
        (Who::System, timer_ended()),
        (FRAN, locked(false)),
        (BOB, move_to(2)),
        (FRAN, writing(Writing::Open)),
        (FRAN, theming(Theming::Facilitators)),
        (
            FRAN,
            Op::CreateTheme(CreateTheme {
                title: "Ideas".into(),
            }),
        ),
        (FRAN, set_theme(2, Some(1))),
        (FRAN, open_voting(2, false)),
        (ALICE, vote(2)),
        (ALICE, vote(2)),
        (ALICE, unvote(2)),
        (FRAN, proxy_vote(3)),
        (FRAN, spotlight(Some(1))),
        (FRAN, hide(1, "Off topic")),
        (FRAN, unhide(1)),
        (FRAN, remove(3, "Not for here")),
        (FRAN, close_voting()),
        (BOB, delete(2)),
    ];
    let mut log = Vec::new();
    for (who, op) in script {
        let ctx = room.ctx(who);
        let applied = room
            .board
            .apply(&op, &ctx, &room.limits)
            .unwrap_or_else(|e| panic!("{op:?} by {who:?}: {e}"));
        room.board.check_invariants(&room.limits).expect("valid");
        log.push((op, ctx, applied));
    }
    let mut replayed = Board::for_room("Table 3", "What went well?", false);
    for (op, ctx, applied) in &log {
        assert_eq!(replayed.replay(op, ctx).as_ref(), Ok(applied), "{op:?}");
    }
    assert_eq!(replayed, room.board);
    let json = serde_json::to_string(&replayed).expect("serialises");
    assert_eq!(
        serde_json::from_str::<Board>(&json).expect("reads back"),
        room.board
    );
}
