//! Reads fastjson's default output, which is not JSON: Long map keys are written unquoted
//! (`"brokerAddrs":{0:"ip:port"}`, in GET_BROKER_CLUSTER_INFO and in route bodies for old
//! clients). Hand-written because no JSON parser accepts it: bare integer keys are quoted, then
//! serde_json parses the result.

/// Parses `text` as JSON after quoting bare integer object keys.
pub fn parse(text: &[u8]) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::from_slice(&quote_integer_keys(text))
}

fn quote_integer_keys(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    // True right after '{' or ',' (outside strings), where an object key may start.
    let mut key_position = false;
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if key_position && (c.is_ascii_digit() || c == b'-') {
            let start = i;
            let mut j = i + 1;
            while j < text.len() && text[j].is_ascii_digit() {
                j += 1;
            }
            let mut k = j;
            while k < text.len() && text[k].is_ascii_whitespace() {
                k += 1;
            }
            if k < text.len() && text[k] == b':' {
                out.push(b'"');
                out.extend_from_slice(&text[start..j]);
                out.push(b'"');
                i = j;
                key_position = false;
                continue;
            }
        }
        match c {
            b'"' => in_string = true,
            b'{' | b',' => key_position = true,
            c if c.is_ascii_whitespace() => {}
            _ => key_position = false,
        }
        if c == b'"' {
            key_position = false;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_bare_integer_keys() {
        let v = parse(br#"{"a":{0:"x,1:y",1:"z"},"b":[1,2],"c":"{3:4}"}"#).unwrap();
        assert_eq!(v["a"]["0"], "x,1:y");
        assert_eq!(v["a"]["1"], "z");
        assert_eq!(v["b"][1], 2);
        assert_eq!(v["c"], "{3:4}");
        assert!(parse(br#"{"brokerAddrs":{"0":"q"}}"#).is_ok());
    }
}
