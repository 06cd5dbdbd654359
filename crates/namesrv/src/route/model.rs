//! The route records now live in the shared wire model (`rmq_model::route`).

pub use rmq_model::route::*;
