//! The language of GP Connect Task Management. No I/O lives here.

// The unit tests' crate sees every dev-dependency, which the integration tests use.
#![cfg_attr(test, allow(unused_crate_dependencies))]

pub mod audit;
pub mod ids;
pub mod lifecycle;
pub mod reference;
pub mod task;

pub use ids::{Asid, NhsNumber, NhsNumberError, OdsCode};
pub mod error;
pub mod interaction;
pub mod jwt;
pub mod new_task;
pub mod order_response;
pub mod order_rules;
pub mod region;
pub mod sent;
pub mod spine;
pub mod systems;
pub mod updates;

pub use error::ProviderError;
pub use interaction::Interaction;
pub use region::Region;
