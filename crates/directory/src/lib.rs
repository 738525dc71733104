//! The national look-ups (PDS, SDS, ODS) and the demo region they are loaded from.
//!
//! For now only the demo region lives here: the fictional local health area
//! of `shared/spec/demo-region.md`, which a new data directory is seeded with.

mod demo_region;

pub use demo_region::demo_region;
