//! REGISTER_BROKER bodies live in the shared wire model (`rmq_model::register`): the
//! NameServer decodes them (JSON or compressed); our broker sends the JSON layout
//! (`rmq_broker::register`).

pub use rmq_model::register::*;
