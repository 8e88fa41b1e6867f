//! Bothy's protocol and board model: pure data and rules, no I/O.
//!
//! # Layout
//! - [`ids`]: validated identifiers (room ids, note and theme ids, client op ids, actor keys).
//! - [`limits`]: the caps every board enforces (text length, notes and themes per room, bounds).
//! - [`text`]: how text is measured and checked (Unicode scalar values, no control characters).
//! - [`op`]: the operations a participant can ask for.
//! - [`board`]: the board model and [`Board::apply`], the one place where an operation is validated
//!   and applied.
//! - [`snapshot`]: the event snapshot staff download, report from and restore.
//! - [`view`]: what each person is shown of a board, and who is told about each change.
//! - [`protocol`]: the versioned WebSocket messages between browser and server.
//!
//! The server and the browser both replay confirmed operations with the same rules, so the same
//! sequence of operations always gives the same board.

pub mod board;
pub mod ids;
pub mod limits;
pub mod op;
pub mod protocol;
pub mod snapshot;
pub mod text;
pub mod view;

pub use board::{
    Applied, AuditEntry, Board, Note, OpContext, OpError, RejectReason, Role, RoomState, Theme,
};
pub use ids::{ActorKey, IdError, NoteId, OpId, RoomId, ThemeId};
pub use limits::Limits;
pub use op::{Colour, Op};
pub use view::{BoardView, Delivery, NoteView, Viewer};
