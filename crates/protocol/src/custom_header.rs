//! Typed custom headers <-> `extFields` (Java's `CommandCustomHeader`).
//!
//! A header is one struct declared with [`custom_header!`](crate::custom_header!): each field names
//! its wire key and whether it is `required` or `optional`. The macro writes the struct and its
//! [`CommandCustomHeader`] impl, so there is no reflection and no hand-written mapping to drift.
//! Decoding is stricter than Java's (which logs and swallows a missing `@CFNotNull` field): a
//! missing required field or an unparsable value is an error that names the wire key, which a
//! processor can turn into a SYSTEM_ERROR reply.
//!
//! ```
//! use rmq_protocol::{custom_header, RemotingCommand};
//!
//! custom_header! {
//!     /// Asks the NameServer for a topic's route.
//!     pub struct RouteQuery {
//!         /// The topic.
//!         topic: required String = "topic",
//!         /// Ask for standard JSON regardless of version.
//!         standard: optional bool = "acceptStandardJsonOnly",
//!     }
//! }
//!
//! let cmd = RemotingCommand::request_with_header(105, &RouteQuery { topic: "T".into(), standard: None });
//! assert_eq!(cmd.ext("topic"), Some("T"));
//! let back: RouteQuery = cmd.decode_header().unwrap();
//! assert_eq!(back.topic, "T");
//! ```

use crate::error::ProtocolError;
use crate::ext_fields::ExtFields;
use bytestring::ByteString;

/// A typed view of a command's ext fields.
pub trait CommandCustomHeader: Sized {
    /// Writes every non-null field into `ext` (overwriting same-named keys, keeping others).
    fn write_to(&self, ext: &mut ExtFields);
    /// Reads the header from `ext`; errors name the missing or bad wire key.
    fn read_from(ext: &ExtFields) -> Result<Self, ProtocolError>;
}

/// A type a header field can have: how it looks as an ext string and how it is parsed back.
pub trait HeaderField: Sized {
    /// Type name for error messages.
    const EXPECTED: &'static str;
    /// Parses the wire text; `None` when it does not parse.
    fn parse_field(s: &str) -> Option<Self>;
    /// The wire text (Java `toString()`).
    fn to_field(&self) -> ByteString;
}

impl HeaderField for String {
    const EXPECTED: &'static str = "string";
    fn parse_field(s: &str) -> Option<Self> {
        Some(s.to_owned())
    }
    fn to_field(&self) -> ByteString {
        ByteString::from(self.as_str())
    }
}

impl HeaderField for bool {
    const EXPECTED: &'static str = "boolean";
    /// Java `Boolean.parseBoolean`: "true" in any case is true, anything else false; never fails.
    fn parse_field(s: &str) -> Option<Self> {
        Some(s.trim().eq_ignore_ascii_case("true"))
    }
    fn to_field(&self) -> ByteString {
        ByteString::from_static(if *self { "true" } else { "false" })
    }
}

macro_rules! int_field {
    ($($t:ty => $name:literal),*) => {$(
        impl HeaderField for $t {
            const EXPECTED: &'static str = $name;
            fn parse_field(s: &str) -> Option<Self> {
                s.trim().parse().ok()
            }
            fn to_field(&self) -> ByteString {
                ByteString::from(itoa::Buffer::new().format(*self))
            }
        }
    )*};
}
int_field!(i32 => "int32", i64 => "int64");

impl HeaderField for f64 {
    const EXPECTED: &'static str = "double";
    fn parse_field(s: &str) -> Option<Self> {
        s.trim().parse().ok()
    }
    fn to_field(&self) -> ByteString {
        ByteString::from(self.to_string())
    }
}

/// Reads a required field (used by the macro).
pub fn read_required<T: HeaderField>(
    ext: &ExtFields,
    wire: &'static str,
) -> Result<T, ProtocolError> {
    match ext.get(wire) {
        None => Err(ProtocolError::MissingField { field: wire }),
        Some(s) => parse(s, wire),
    }
}

/// Reads an optional field (used by the macro); present but unparsable is still an error.
pub fn read_optional<T: HeaderField>(
    ext: &ExtFields,
    wire: &'static str,
) -> Result<Option<T>, ProtocolError> {
    ext.get(wire).map(|s| parse(s, wire)).transpose()
}

