//! The sending side of GP Connect Task Management (spec §10): the engine the
//! CLI and the web UI share.

mod engine;
pub mod events;
pub mod jwt_builder;
pub mod order_builder;
mod sender_tls;
pub mod spine_client;
mod task_updates;

pub use engine::{Engine, EngineConfig, SendError, SendRequest, Who};
pub use events::StatusEvent;
pub use sender_tls::SenderTls;
