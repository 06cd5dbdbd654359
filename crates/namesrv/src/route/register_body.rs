//! REGISTER_BROKER bodies now live in the shared wire model (`rmq_model::register`): the
//! NameServer decodes them, the coming broker encodes them.

pub use rmq_model::register::*;
