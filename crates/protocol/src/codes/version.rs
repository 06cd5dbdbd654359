//! `MQVersion.Version` ordinals: the `version` field of every command.
//!
//! Java sends the ordinal of its release enum; several behaviours are gated on it (route JSON style,
//! GO_AWAY, register body layout), so the values the spec names are constants here.

/// Named `MQVersion` ordinals used by version gates.
pub struct MqVersion;

impl MqVersion {
    /// V3_0_11: REGISTER_BROKER body is a RegisterBrokerBody from here on.
    pub const V3_0_11: i32 = 37;
    /// V4_0_0.
    pub const V4_0_0: i32 = 213;
    /// V4_3_0.
    pub const V4_3_0: i32 = 273;
    /// V4_5_2, what rocketmq-client-go v2 sends.
    pub const V4_5_2: i32 = 317;
    /// V4_8_0.
    pub const V4_8_0: i32 = 373;
    /// V4_9_0.
    pub const V4_9_0: i32 = 393;
    /// V4_9_3: last version whose ACL signature includes `_UNIQUE_KEY_QUERY`.
    pub const V4_9_3: i32 = 399;
    /// V4_9_4: clients from here on get standard (quoted-key) route JSON.
    pub const V4_9_4: i32 = 401;
    /// V4_9_8, last 4.9 release.
    pub const V4_9_8: i32 = 409;
    /// V5_0_0: compressed register body carries the mapping section.
    pub const V5_0_0: i32 = 413;
    /// V5_1_0.
    pub const V5_1_0: i32 = 433;
    /// V5_1_4: HAProxy support, GO_AWAY gate of 5.2.0.
    pub const V5_1_4: i32 = 441;
    /// V5_2_0.
    pub const V5_2_0: i32 = 453;
    /// V5_3_0.
    pub const V5_3_0: i32 = 473;
    /// V5_3_1: requests from newer clients get GO_AWAY during graceful shutdown.
    pub const V5_3_1: i32 = 475;
    /// V5_3_3, the release this implementation imitates.
    pub const V5_3_3: i32 = 479;
    /// The version rmq puts on every command it creates.
    pub const CURRENT: i32 = Self::V5_3_3;
}
