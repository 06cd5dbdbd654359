//! Subscriptions (Java's `FilterAPI.buildSubscriptionData`, spec §4.2): `*` or `TagA || TagB`,
//! the tags' hash codes the broker filters on, and the exact tag check the client makes.

use rmq_model::heartbeat::SubscriptionData;

/// A TAG subscription of `topic` to `expression` (empty or `*` = everything), versioned now.
pub fn build(topic: &str, expression: &str) -> SubscriptionData {
    let e = expression.trim();
    let mut s = SubscriptionData {
        topic: topic.to_owned(),
        expression_type: "TAG".into(),
        sub_version: crate::now_ms(),
        ..Default::default()
    };
    if e.is_empty() || e == "*" {
        s.sub_string = "*".into();
        return s;
    }
    s.sub_string = expression.to_owned();
    for tag in e.split("||").map(str::trim).filter(|t| !t.is_empty()) {
        s.tags_set.push(tag.to_owned());
        s.code_set.push(rmq_model::message::java_string_hash(tag));
    }
    s
}

/// The client's exact check (hash codes collide): `*` takes everything, else the message's
/// TAGS must be one of the subscription's (a message without tags is not).
pub fn matches(s: &SubscriptionData, tags: Option<&str>) -> bool {
    if s.sub_string == "*" || s.tags_set.is_empty() {
        return true;
    }
    tags.is_some_and(|t| s.tags_set.iter().any(|x| x == t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_and_matching() {
        let all = build("T", "*");
        assert_eq!(all.sub_string, "*");
        assert!(matches(&all, None));
        let two = build("T", "TagA || TagB");
        assert_eq!(two.tags_set, ["TagA", "TagB"]);
        assert_eq!(
            two.code_set[0],
            rmq_model::message::java_string_hash("TagA")
        );
        assert!(matches(&two, Some("TagB")));
        assert!(!matches(&two, Some("TagC")));
        assert!(!matches(&two, None));
    }
}
