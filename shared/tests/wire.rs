//! The wire contract the browser client depends on: the literal JSON of every message, in both
//! directions, and how strictly client messages are read.
//!
//! Each literal is exactly what `serde_json::to_string` writes (compact, fields in declared
//! order), and reads back as the same value. `docs/protocol.md` shows the same literals; the
//! last tests check that it still does, and that every JSON example in it is a real message.
//!
//! The boards in `welcome` and `sync` are not written by hand: they are built by applying real
//! operations to a [`Board`] and taking [`Board::view`] for one person, so the literals also pin
//! what a participant and a facilitator are shown of the same room.

use bothy_shared::ids::ActorKey;
use bothy_shared::op::*;
use bothy_shared::protocol::*;
use bothy_shared::{Board, Limits, OpContext, OpId, RejectReason, Role, Viewer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt::Debug;

// The literals. `docs/protocol.md` must show each one, byte for byte.

const JOIN_FIRST: &str = r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c","last_seq":null,"name":null,"facilitator":null}"#;
const JOIN_AGAIN: &str = r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c","last_seq":12,"name":"Ailsa","facilitator":null}"#;
const JOIN_FACILITATOR: &str = r#"{"type":"join","version":1,"token":"Mf3kR8sQ1wXc7VbN5tYh2J","last_seq":null,"name":"Morag","facilitator":"f56b7c696e147ce38d2d9288bd4982b883b936dd78526cb3"}"#;
const CREATE_NOTE: &str = r#"{"type":"op","op_id":"h3x9-14","op":{"kind":"create_note","text":"Benches by the pond","colour":"green","x":905.5,"y":520.25}}"#;
const EDIT_NOTE: &str = r#"{"type":"op","op_id":"h3x9-15","op":{"kind":"edit_note","note":9,"text":"Benches by the pond, in the shade"}}"#;
const RECOLOUR_NOTE: &str =
    r#"{"type":"op","op_id":"h3x9-16","op":{"kind":"recolour_note","note":9,"colour":"orange"}}"#;
const MOVE_NOTE: &str =
    r#"{"type":"op","op_id":"p0q1-3","op":{"kind":"move_note","note":8,"x":640.5,"y":312.25}}"#;
const DELETE_NOTE: &str = r#"{"type":"op","op_id":"h3x9-17","op":{"kind":"delete_note","note":9}}"#;
const CREATE_THEME: &str =
    r#"{"type":"op","op_id":"h3x9-18","op":{"kind":"create_theme","title":"Water"}}"#;
const RENAME_THEME: &str = r#"{"type":"op","op_id":"h3x9-19","op":{"kind":"rename_theme","theme":2,"title":"Outdoor space"}}"#;
const DELETE_THEME: &str =
    r#"{"type":"op","op_id":"h3x9-20","op":{"kind":"delete_theme","theme":2}}"#;
const SET_NOTE_THEME: &str = r#"{"type":"op","op_id":"h3x9-21","op":{"kind":"set_note_theme","note":8,"theme":2,"position":0}}"#;
const UNSET_NOTE_THEME: &str = r#"{"type":"op","op_id":"h3x9-22","op":{"kind":"set_note_theme","note":8,"theme":null,"position":null}}"#;
const VOTE: &str = r#"{"type":"op","op_id":"h3x9-24","op":{"kind":"vote","note":7}}"#;
const UNVOTE: &str = r#"{"type":"op","op_id":"h3x9-25","op":{"kind":"unvote","note":7}}"#;
const SET_QUOTABLE: &str =
    r#"{"type":"op","op_id":"h3x9-29","op":{"kind":"set_quotable","note":7,"quotable":true}}"#;
const SET_WRITING_PRIVATE: &str =
    r#"{"type":"op","op_id":"f4c1-1","op":{"kind":"set_writing","writing":"private"}}"#;
const SET_WRITING_OPEN: &str =
    r#"{"type":"op","op_id":"f4c1-2","op":{"kind":"set_writing","writing":"open"}}"#;
const START_TIMER: &str =
    r#"{"type":"op","op_id":"f4c1-3","op":{"kind":"start_timer","seconds":300,"on_end":"lock"}}"#;
const STOP_TIMER: &str = r#"{"type":"op","op_id":"f4c1-4","op":{"kind":"stop_timer"}}"#;
const SET_LOCKED: &str =
    r#"{"type":"op","op_id":"f4c1-5","op":{"kind":"set_locked","locked":true}}"#;
const OPEN_VOTING: &str =
    r#"{"type":"op","op_id":"f4c1-6","op":{"kind":"open_voting","budget":3,"show_tallies":false}}"#;
const CLOSE_VOTING: &str = r#"{"type":"op","op_id":"f4c1-7","op":{"kind":"close_voting"}}"#;
const SET_THEMING: &str =
    r#"{"type":"op","op_id":"f4c1-8","op":{"kind":"set_theming","theming":"facilitators"}}"#;
const SPOTLIGHT: &str = r#"{"type":"op","op_id":"f4c1-9","op":{"kind":"spotlight","note":7}}"#;
const SPOTLIGHT_OFF: &str =
    r#"{"type":"op","op_id":"f4c1-10","op":{"kind":"spotlight","note":null}}"#;
const HIDE_NOTE: &str = r#"{"type":"op","op_id":"f4c1-11","op":{"kind":"hide_note","note":9,"reason":"Names a neighbour"}}"#;
const UNHIDE_NOTE: &str = r#"{"type":"op","op_id":"f4c1-12","op":{"kind":"unhide_note","note":9}}"#;
const REMOVE_NOTE: &str = r#"{"type":"op","op_id":"f4c1-13","op":{"kind":"remove_note","note":9,"reason":"A phone number"}}"#;
const PROXY_NOTE: &str = r#"{"type":"op","op_id":"f4c1-14","op":{"kind":"proxy_note","text":"Ramps at both gates","colour":"purple","x":1480.5,"y":300.75}}"#;
const PROXY_VOTE: &str = r#"{"type":"op","op_id":"f4c1-15","op":{"kind":"proxy_vote","note":10}}"#;
const PING: &str = r#"{"type":"ping"}"#;

const WELCOME: &str = r#"{"type":"welcome","version":1,"room":"garden-team","seq":17,"board":{"name":"Table 3","prompt":"What would make the garden better?","notes":[{"id":7,"text":"More shade","colour":"yellow","x":120.5,"y":80.25,"author":"Ailsa","created_at":1767225600000,"updated_at":1767225660000,"theme":2,"quotable":true},{"id":8,"text":"A pond?","colour":"blue","x":900.5,"y":410.75,"created_at":1767225630000,"updated_at":1767225630000},{"id":9,"text":"","colour":"pink","x":400.0,"y":700.0,"created_at":1767225670000,"updated_at":1767225690000,"moderation":"hidden"},{"id":10,"text":"Ramps at both gates","colour":"purple","x":1480.5,"y":300.75,"created_at":1767225680000,"updated_at":1767225680000,"proxy":true}],"themes":[{"id":2,"title":"Outdoors","notes":[7]}],"state":{"anonymous":false,"writing":"private","locked":false,"voting":{"budget":3,"show_tallies":false},"theming":"everyone","spotlight":7,"timer":{"ends_at":1767226040000,"on_end":"lock"}},"audit":[]},"mine":[7],"my_votes":[[7,2]],"presence":3,"facilitators":1,"read_only":false,"role":"participant","now":1767225760000}"#;
const WELCOME_FACILITATOR: &str = r#"{"type":"welcome","version":1,"room":"garden-team","seq":17,"board":{"name":"Table 3","prompt":"What would make the garden better?","notes":[{"id":7,"text":"More shade","colour":"yellow","x":120.5,"y":80.25,"author":"Ailsa","created_at":1767225600000,"updated_at":1767225660000,"theme":2,"votes":2,"quotable":true},{"id":8,"text":"A pond?","colour":"blue","x":900.5,"y":410.75,"created_at":1767225630000,"updated_at":1767225630000,"votes":1},{"id":9,"text":"The hedge at number 4 is a disgrace","colour":"pink","x":400.0,"y":700.0,"author":"Cat","created_at":1767225670000,"updated_at":1767225690000,"moderation":"hidden","moderation_reason":"Names a neighbour","votes":0},{"id":10,"text":"Ramps at both gates","colour":"purple","x":1480.5,"y":300.75,"created_at":1767225680000,"updated_at":1767225680000,"proxy":true,"votes":1},{"id":11,"text":"Benches by the pond","colour":"green","x":905.5,"y":520.25,"created_at":1767225710000,"updated_at":1767225710000,"private":true,"votes":0}],"themes":[{"id":2,"title":"Outdoors","notes":[7]}],"state":{"anonymous":false,"writing":"private","locked":false,"voting":{"budget":3,"show_tallies":false},"theming":"everyone","spotlight":7,"timer":{"ends_at":1767226040000,"on_end":"lock"}},"audit":[{"at":1767225690000,"action":"hide","note":9,"reason":"Names a neighbour","by":"Morag"}]},"mine":[],"my_votes":[],"presence":4,"facilitators":1,"read_only":false,"role":"facilitator","now":1767225765000}"#;
const WELCOME_CATCH_UP: &str = r#"{"type":"welcome","version":1,"room":"garden-team","seq":18,"board":null,"mine":[7],"my_votes":[[7,2]],"presence":3,"facilitators":1,"read_only":false,"role":"participant","now":1767225770000}"#;
const SYNC: &str = r#"{"type":"sync","seq":18,"board":{"name":"Table 3","prompt":"What would make the garden better?","notes":[{"id":7,"text":"More shade","colour":"yellow","x":120.5,"y":80.25,"author":"Ailsa","created_at":1767225600000,"updated_at":1767225660000,"theme":2,"votes":2,"quotable":true},{"id":8,"text":"A pond?","colour":"blue","x":900.5,"y":410.75,"created_at":1767225630000,"updated_at":1767225630000,"votes":1},{"id":9,"text":"","colour":"pink","x":400.0,"y":700.0,"created_at":1767225670000,"updated_at":1767225690000,"moderation":"hidden","votes":0},{"id":10,"text":"Ramps at both gates","colour":"purple","x":1480.5,"y":300.75,"created_at":1767225680000,"updated_at":1767225680000,"proxy":true,"votes":1}],"themes":[{"id":2,"title":"Outdoors","notes":[7]}],"state":{"anonymous":false,"writing":"private","locked":false,"voting":null,"theming":"everyone","spotlight":7,"timer":{"ends_at":1767226040000,"on_end":"lock"}},"audit":[]},"mine":[7],"my_votes":[[7,2]]}"#;
const APPLIED_CREATE: &str = r#"{"type":"applied","seq":13,"op_id":"h3x9-14","at":1767225720000,"author":"Ailsa","op":{"kind":"create_note","text":"Benches by the pond","colour":"green","x":905.5,"y":520.25},"created":9}"#;
const APPLIED_MOVE: &str = r#"{"type":"applied","seq":14,"op_id":"p0q1-3","at":1767225725000,"author":null,"op":{"kind":"move_note","note":8,"x":640.5,"y":312.25},"created":null}"#;
const APPLIED_PROXY_NOTE: &str = r#"{"type":"applied","seq":15,"op_id":"f4c1-14","at":1767225730000,"author":null,"op":{"kind":"proxy_note","text":"Ramps at both gates","colour":"purple","x":1480.5,"y":300.75},"created":10}"#;
const APPLIED_HIDE: &str = r#"{"type":"applied","seq":16,"op_id":"f4c1-11","at":1767225735000,"author":null,"op":{"kind":"hide_note","note":9,"reason":"Names a neighbour"},"created":null}"#;
const APPLIED_TIMER_ENDED: &str = r#"{"type":"applied","seq":17,"op_id":"timer-17","at":1767225900000,"author":null,"op":{"kind":"timer_ended"},"created":null}"#;
const ALREADY_APPLIED: &str = r#"{"type":"already_applied","op_id":"h3x9-14","seq":13}"#;
const REJECTED: &str = r#"{"type":"rejected","op_id":"h3x9-23","reason":"not_yours","message":"Only the person who wrote this note can change or delete it."}"#;
const REJECTED_FACILITATOR_ONLY: &str = r#"{"type":"rejected","op_id":"h3x9-26","reason":"facilitator_only","message":"Only a facilitator can do this."}"#;
const REJECTED_LOCKED: &str = r#"{"type":"rejected","op_id":"h3x9-27","reason":"locked","message":"The board is locked: a facilitator has paused changes."}"#;
const REJECTED_NO_VOTES_LEFT: &str = r#"{"type":"rejected","op_id":"h3x9-28","reason":"no_votes_left","message":"You have used all 3 of your dots. Take one back to move it."}"#;
const PRESENCE: &str = r#"{"type":"presence","count":4,"facilitators":1}"#;
const READ_ONLY: &str = r#"{"type":"read_only","message":"The board is read-only for now: the server cannot save changes. Nothing already saved is lost."}"#;
const ERROR: &str =
    r#"{"type":"error","code":"already_joined","message":"This connection has already joined."}"#;
const PONG: &str = r#"{"type":"pong"}"#;

const OPS: [&str; 28] = [
    CREATE_NOTE,
    EDIT_NOTE,
    RECOLOUR_NOTE,
    MOVE_NOTE,
    DELETE_NOTE,
    CREATE_THEME,
    RENAME_THEME,
    DELETE_THEME,
    SET_NOTE_THEME,
    UNSET_NOTE_THEME,
    VOTE,
    UNVOTE,
    SET_QUOTABLE,
    SET_WRITING_PRIVATE,
    SET_WRITING_OPEN,
    START_TIMER,
    STOP_TIMER,
    SET_LOCKED,
    OPEN_VOTING,
    CLOSE_VOTING,
    SET_THEMING,
    SPOTLIGHT,
    SPOTLIGHT_OFF,
    HIDE_NOTE,
    UNHIDE_NOTE,
    REMOVE_NOTE,
    PROXY_NOTE,
    PROXY_VOTE,
];
const CLIENT: [&str; 4] = [JOIN_FIRST, JOIN_AGAIN, JOIN_FACILITATOR, PING];
const SERVER: [&str; 18] = [
    WELCOME,
    WELCOME_FACILITATOR,
    WELCOME_CATCH_UP,
    SYNC,
    APPLIED_CREATE,
    APPLIED_MOVE,
    APPLIED_PROXY_NOTE,
    APPLIED_HIDE,
    APPLIED_TIMER_ENDED,
    ALREADY_APPLIED,
    REJECTED,
    REJECTED_FACILITATOR_ONLY,
    REJECTED_LOCKED,
    REJECTED_NO_VOTES_LEFT,
    PRESENCE,
    READ_ONLY,
    ERROR,
    PONG,
];

/// A message type the literals pin, with any extra check for its direction.
trait Wire: Serialize + DeserializeOwned + PartialEq + Debug {
    fn also(&self, _json: &str) {}
}

impl Wire for ClientMessage {
    /// The server reads client messages through the decoder: it must agree.
    fn also(&self, json: &str) {
        assert_eq!(decode_client_message(json).as_ref(), Ok(self));
    }
}

impl Wire for ServerMessage {}

/// Pins `value` to `json` in both directions.
#[track_caller]
fn pin<T: Wire>(value: &T, json: &str) {
    assert_eq!(serde_json::to_string(value).expect("serialises"), json);
    assert_eq!(&serde_json::from_str::<T>(json).expect("reads back"), value);
    value.also(json);
}

/// One `#[test]` per literal: `name: LITERAL = value;`.
macro_rules! pinned {
    ($($name:ident: $json:ident = $value:expr;)*) => {
        $(
            #[test]
            fn $name() {
                pin(&$value, $json);
            }
        )*
    };
}

fn id(s: &str) -> OpId {
    OpId::parse(s).expect("a valid op id")
}

fn op(op_id: &str, op: Op) -> ClientMessage {
    ClientMessage::Op(OpMessage {
        op_id: id(op_id),
        op,
    })
}

const TOKEN: &str = "Zq4xW8rT2mKp9sLd0vBn6c";
const SECRET: &str = "f56b7c696e147ce38d2d9288bd4982b883b936dd78526cb3";

fn join(last_seq: Option<u64>, name: Option<&str>) -> ClientMessage {
    ClientMessage::Join(Join {
        version: PROTOCOL_VERSION,
        token: TOKEN.into(),
        last_seq,
        name: name.map(Into::into),
        facilitator: None,
    })
}

fn join_facilitator() -> ClientMessage {
    ClientMessage::Join(Join {
        version: PROTOCOL_VERSION,
        token: "Mf3kR8sQ1wXc7VbN5tYh2J".into(),
        last_seq: None,
        name: Some("Morag".into()),
        facilitator: Some(Secret(SECRET.into())),
    })
}

const T0: u64 = 1_767_225_600_000;

fn create_note() -> Op {
    Op::CreateNote(CreateNote {
        text: "Benches by the pond".into(),
        colour: Colour::Green,
        x: 905.5,
        y: 520.25,
    })
}

fn move_note() -> Op {
    Op::MoveNote(MoveNote {
        note: 8,
        x: 640.5,
        y: 312.25,
    })
}

fn proxy_note() -> Op {
    Op::ProxyNote(CreateNote {
        text: "Ramps at both gates".into(),
        colour: Colour::Purple,
        x: 1480.5,
        y: 300.75,
    })
}

/// Ailsa agrees that her note 7 may be quoted in reports.
fn set_quotable() -> Op {
    Op::SetQuotable(SetQuotable {
        note: 7,
        quotable: true,
    })
}

fn hide_note() -> Op {
    Op::HideNote(Moderate {
        note: 9,
        reason: "Names a neighbour".into(),
    })
}

// The people in the example room. Actor keys are what the server derives from tokens; they
// must never appear in anything a browser is sent.
const AILSA: &str = "a11ce5a11ce5a11ce5a11ce5a11ce5a1";
const BEN: &str = "be4be4be4be4be4be4be4be4be4be4be";
const CAT: &str = "ca7ca7ca7ca7ca7ca7ca7ca7ca7ca7ca";
const MORAG: &str = "f0ca1f0ca1f0ca1f0ca1f0ca1f0ca1f0";

fn who(actor: &str, name: Option<&str>, role: Role, at: u64) -> OpContext {
    OpContext {
        actor: Some(ActorKey::new(actor)),
        author: name.map(Into::into),
        at,
        role,
    }
}

/// The example room, "Table 3", built by the operations a session would send:
///
/// - 7 "More shade": Ailsa's, in theme 2 "Outdoors", spotlighted, and she agreed it may be
///   quoted;
/// - 8 "A pond?": Ben's, written without a name;
/// - 9: Cat's, hidden by the facilitator ("Names a neighbour");
/// - 10 "Ramps at both gates": added by the facilitator for someone without a phone;
/// - 11 "Benches by the pond": Ben's, written during private writing, not yet revealed.
///
/// Voting is open with 3 dots each and the tallies hidden; a 5-minute timer locks the board at
/// zero. Returns the board and the number of operations applied (its `seq`).
fn example_room() -> (Board, u64) {
    let limits = Limits::default();
    let mut b = Board::for_room("Table 3", "What would make the garden better?", false);
    b.next_note_id = 7;
    b.next_theme_id = 2;
    let steps: Vec<(OpContext, Op)> = vec![
        (
            who(AILSA, Some("Ailsa"), Role::Participant, T0),
            Op::CreateNote(CreateNote {
                text: "More shade".into(),
                colour: Colour::Yellow,
                x: 120.5,
                y: 80.25,
            }),
        ),
        (
            who(BEN, None, Role::Participant, T0 + 30_000),
            Op::CreateNote(CreateNote {
                text: "A pond?".into(),
                colour: Colour::Blue,
                x: 900.5,
                y: 410.75,
            }),
        ),
        (
            who(AILSA, Some("Ailsa"), Role::Participant, T0 + 40_000),
            Op::CreateTheme(CreateTheme {
                title: "Outdoors".into(),
            }),
        ),
        (
            who(AILSA, Some("Ailsa"), Role::Participant, T0 + 60_000),
            Op::SetNoteTheme(SetNoteTheme {
                note: 7,
                theme: Some(2),
                position: None,
            }),
        ),
        (
            who(AILSA, Some("Ailsa"), Role::Participant, T0 + 65_000),
            set_quotable(),
        ),
        (
            who(CAT, Some("Cat"), Role::Participant, T0 + 70_000),
            Op::CreateNote(CreateNote {
                text: "The hedge at number 4 is a disgrace".into(),
                colour: Colour::Pink,
                x: 400.0,
                y: 700.0,
            }),
        ),
        (
            who(MORAG, Some("Morag"), Role::Facilitator, T0 + 80_000),
            proxy_note(),
        ),
        (
            who(MORAG, Some("Morag"), Role::Facilitator, T0 + 90_000),
            hide_note(),
        ),
        (
            who(MORAG, Some("Morag"), Role::Facilitator, T0 + 100_000),
            Op::SetWriting(SetWriting {
                writing: Writing::Private,
            }),
        ),
        (
            who(BEN, None, Role::Participant, T0 + 110_000),
            create_note(),
        ),
        (
            who(MORAG, Some("Morag"), Role::Facilitator, T0 + 120_000),
            Op::OpenVoting(OpenVoting {
                budget: 3,
                show_tallies: false,
            }),
        ),
        (
            who(AILSA, Some("Ailsa"), Role::Participant, T0 + 130_000),
            Op::Vote(NoteRef { note: 7 }),
        ),
        (
            who(AILSA, Some("Ailsa"), Role::Participant, T0 + 131_000),
            Op::Vote(NoteRef { note: 7 }),
        ),
        (
            who(BEN, None, Role::Participant, T0 + 132_000),
            Op::Vote(NoteRef { note: 8 }),
        ),
        (
            who(MORAG, Some("Morag"), Role::Facilitator, T0 + 133_000),
            Op::ProxyVote(NoteRef { note: 10 }),
        ),
        (
            who(MORAG, Some("Morag"), Role::Facilitator, T0 + 140_000),
            Op::StartTimer(StartTimer {
                seconds: 300,
                on_end: OnEnd::Lock,
            }),
        ),
        (
            who(MORAG, Some("Morag"), Role::Facilitator, T0 + 150_000),
            Op::Spotlight(Spotlight { note: Some(7) }),
        ),
    ];
    let mut seq = 0;
    for (ctx, op) in &steps {
        b.apply(op, ctx, &limits)
            .unwrap_or_else(|e| panic!("{op:?}: {e}"));
        seq += 1;
    }
    b.check_invariants(&limits)
        .expect("the example board is a valid board");
    (b, seq)
}

/// When the example room's `welcome` messages were sent.
const NOW: u64 = T0 + 160_000;

fn ailsa() -> ActorKey {
    ActorKey::new(AILSA)
}

fn welcome() -> Welcome {
    let (b, seq) = example_room();
    Welcome {
        version: PROTOCOL_VERSION,
        room: "garden-team".into(),
        seq,
        board: Some(b.view(Viewer::Participant(&ailsa()))),
        board_url: None,
        mine_seq: None,
        mine: b.notes_owned_by(&ailsa()),
        my_votes: b.votes_of(&ailsa()),
        presence: 3,
        facilitators: 1,
        read_only: false,
        role: JoinedAs::Participant,
        now: NOW,
    }
}

fn welcome_facilitator() -> Welcome {
    let (b, _) = example_room();
    let morag = ActorKey::new(MORAG);
    Welcome {
        board: Some(b.view(Viewer::Facilitator)),
        mine: b.notes_owned_by(&morag),
        my_votes: b.votes_of(&morag),
        presence: 4,
        role: JoinedAs::Facilitator,
        now: NOW + 5_000,
        ..welcome()
    }
}

fn welcome_catch_up() -> Welcome {
    Welcome {
        seq: 18,
        board: None,
        now: NOW + 10_000,
        ..welcome()
    }
}

/// Ailsa's `sync` after the facilitator closed voting: the tallies are shown.
fn sync() -> Sync {
    let (mut b, seq) = example_room();
    b.apply(
        &Op::CloseVoting(NoFields {}),
        &who(MORAG, Some("Morag"), Role::Facilitator, T0 + 170_000),
        &Limits::default(),
    )
    .expect("voting closes");
    Sync {
        seq: seq + 1,
        board: b.view(Viewer::Participant(&ailsa())),
        mine: b.notes_owned_by(&ailsa()),
        my_votes: b.votes_of(&ailsa()),
    }
}

/// The `rejected` the server sends for `op` asked by `ctx` on `board`, with the message `apply`
/// gives.
fn rejected(op_id: &str, board: &Board, op: &Op, ctx: &OpContext) -> ServerMessage {
    let e = board
        .clone()
        .apply(op, ctx, &Limits::default())
        .expect_err("refused");
    ServerMessage::Rejected(Rejected {
        op_id: id(op_id),
        reason: e.reason,
        message: e.message,
    })
}

fn rejected_facilitator_only() -> ServerMessage {
    let (b, _) = example_room();
    rejected(
        "h3x9-26",
        &b,
        &Op::SetLocked(SetLocked { locked: false }),
        &who(AILSA, Some("Ailsa"), Role::Participant, NOW),
    )
}

fn rejected_locked() -> ServerMessage {
    let (mut b, _) = example_room();
    b.state.locked = true;
    rejected(
        "h3x9-27",
        &b,
        &move_note(),
        &who(AILSA, Some("Ailsa"), Role::Participant, NOW),
    )
}

fn rejected_no_votes_left() -> ServerMessage {
    let (mut b, _) = example_room();
    let ctx = who(AILSA, Some("Ailsa"), Role::Participant, NOW);
    let vote = Op::Vote(NoteRef { note: 8 });
    b.apply(&vote, &ctx, &Limits::default())
        .expect("Ailsa's third dot");
    rejected("h3x9-28", &b, &vote, &ctx)
}

pinned! {
    join_first_time: JOIN_FIRST = join(None, None);
    join_again: JOIN_AGAIN = join(Some(12), Some("Ailsa"));
    join_as_facilitator: JOIN_FACILITATOR = join_facilitator();
    op_create_note: CREATE_NOTE = op("h3x9-14", create_note());
    op_edit_note: EDIT_NOTE = op("h3x9-15", Op::EditNote(EditNote {
        note: 9,
        text: "Benches by the pond, in the shade".into(),
    }));
    op_recolour_note: RECOLOUR_NOTE = op("h3x9-16", Op::RecolourNote(RecolourNote {
        note: 9,
        colour: Colour::Orange,
    }));
    op_move_note: MOVE_NOTE = op("p0q1-3", move_note());
    op_delete_note: DELETE_NOTE = op("h3x9-17", Op::DeleteNote(DeleteNote { note: 9 }));
    op_create_theme: CREATE_THEME = op("h3x9-18", Op::CreateTheme(CreateTheme {
        title: "Water".into(),
    }));
    op_rename_theme: RENAME_THEME = op("h3x9-19", Op::RenameTheme(RenameTheme {
        theme: 2,
        title: "Outdoor space".into(),
    }));
    op_delete_theme: DELETE_THEME = op("h3x9-20", Op::DeleteTheme(DeleteTheme { theme: 2 }));
    op_set_note_theme: SET_NOTE_THEME = op("h3x9-21", Op::SetNoteTheme(SetNoteTheme {
        note: 8,
        theme: Some(2),
        position: Some(0),
    }));
    op_set_note_theme_null: UNSET_NOTE_THEME = op("h3x9-22", Op::SetNoteTheme(SetNoteTheme {
        note: 8,
        theme: None,
        position: None,
    }));
    op_vote: VOTE = op("h3x9-24", Op::Vote(NoteRef { note: 7 }));
    op_unvote: UNVOTE = op("h3x9-25", Op::Unvote(NoteRef { note: 7 }));
    op_set_quotable: SET_QUOTABLE = op("h3x9-29", set_quotable());
    op_set_writing_private: SET_WRITING_PRIVATE = op("f4c1-1", Op::SetWriting(SetWriting {
        writing: Writing::Private,
    }));
    op_set_writing_open: SET_WRITING_OPEN = op("f4c1-2", Op::SetWriting(SetWriting {
        writing: Writing::Open,
    }));
    op_start_timer: START_TIMER = op("f4c1-3", Op::StartTimer(StartTimer {
        seconds: 300,
        on_end: OnEnd::Lock,
    }));
    op_stop_timer: STOP_TIMER = op("f4c1-4", Op::StopTimer(NoFields {}));
    op_set_locked: SET_LOCKED = op("f4c1-5", Op::SetLocked(SetLocked { locked: true }));
    op_open_voting: OPEN_VOTING = op("f4c1-6", Op::OpenVoting(OpenVoting {
        budget: 3,
        show_tallies: false,
    }));
    op_close_voting: CLOSE_VOTING = op("f4c1-7", Op::CloseVoting(NoFields {}));
    op_set_theming: SET_THEMING = op("f4c1-8", Op::SetTheming(SetTheming {
        theming: Theming::Facilitators,
    }));
    op_spotlight: SPOTLIGHT = op("f4c1-9", Op::Spotlight(Spotlight { note: Some(7) }));
    op_spotlight_off: SPOTLIGHT_OFF = op("f4c1-10", Op::Spotlight(Spotlight { note: None }));
    op_hide_note: HIDE_NOTE = op("f4c1-11", hide_note());
    op_unhide_note: UNHIDE_NOTE = op("f4c1-12", Op::UnhideNote(NoteRef { note: 9 }));
    op_remove_note: REMOVE_NOTE = op("f4c1-13", Op::RemoveNote(Moderate {
        note: 9,
        reason: "A phone number".into(),
    }));
    op_proxy_note: PROXY_NOTE = op("f4c1-14", proxy_note());
    op_proxy_vote: PROXY_VOTE = op("f4c1-15", Op::ProxyVote(NoteRef { note: 10 }));
    ping: PING = ClientMessage::Ping(Empty {});

    welcome_to_a_participant: WELCOME = ServerMessage::Welcome(welcome());
    welcome_to_a_facilitator: WELCOME_FACILITATOR = ServerMessage::Welcome(welcome_facilitator());
    welcome_without_board: WELCOME_CATCH_UP = ServerMessage::Welcome(welcome_catch_up());
    sync_after_voting_closed: SYNC = ServerMessage::Sync(sync());
    applied_create: APPLIED_CREATE = ServerMessage::Applied(AppliedOp {
        seq: 13,
        op_id: id("h3x9-14"),
        at: T0 + 120_000,
        author: Some("Ailsa".into()),
        op: create_note(),
        created: Some(9),
    });
    applied_move_by_anonymous: APPLIED_MOVE = ServerMessage::Applied(AppliedOp {
        seq: 14,
        op_id: id("p0q1-3"),
        at: T0 + 125_000,
        author: None,
        op: move_note(),
        created: None,
    });
    applied_proxy_note: APPLIED_PROXY_NOTE = ServerMessage::Applied(AppliedOp {
        seq: 15,
        op_id: id("f4c1-14"),
        at: T0 + 130_000,
        author: None,
        op: proxy_note(),
        created: Some(10),
    });
    applied_hide_to_facilitators: APPLIED_HIDE = ServerMessage::Applied(AppliedOp {
        seq: 16,
        op_id: id("f4c1-11"),
        at: T0 + 135_000,
        author: None,
        op: hide_note(),
        created: None,
    });
    applied_timer_ended: APPLIED_TIMER_ENDED = ServerMessage::Applied(AppliedOp {
        seq: 17,
        op_id: id("timer-17"),
        at: T0 + 300_000,
        author: None,
        op: Op::TimerEnded(NoFields {}),
        created: None,
    });
    already_applied: ALREADY_APPLIED = ServerMessage::AlreadyApplied(AlreadyApplied {
        op_id: id("h3x9-14"),
        seq: 13,
    });
    rejected_not_yours: REJECTED = ServerMessage::Rejected(Rejected {
        op_id: id("h3x9-23"),
        reason: RejectReason::NotYours,
        message: "Only the person who wrote this note can change or delete it.".into(),
    });
    rejected_facilitator_only_op: REJECTED_FACILITATOR_ONLY = rejected_facilitator_only();
    rejected_while_locked: REJECTED_LOCKED = rejected_locked();
    rejected_with_no_votes_left: REJECTED_NO_VOTES_LEFT = rejected_no_votes_left();
    presence: PRESENCE = ServerMessage::Presence(Presence {
        count: 4,
        facilitators: 1,
    });
    read_only: READ_ONLY = ServerMessage::ReadOnly(Notice {
        message: "The board is read-only for now: the server cannot save changes. \
                  Nothing already saved is lost."
            .into(),
    });
    error: ERROR = ServerMessage::Error(ErrorMessage {
        code: ErrorCode::AlreadyJoined,
        message: "This connection has already joined.".into(),
    });
    pong: PONG = ServerMessage::Pong(Empty {});
}

#[test]
fn welcome_out_writes_the_same_bytes_as_welcome() {
    for (welcome, literal) in [
        (welcome(), WELCOME),
        (welcome_facilitator(), WELCOME_FACILITATOR),
        (welcome_catch_up(), WELCOME_CATCH_UP),
    ] {
        let raw = welcome.board.as_ref().map(|b| {
            RawValue::from_string(serde_json::to_string(b).expect("serialises")).expect("JSON")
        });
        let out = WelcomeOut {
            kind: WelcomeTag::Welcome,
            version: welcome.version,
            room: &welcome.room,
            seq: welcome.seq,
            board: raw.as_deref(),
            board_url: welcome.board_url.as_deref(),
            mine_seq: welcome.mine_seq,
            mine: &welcome.mine,
            my_votes: &welcome.my_votes,
            presence: welcome.presence,
            facilitators: welcome.facilitators,
            read_only: welcome.read_only,
            role: welcome.role,
            now: welcome.now,
        };
        let out = serde_json::to_string(&out).expect("serialises");
        assert_eq!(out, literal);
        let typed = serde_json::to_string(&ServerMessage::Welcome(welcome)).expect("serialises");
        assert_eq!(out, typed);
    }
}

#[test]
fn sync_out_writes_the_same_bytes_as_sync() {
    let sync = sync();
    let raw = RawValue::from_string(serde_json::to_string(&sync.board).expect("serialises"))
        .expect("JSON");
    let out = SyncOut {
        kind: SyncTag::Sync,
        seq: sync.seq,
        board: &raw,
        mine: &sync.mine,
        my_votes: &sync.my_votes,
    };
    let out = serde_json::to_string(&out).expect("serialises");
    assert_eq!(out, SYNC);
    let typed = serde_json::to_string(&ServerMessage::Sync(sync)).expect("serialises");
    assert_eq!(out, typed);
}

/// What the example literals show is what the rules in `view.rs` promise: a participant's
/// `welcome` leaves out another participant's private note, a hidden note's words, author and
/// reason, the running tallies and the audit list; the facilitator's shows them all.
#[test]
fn a_participants_welcome_leaves_out_what_they_may_not_see() {
    for secret in [
        "Benches by the pond",
        "The hedge at number 4",
        "Names a neighbour",
        "\"Cat\"",
        "\"Morag\"",
        r#""id":11"#,
    ] {
        assert!(!WELCOME.contains(secret), "a participant is sent {secret}");
        assert!(!SYNC.contains(secret), "a participant is sent {secret}");
        assert!(
            WELCOME_FACILITATOR.contains(secret),
            "a facilitator is not sent {secret}"
        );
    }
    assert!(WELCOME.contains(r#""audit":[]"#));
    let board = welcome().board.expect("a board");
    assert!(board.notes.iter().all(|n| n.votes.is_none()));
    // After voting closes the tallies are everyone's.
    assert!(sync().board.notes.iter().all(|n| n.votes.is_some()));
}

#[test]
fn no_view_and_no_message_carries_an_actor_key() {
    let (b, _) = example_room();
    let keys = [AILSA, BEN, CAT, MORAG];
    // The server's own copy keeps owners and voters (they are saved)…
    let stored = serde_json::to_string(&b).expect("serialises");
    for key in [AILSA, BEN, CAT] {
        assert!(stored.contains(key), "the stored board lost {key}");
    }
    assert_eq!(
        serde_json::from_str::<Board>(&stored).expect("reads back"),
        b
    );
    // …but no view of it ever shows one.
    let people: Vec<ActorKey> = keys.iter().map(|k| ActorKey::new(*k)).collect();
    let mut viewers = vec![Viewer::Facilitator, Viewer::Anyone];
    viewers.extend(people.iter().map(Viewer::Participant));
    for viewer in viewers {
        let json = serde_json::to_string(&b.view(viewer)).expect("serialises");
        for key in keys {
            assert!(!json.contains(key), "{viewer:?} is shown {key}: {json}");
        }
    }
    for literal in SERVER {
        for key in keys {
            assert!(!literal.contains(key), "{literal}");
        }
    }
}

#[test]
fn the_facilitator_secret_never_shows_in_debug_output() {
    let shown = format!("{:?}", join_facilitator());
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("Secret(…)"), "{shown}");
}

#[test]
fn absent_optional_join_fields_read_as_null() {
    let short = r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c"}"#;
    assert_eq!(decode_client_message(short), Ok(join(None, None)));
}

#[test]
fn whole_number_coordinates_are_accepted() {
    // JavaScript's JSON.stringify writes 640, not 640.0.
    let js = r#"{"type":"op","op_id":"p0q1-3","op":{"kind":"move_note","note":8,"x":640,"y":312}}"#;
    let expected = op(
        "p0q1-3",
        Op::MoveNote(MoveNote {
            note: 8,
            x: 640.0,
            y: 312.0,
        }),
    );
    assert_eq!(decode_client_message(js), Ok(expected));
}

#[test]
fn the_palette_is_six_names() {
    let names = serde_json::to_string(&Colour::ALL).expect("serialises");
    assert_eq!(
        names,
        r#"["yellow","pink","blue","green","orange","purple"]"#
    );
}

/// The name of every operation kind. The match fails to compile when a variant is added, so the
/// list (and the literals, and the doc) cannot silently fall behind.
const KINDS: [&str; 26] = [
    "create_note",
    "edit_note",
    "recolour_note",
    "move_note",
    "delete_note",
    "create_theme",
    "rename_theme",
    "delete_theme",
    "set_note_theme",
    "vote",
    "unvote",
    "set_quotable",
    "set_writing",
    "start_timer",
    "stop_timer",
    "set_locked",
    "open_voting",
    "close_voting",
    "set_theming",
    "spotlight",
    "hide_note",
    "unhide_note",
    "remove_note",
    "proxy_note",
    "proxy_vote",
    "timer_ended",
];

fn kind(op: &Op) -> &'static str {
    match op {
        Op::CreateNote(_) => "create_note",
        Op::EditNote(_) => "edit_note",
        Op::RecolourNote(_) => "recolour_note",
        Op::MoveNote(_) => "move_note",
        Op::DeleteNote(_) => "delete_note",
        Op::CreateTheme(_) => "create_theme",
        Op::RenameTheme(_) => "rename_theme",
        Op::DeleteTheme(_) => "delete_theme",
        Op::SetNoteTheme(_) => "set_note_theme",
        Op::Vote(_) => "vote",
        Op::Unvote(_) => "unvote",
        Op::SetQuotable(_) => "set_quotable",
        Op::SetWriting(_) => "set_writing",
        Op::StartTimer(_) => "start_timer",
        Op::StopTimer(_) => "stop_timer",
        Op::SetLocked(_) => "set_locked",
        Op::OpenVoting(_) => "open_voting",
        Op::CloseVoting(_) => "close_voting",
        Op::SetTheming(_) => "set_theming",
        Op::Spotlight(_) => "spotlight",
        Op::HideNote(_) => "hide_note",
        Op::UnhideNote(_) => "unhide_note",
        Op::RemoveNote(_) => "remove_note",
        Op::ProxyNote(_) => "proxy_note",
        Op::ProxyVote(_) => "proxy_vote",
        Op::TimerEnded(_) => "timer_ended",
    }
}

#[test]
fn every_kind_of_operation_has_a_literal() {
    let mut seen = std::collections::BTreeSet::new();
    let applied = [APPLIED_TIMER_ENDED];
    for literal in OPS.into_iter().chain(applied) {
        let op: Op = serde_json::from_value(
            serde_json::from_str::<Value>(literal).expect("JSON")["op"].clone(),
        )
        .expect("an op");
        let name = kind(&op);
        assert_eq!(serde_json::to_value(&op).expect("serialises")["kind"], name);
        seen.insert(name);
    }
    assert_eq!(seen, KINDS.into_iter().collect());
}

#[test]
fn the_server_ends_timers_with_an_op_a_client_may_send_but_never_gets_applied() {
    // `timer_ended` reads like any operation (so a client sending it gets `rejected`, not an
    // `error`), and only the server's own context may apply it.
    let text = r#"{"type":"op","op_id":"h3x9-40","op":{"kind":"timer_ended"}}"#;
    assert_eq!(
        decode_client_message(text),
        Ok(op("h3x9-40", Op::TimerEnded(NoFields {})))
    );
    let (b, _) = example_room();
    for role in [Role::Participant, Role::Facilitator] {
        let refused = rejected(
            "h3x9-40",
            &b,
            &Op::TimerEnded(NoFields {}),
            &who(AILSA, None, role, NOW),
        );
        let ServerMessage::Rejected(r) = refused else {
            unreachable!()
        };
        assert_eq!(r.reason, RejectReason::NotAllowed);
    }
}

/// `json` with `field` set to `value` in the object at `path` (empty path: the message itself).
/// A number in the path indexes an array.
fn with(json: &str, path: &[&str], field: &str, value: Value) -> String {
    let mut v: Value = serde_json::from_str(json).expect("a literal is JSON");
    let mut target = &mut v;
    for key in path {
        target = match key.parse::<usize>() {
            Ok(i) => &mut target[i],
            Err(_) => &mut target[*key],
        };
    }
    target
        .as_object_mut()
        .expect("an object")
        .insert(field.into(), value);
    v.to_string()
}

/// `json` without `field` in the object at `path`.
fn without(json: &str, path: &[&str], field: &str) -> String {
    let mut v: Value = serde_json::from_str(json).expect("a literal is JSON");
    let mut target = &mut v;
    for key in path {
        target = &mut target[*key];
    }
    target.as_object_mut().expect("an object").remove(field);
    v.to_string()
}

/// Asserts `text` is refused as an invalid message, and says which op id (if any) it gave back.
#[track_caller]
fn invalid(text: &str) -> Option<OpId> {
    let e = decode_client_message(text).expect_err(text);
    assert_eq!(e.code, ErrorCode::InvalidMessage, "{text}: {}", e.message);
    assert!(!e.message.is_empty());
    e.op_id
}

fn op_id_of(literal: &str) -> Option<OpId> {
    serde_json::from_str::<Value>(literal).expect("JSON")["op_id"]
        .as_str()
        .map(id)
}

#[test]
fn unknown_fields_are_refused_in_every_op_payload() {
    for literal in OPS {
        let expected = op_id_of(literal);
        let bad = with(literal, &["op"], "token", TOKEN.into());
        assert_eq!(invalid(&bad), expected);
        let bad = with(literal, &["op"], "owner", "someone".into());
        assert_eq!(invalid(&bad), expected);
        // Rights come from how the connection joined, never from a field.
        let bad = with(literal, &["op"], "role", "facilitator".into());
        assert_eq!(invalid(&bad), expected);
    }
}

#[test]
fn unknown_fields_are_refused_in_every_message() {
    for literal in OPS.into_iter().chain(CLIENT) {
        invalid(&with(literal, &[], "room", "another-room".into()));
        invalid(&with(literal, &[], "admin", true.into()));
    }
    for literal in SERVER {
        let bad = with(literal, &[], "extra", 1.into());
        assert!(
            serde_json::from_str::<ServerMessage>(&bad).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn unknown_fields_are_refused_inside_a_board() {
    for path in [
        &["board"][..],
        &["board", "notes", "0"],
        &["board", "themes", "0"],
        &["board", "state"],
        &["board", "state", "voting"],
        &["board", "state", "timer"],
        &["board", "audit", "0"],
    ] {
        let bad = with(WELCOME_FACILITATOR, path, "owner", AILSA.into());
        assert!(
            serde_json::from_str::<ServerMessage>(&bad).is_err(),
            "{path:?} took an owner"
        );
    }
}

#[test]
fn required_fields_are_required_even_when_they_may_be_null() {
    // `note` in `spotlight` and `theme` in `set_note_theme` may be null but not left out, so
    // a client that forgets them is told, rather than stopping a spotlight by accident.
    assert_eq!(
        invalid(&without(SPOTLIGHT, &["op"], "note")),
        Some(id("f4c1-9"))
    );
    assert_eq!(
        invalid(&without(SET_NOTE_THEME, &["op"], "theme")),
        Some(id("h3x9-21"))
    );
    for (literal, field) in [
        (OPEN_VOTING, "show_tallies"),
        (OPEN_VOTING, "budget"),
        (START_TIMER, "on_end"),
        (START_TIMER, "seconds"),
        (HIDE_NOTE, "reason"),
        (REMOVE_NOTE, "reason"),
        (SET_LOCKED, "locked"),
        (SET_QUOTABLE, "quotable"),
        (SET_QUOTABLE, "note"),
        (SET_WRITING_OPEN, "writing"),
        (SET_THEMING, "theming"),
        (PROXY_NOTE, "colour"),
        (VOTE, "note"),
    ] {
        assert!(
            invalid(&without(literal, &["op"], field)).is_some(),
            "{literal} without {field}"
        );
    }
    // `position` may be left out.
    let short = without(SET_NOTE_THEME, &["op"], "position");
    assert!(decode_client_message(&short).is_ok(), "{short}");
}

#[test]
fn colours_outside_the_palette_are_refused() {
    for bad in [
        "red;background:url(//x)",
        "\" onmouseover=\"alert(1)",
        "Yellow",
        "#ffff00",
        "",
    ] {
        for literal in [CREATE_NOTE, RECOLOUR_NOTE, PROXY_NOTE] {
            let text = with(literal, &["op"], "colour", bad.into());
            assert!(invalid(&text).is_some(), "{text}");
        }
        assert!(serde_json::from_value::<Colour>(bad.into()).is_err());
    }
}

#[test]
fn settings_outside_their_names_and_types_are_refused() {
    let cases: Vec<(&str, &str, Value)> = vec![
        (SET_WRITING_OPEN, "writing", "Open".into()),
        (SET_WRITING_OPEN, "writing", "closed".into()),
        (SET_WRITING_OPEN, "writing", true.into()),
        (START_TIMER, "on_end", "stop".into()),
        (START_TIMER, "on_end", Value::Null),
        (START_TIMER, "seconds", "300".into()),
        (START_TIMER, "seconds", (-1).into()),
        (START_TIMER, "seconds", 1.5.into()),
        (START_TIMER, "seconds", (u64::from(u32::MAX) + 1).into()),
        (SET_LOCKED, "locked", "true".into()),
        (SET_LOCKED, "locked", 1.into()),
        (SET_QUOTABLE, "quotable", "true".into()),
        (SET_QUOTABLE, "quotable", Value::Null),
        (SET_QUOTABLE, "quotable", 1.into()),
        (OPEN_VOTING, "budget", (-3).into()),
        (OPEN_VOTING, "show_tallies", Value::Null),
        (SET_THEMING, "theming", "nobody".into()),
        (SPOTLIGHT, "note", "7".into()),
        (HIDE_NOTE, "reason", Value::Null),
        (HIDE_NOTE, "note", Value::Null),
        (PROXY_VOTE, "note", (-10).into()),
    ];
    for (literal, field, value) in cases {
        let text = with(literal, &["op"], field, value);
        assert_eq!(invalid(&text), op_id_of(literal), "{text}");
    }
}

#[test]
fn decode_says_what_kind_of_failure_it_was() {
    use ErrorCode::*;
    let cases: &[(&str, ErrorCode)] = &[
        (&JOIN_AGAIN[..JOIN_AGAIN.len() - 1], MalformedJson),
        (&CREATE_NOTE[..40], MalformedJson),
        (r#"{"type":"ping"} x"#, MalformedJson),
        (r#"{"type":"ping"}{"type":"ping"}"#, MalformedJson),
        (r#"{"type":"ping"},"#, MalformedJson),
        ("", MalformedJson),
        ("{'type':'ping'}", MalformedJson),
        (r#"{"type":"pong"}"#, UnknownType),
        (r#"{"type":"Ping"}"#, UnknownType),
        (r#"{"type":"welcome"}"#, UnknownType),
        (r#"{"type":"sync"}"#, UnknownType),
        (
            r#"{"version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c"}"#,
            UnknownType,
        ),
        (r#"{"type":null}"#, UnknownType),
        (r#"{"type":["ping"]}"#, UnknownType),
        ("{}", UnknownType),
        ("null", UnknownType),
        ("42", UnknownType),
        (
            r#"{"type":"join","version":"1","token":"Zq4xW8rT2mKp9sLd0vBn6c"}"#,
            InvalidMessage,
        ),
        (r#"{"type":"join","version":1,"token":16}"#, InvalidMessage),
        (r#"{"type":"join","version":1}"#, InvalidMessage),
        (
            r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c","last_seq":-1}"#,
            InvalidMessage,
        ),
        (
            r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c","name":5}"#,
            InvalidMessage,
        ),
        (
            r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c","facilitator":true}"#,
            InvalidMessage,
        ),
        (
            r#"{"type":"join","version":1,"token":"Zq4xW8rT2mKp9sLd0vBn6c","role":"facilitator"}"#,
            InvalidMessage,
        ),
        (r#"{"type":"ping","x":1}"#, InvalidMessage),
        (r#"{"type":"op"}"#, InvalidMessage),
        (
            r#"{"type":"op","op_id":14,"op":{"kind":"delete_note","note":9}}"#,
            InvalidMessage,
        ),
    ];
    for (text, code) in cases {
        let e = decode_client_message(text).expect_err(text);
        assert_eq!(e.code, *code, "{text}: {}", e.message);
        assert!(!e.message.is_empty());
        assert_eq!(e.op_id, None, "{text}");
    }
}

#[test]
fn a_bad_op_with_a_good_op_id_gives_the_op_id_back() {
    let good = Some(id("h3x9-30"));
    for (text, op_id) in [
        (
            r#"{"type":"op","op_id":"h3x9-30","op":{"kind":"move_note","note":"8","x":1.5,"y":2.5}}"#,
            &good,
        ),
        (
            r#"{"type":"op","op_id":"h3x9-30","op":{"kind":"move_note","note":8,"x":"1.5","y":2.5}}"#,
            &good,
        ),
        (
            r#"{"type":"op","op_id":"h3x9-30","op":{"kind":"move_note","note":8,"x":1.5}}"#,
            &good,
        ),
        (
            r#"{"type":"op","op_id":"h3x9-30","op":{"kind":"paint_note","note":8}}"#,
            &good,
        ),
        (
            r#"{"type":"op","op_id":"h3x9-30","op":{"kind":"stop_timer","seconds":0}}"#,
            &good,
        ),
        (r#"{"type":"op","op_id":"h3x9-30","op":{"note":8}}"#, &good),
        (r#"{"type":"op","op_id":"h3x9-30","op":null}"#, &good),
        (r#"{"type":"op","op_id":"h3x9-30"}"#, &good),
        (
            r#"{"type":"op","op_id":"has space","op":{"kind":"delete_note","note":9}}"#,
            &None,
        ),
        (
            r#"{"type":"op","op_id":"","op":{"kind":"delete_note","note":9}}"#,
            &None,
        ),
        (
            r#"{"type":"op","op":{"kind":"delete_note","note":9}}"#,
            &None,
        ),
    ] {
        assert_eq!(&invalid(text), op_id, "{text}");
    }
}

#[test]
fn error_messages_do_not_echo_long_input() {
    let field = "a".repeat(10_000);
    let text = with(PING, &[], &field, 1.into());
    let e = decode_client_message(&text).expect_err("unknown field");
    assert_eq!(e.code, ErrorCode::InvalidMessage);
    assert!(e.message.chars().count() < 300, "{}", e.message);
}

/// Messages are JSON objects. serde's internally tagged enums also accept a sequence whose first
/// element is the tag, which the decoder should refuse.
#[test]
fn messages_must_be_objects() {
    for text in [
        r#"["ping"]"#,
        r#"["join",1,"Zq4xW8rT2mKp9sLd0vBn6c",null,null,null]"#,
        r#"{"type":"op","op_id":"h3x9-31","op":["delete_note",9]}"#,
        r#"{"type":"op","op_id":"h3x9-31","op":["stop_timer"]}"#,
    ] {
        assert!(decode_client_message(text).is_err(), "{text} was accepted");
    }
}

// The names the doc's tables list. The matches fail to compile when a variant is added, so the
// lists (and the doc) cannot silently fall behind.

fn reject_reasons() -> Vec<RejectReason> {
    use RejectReason::*;
    let all = vec![
        Invalid,
        TextEmpty,
        TextTooLong,
        TextControlCharacters,
        OutOfBounds,
        NotFound,
        NotYours,
        TooManyNotes,
        TooManyThemes,
        ReadOnly,
        RateLimited,
        FacilitatorOnly,
        Locked,
        NotAllowed,
        NoVotesLeft,
    ];
    for r in &all {
        match r {
            Invalid
            | TextEmpty
            | TextTooLong
            | TextControlCharacters
            | OutOfBounds
            | NotFound
            | NotYours
            | TooManyNotes
            | TooManyThemes
            | ReadOnly
            | RateLimited
            | FacilitatorOnly
            | Locked
            | NotAllowed
            | NoVotesLeft => {}
        }
    }
    all
}

fn error_codes() -> Vec<ErrorCode> {
    use ErrorCode::*;
    let all = vec![
        MalformedJson,
        UnknownType,
        InvalidMessage,
        AlreadyJoined,
        RateLimited,
    ];
    for c in &all {
        match c {
            MalformedJson | UnknownType | InvalidMessage | AlreadyJoined | RateLimited => {}
        }
    }
    all
}

#[test]
fn reject_reasons_and_error_codes_have_these_names() {
    let reasons = serde_json::to_string(&reject_reasons()).expect("serialises");
    assert_eq!(
        reasons,
        r#"["invalid","text_empty","text_too_long","text_control_characters","out_of_bounds","not_found","not_yours","too_many_notes","too_many_themes","read_only","rate_limited","facilitator_only","locked","not_allowed","no_votes_left"]"#
    );
    let codes = serde_json::to_string(&error_codes()).expect("serialises");
    assert_eq!(
        codes,
        r#"["malformed_json","unknown_type","invalid_message","already_joined","rate_limited"]"#
    );
    let roles =
        serde_json::to_string(&[JoinedAs::Participant, JoinedAs::Facilitator]).expect("serialises");
    assert_eq!(roles, r#"["participant","facilitator"]"#);
}

const DOC: &str = include_str!("../../docs/protocol.md");

#[test]
fn the_protocol_doc_shows_every_literal() {
    for literal in OPS.into_iter().chain(CLIENT).chain(SERVER) {
        assert!(DOC.contains(literal), "docs/protocol.md lacks {literal}");
    }
}

#[test]
fn the_protocol_doc_has_a_section_for_every_kind_of_operation() {
    for name in KINDS {
        let heading = format!("### `{name}`");
        assert!(DOC.contains(&heading), "docs/protocol.md lacks {heading}");
        let row = format!("| `{name}` |");
        assert!(
            DOC.contains(&row),
            "docs/protocol.md lacks a row for {name}"
        );
    }
}

#[test]
fn every_json_example_in_the_protocol_doc_is_a_real_message() {
    let mut in_json = false;
    let mut seen = 0;
    for line in DOC.lines() {
        match line.trim() {
            "```json" => in_json = true,
            "```" => in_json = false,
            "" => {}
            text if in_json => {
                let again = if let Ok(m) = serde_json::from_str::<ClientMessage>(text) {
                    serde_json::to_string(&m)
                } else {
                    let m = serde_json::from_str::<ServerMessage>(text)
                        .unwrap_or_else(|e| panic!("not a message ({e}): {text}"));
                    serde_json::to_string(&m)
                };
                assert_eq!(again.expect("serialises"), text, "written differently");
                seen += 1;
            }
            _ => {}
        }
    }
    assert!(seen >= OPS.len() + CLIENT.len() + SERVER.len());
}

#[test]
fn the_protocol_doc_lists_every_reason_code_and_close_code() {
    let names = reject_reasons()
        .into_iter()
        .map(|r| serde_json::to_value(r).expect("serialises"))
        .chain(
            error_codes()
                .into_iter()
                .map(|c| serde_json::to_value(c).expect("serialises")),
        );
    for name in names {
        let cell = format!("| `{}` |", name.as_str().expect("a string"));
        assert!(
            DOC.contains(&cell),
            "docs/protocol.md lacks a row for {cell}"
        );
    }
    for code in [
        close::GOING_AWAY,
        close::UNSUPPORTED_DATA,
        close::INVALID_PAYLOAD,
        close::TOO_BIG,
        close::INTERNAL_ERROR,
        close::BAD_JOIN,
        close::JOIN_TIMEOUT,
        close::NO_PONG,
        close::FACILITATOR_LINK_CHANGED,
        close::NO_SUCH_ROOM,
        close::TOO_SLOW,
    ] {
        let cell = format!("| {code} |");
        assert!(
            DOC.contains(&cell),
            "docs/protocol.md lacks a row for close code {code}"
        );
    }
}
