//! The fastjson-compatible writer now lives in the shared wire model (`rmq_model::fastjson`).

pub use rmq_model::fastjson::*;
