//! The answers every broker handler builds: success with or without a header class, a
//! refusal, and a request's typed header decoded with Java's refusal text when a field is
//! missing or bad. Its own module so that the handler modules (admin, manage, pull, send)
//! depend on it and the dispatcher (`processor`) depends on them, with no circle.

use rmq_protocol::codes::response;
use rmq_protocol::custom_header::CommandCustomHeader;
use rmq_protocol::{ExtFields, ProtocolError, RemotingCommand};
use rmq_remoting::ProcessorError;

/// FAQ link Java appends to several refusals.
pub const FAQ_URL: &str = "https://rocketmq.apache.org/docs/bestPractice/06FAQ";

/// A success with no header class (no ext fields on the wire).
pub fn ok() -> RemotingCommand {
    RemotingCommand::response(response::SUCCESS, None)
}

/// A success whose Java response has a header class: `"extFields":{}` even when empty.
pub fn ok_with_header() -> RemotingCommand {
    let mut r = ok();
    r.ext_fields = Some(ExtFields::new());
    r
}

/// A success carrying a typed response header (Java's `createResponseCommand(XxxHeader)`).
pub fn ok_header<H: CommandCustomHeader>(header: &H) -> RemotingCommand {
    let mut r = ok_with_header();
    r.set_header(header);
    r
}

/// A refusal.
pub fn fail(code: i32, remark: impl AsRef<str>) -> RemotingCommand {
    RemotingCommand::response(code, Some(remark.as_ref()))
}

/// A refusal on a handler's error path (`Result<_, Refusal>`), boxed so the `Result` stays
/// small.
pub type Refusal = Box<RemotingCommand>;

/// A [`fail`] as a [`Refusal`].
pub fn refuse(code: i32, remark: impl AsRef<str>) -> Refusal {
    Box::new(fail(code, remark))
}

/// The request's typed header, or the SYSTEM_ERROR Java's header decoding answers: the remark
/// names the wire key (`the custom field <topic> is null`).
pub fn header<H: CommandCustomHeader>(req: &RemotingCommand) -> Result<H, ProcessorError> {
    req.decode_header().map_err(|e| match e {
        ProtocolError::MissingField { field } => ProcessorError::with_code(
            response::SYSTEM_ERROR,
            format!("the custom field <{field}> is null"),
        ),
        ProtocolError::InvalidField {
            field,
            value,
            expected: _,
        } => ProcessorError::with_code(
            response::SYSTEM_ERROR,
            format!("the custom field <{field}> is not a number: {value}"),
        ),
        other => ProcessorError::new(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmq_protocol::headers::admin::DeleteTopicRequestHeader;
    use rmq_protocol::headers::offset::GetMinOffsetRequestHeader;

    #[test]
    fn decode_errors_name_the_key_as_java_does() {
        let req = RemotingCommand::request(215);
        let e = header::<DeleteTopicRequestHeader>(&req).unwrap_err();
        assert_eq!(e.code, response::SYSTEM_ERROR);
        assert_eq!(e.message, "the custom field <topic> is null");

        let mut req = RemotingCommand::request(31);
        let mut ext = ExtFields::new();
        ext.insert("topic", "T");
        ext.insert("queueId", "x");
        req.ext_fields = Some(ext);
        let e = header::<GetMinOffsetRequestHeader>(&req).unwrap_err();
        assert_eq!(e.message, "the custom field <queueId> is not a number: x");
    }
}
