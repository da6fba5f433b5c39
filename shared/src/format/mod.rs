//! Payload formats: one [`Formatter`] per webhook kind.

mod determined;
mod discord;
mod parts;
mod qovery;
mod slack;
mod standard;
mod teams;
mod ubiops;

pub use determined::Determined;
pub use discord::Discord;
pub use qovery::Qovery;
pub use slack::Slack;
pub use standard::Standard;
pub use teams::Teams;
pub use ubiops::Ubiops;

use crate::event::Event;
use crate::webhook::Kind;

/// Turns an event into the body one kind of receiver expects. Formatters write into a caller's
/// buffer so the dispatch hot path can reuse allocations.
pub trait Formatter: Send + Sync {
    fn format(&self, event: &Event, include_result: bool, out: &mut Vec<u8>);
}

pub fn formatter(kind: Kind) -> &'static dyn Formatter {
    match kind {
        Kind::Standard => &Standard,
        Kind::Slack => &Slack,
        Kind::Discord => &Discord,
        Kind::Teams => &Teams,
        Kind::Determined => &Determined,
        Kind::Ubiops => &Ubiops,
        Kind::Qovery => &Qovery,
    }
}

/// Formats into a fresh buffer, sized for the usual body of about 1 KiB.
pub fn render(kind: Kind, event: &Event, include_result: bool) -> Vec<u8> {
    // 1 KiB: glibc serves requests up to 1,032 bytes from its per-thread cache; a larger first
    // buffer (sized from the event's data, say) took the slow path and a bin consolidation on
    // every body, which cost more than growing the few bodies that outgrow this.
    let mut out = Vec::with_capacity(1024);
    formatter(kind).format(event, include_result, &mut out);
    out
}
