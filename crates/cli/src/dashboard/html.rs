//! The little HTML the dashboard needs: escaping, query-string encoding and the page frame.
//! Hand-written because it is this small: three escapes and one layout.

use std::fmt::Write as _;

/// Text made safe for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A query-string value: unreserved characters as they are, every other byte %-encoded.
pub fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const NAV: [(&str, &str); 4] = [
    ("/", "Clusters"),
    ("/topics", "Topics"),
    ("/groups", "Consumer groups"),
    ("/message", "Message lookup"),
];

/// A page being built: the frame (title, navigation, NameServers) around `body`.
pub struct Page {
    head: String,
    /// The page's content, HTML.
    pub body: String,
}

impl Page {
    /// A page titled `title`, with `active` marked in the navigation.
    pub fn new(title: &str, active: &str, namesrv: &str) -> Self {
        let mut head = String::new();
        let _ = write!(
            head,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{t} · rmq</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head>\
             <body><header><span class=\"brand\">rmq</span><nav>",
            t = esc(title)
        );
        for (href, label) in NAV {
            let _ = write!(
                head,
                "<a href=\"{href}\"{}>{label}</a>",
                if href == active { " class=\"on\"" } else { "" }
            );
        }
        let _ = write!(
            head,
            "</nav><span class=\"ns\">NameServer {}</span></header><main><h1>{}</h1>",
            esc(namesrv),
            esc(title)
        );
        Page {
            head,
            body: String::new(),
        }
    }

    /// The whole document.
    pub fn finish(self) -> String {
        format!("{}{}</main></body></html>", self.head, self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(url("%RETRY%g 1&x=é"), "%25RETRY%25g%201%26x%3D%C3%A9");
    }
}