fn parse<T: HeaderField>(s: &str, wire: &'static str) -> Result<T, ProtocolError> {
    T::parse_field(s).ok_or_else(|| ProtocolError::InvalidField {
        field: wire,
        value: s.chars().take(64).collect(),
        expected: T::EXPECTED,
    })
}

/// Declares a typed custom header: a struct plus its [`CommandCustomHeader`] impl.
///
/// Syntax per field: `rust_name: required|optional Type = "wireName"`. Optional fields become
/// `Option<Type>` and are skipped when `None`. Fields are written in declaration order, which is
/// also the order Java's fast binary encoder uses for the headers that have one.
#[macro_export]
macro_rules! custom_header {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $kind:ident $ty:ty = $wire:literal
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Default)]
        $vis struct $name {
            $( $(#[$fmeta])* pub $field: $crate::__header_field_type!($kind $ty), )*
        }

        impl $name {
            /// Wire (ext field) names of this header, in encoding order.
            pub const FIELD_NAMES: &'static [&'static str] = &[$($wire),*];
        }

        impl $crate::custom_header::CommandCustomHeader for $name {
            fn write_to(&self, ext: &mut $crate::ExtFields) {
                ext.reserve(Self::FIELD_NAMES.len());
                $( $crate::__header_field_write!($kind ext, $wire, &self.$field); )*
            }
            fn read_from(ext: &$crate::ExtFields) -> ::core::result::Result<Self, $crate::ProtocolError> {
                ::core::result::Result::Ok($name {
                    $( $field: $crate::__header_field_read!($kind $ty, ext, $wire), )*
                })
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __header_field_type {
    (required $t:ty) => { $t };
    (optional $t:ty) => { ::core::option::Option<$t> };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __header_field_write {
    (required $ext:ident, $wire:literal, $v:expr) => {
        $ext.insert_static($wire, $crate::custom_header::HeaderField::to_field($v));
    };
    (optional $ext:ident, $wire:literal, $v:expr) => {
        if let ::core::option::Option::Some(v) = $v {
            $ext.insert_static($wire, $crate::custom_header::HeaderField::to_field(v));
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __header_field_read {
    (required $t:ty, $ext:ident, $wire:literal) => {
        $crate::custom_header::read_required::<$t>($ext, $wire)?
    };
    (optional $t:ty, $ext:ident, $wire:literal) => {
        $crate::custom_header::read_optional::<$t>($ext, $wire)?
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::custom_header! {
        /// Test header.
        struct Sample {
            name: required String = "name",
            id: required i64 = "brokerId",
            flag: optional bool = "flag",
            count: optional i32 = "count",
        }
    }

    #[test]
    fn round_trip_and_errors_name_the_field() {
        let h = Sample {
            name: "a".into(),
            id: 7,
            flag: Some(true),
            count: None,
        };
        let mut ext = ExtFields::new();
        ext.insert("other", "kept");
        h.write_to(&mut ext);
        assert_eq!(ext.get("brokerId"), Some("7"));
        assert_eq!(ext.get("flag"), Some("true"));
        assert!(!ext.contains_key("count"));
        assert_eq!(ext.get("other"), Some("kept"));
        assert_eq!(Sample::read_from(&ext).unwrap(), h);
        assert_eq!(Sample::FIELD_NAMES, &["name", "brokerId", "flag", "count"]);

        let mut missing = ext.clone();
        missing.remove("brokerId");
        let err = Sample::read_from(&missing).unwrap_err();
        assert!(
            matches!(err, ProtocolError::MissingField { field: "brokerId" }),
            "{err}"
        );
        assert_eq!(err.to_string(), "the custom field brokerId is null");

        let mut bad = ext.clone();
        bad.insert("count", "abc");
        let err = Sample::read_from(&bad).unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::InvalidField {
                    field: "count",
                    expected: "int32",
                    ..
                }
            ),
            "{err}"
        );

        // A binary empty value (null) reads as absent.
        let mut null = ext.clone();
        null.insert_null("name");
        assert!(matches!(
            Sample::read_from(&null),
            Err(ProtocolError::MissingField { field: "name" })
        ));
        // Java parseBoolean: anything but "true" is false.
        let mut b = ext;
        b.insert("flag", "TRUE");
        assert_eq!(Sample::read_from(&b).unwrap().flag, Some(true));
        b.insert("flag", "yes");
        assert_eq!(Sample::read_from(&b).unwrap().flag, Some(false));
    }
}
