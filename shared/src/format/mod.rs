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
    // Room for the data the body carries and the fields around it, so the buffer is not grown.
    let mut out = Vec::with_capacity(512 + event.data.raw().get().len());
    formatter(kind).format(event, include_result, &mut out);
    out
}
