//! Secrets kept out of everything glidepath writes: the credentials of any URL
//! (`scheme://user:password@host` shows as `scheme://***@host`) and the values of the
//! secrets a pipeline names (tokens, passwords, secret headers, webhook URLs), replaced by
//! `***` wherever they appear. The engine's emitter passes every event through one, so
//! the journal, the cockpit, the headless output, reports and notifications never see
//! them.

use std::borrow::Cow;

use serde_json::Value;

/// Secrets shorter than this are not searched for: a one- or two-letter value would blank
/// out ordinary words.
const SHORTEST: usize = 4;

/// What to hide.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Hides URL credentials and each of `secrets` (blank and very short ones ignored).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| s.len() >= SHORTEST)
            .collect();
        // Longest first, so a secret that contains another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// `text` with every URL's credentials and every secret hidden.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = url_credentials(text);
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), "***"));
            }
        }
        out
    }

    /// Every string in `v` (keys included) redacted; whether anything changed.
    pub fn value(&self, v: &mut Value) -> bool {
        match v {
            Value::String(s) => match self.text(s) {
                Cow::Owned(hidden) => {
                    *s = hidden;
                    true
                }
                Cow::Borrowed(_) => false,
            },
            Value::Array(items) => {
                // Every item is visited: no short cut once one changed.
                let mut changed = false;
                for i in items {
                    changed |= self.value(i);
                }
                changed
            }
            Value::Object(map) => {
                let mut changed = false;
                let entries = std::mem::take(map);
                for (k, mut item) in entries {
                    changed |= self.value(&mut item);
                    let key = self.text(&k).into_owned();
                    changed |= key != k;
                    map.insert(key, item);
                }
                changed
            }
            _ => false,
        }
    }

    /// `item` with every string in it redacted (through its JSON form); unchanged when
    /// nothing needed hiding or it cannot be read back.
    pub fn serde<T>(&self, item: T) -> T
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        let Ok(mut v) = serde_json::to_value(&item) else {
            return item;
        };
        if !self.value(&mut v) {
            return item;
        }
        serde_json::from_value(v).unwrap_or(item)
    }
}

/// `text` with the user information of every `scheme://user[:password]@host` replaced by
/// `***` (the `@` must come before the host part ends).
pub fn url_credentials(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#')
                    || c.is_whitespace()
                    || matches!(c, '"' | '\'' | '<' | '>' | '`')
            })
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) if at > 0 && !tail[..end].starts_with("***@") => {
                out.push_str("***");
                rest = &tail[at..];
                changed = true;
            }
            _ => rest = tail,
        }
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_hidden_wherever_a_url_is() {
        assert_eq!(
            url_credentials("GET http://admin:PASSWORD@127.0.0.1:9090/api failed"),
            "GET http://***@127.0.0.1:9090/api failed"
        );
        assert_eq!(
            url_credentials("a https://tok@h/x and \"ftp://u:p@q\""),
            "a https://***@h/x and \"ftp://***@q\""
        );
        // An @ after the host is part of the path or query, not credentials.
        assert_eq!(
            url_credentials("http://host/users/@me?to=a@b"),
            "http://host/users/@me?to=a@b"
        );
        assert_eq!(url_credentials("no url@here"), "no url@here");
        assert_eq!(url_credentials("http://***@h"), "http://***@h");
    }

    #[test]
    fn named_secrets_are_hidden_in_text_and_json() {
        let r = Redactor::new(["s3cr3t-token".into(), "ab".into(), " ".into()]);
        assert_eq!(r.text("Bearer s3cr3t-token sent"), "Bearer *** sent");
        // Too short to search for without blanking ordinary words.
        assert_eq!(r.text("about"), "about");
        let mut v = serde_json::json!({
            "summary": "token s3cr3t-token",
            "list": ["x", "http://u:p@h"],
            "s3cr3t-token": 1,
            "n": 2,
        });
        assert!(r.value(&mut v));
        assert_eq!(
            v,
            serde_json::json!({
                "summary": "token ***",
                "list": ["x", "http://***@h"],
                "***": 1,
                "n": 2,
            })
        );
        let mut clean = serde_json::json!({ "a": "b" });
        assert!(!r.value(&mut clean));
    }
}
