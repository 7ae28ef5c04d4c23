//! Escaping for HTML text and attribute values, and anchors made from names.
//!
//! Everything a report prints comes from files a user wrote (scenario names, descriptions, notes)
//! or from a run; all of it goes through [`text`] before it reaches a page.

/// `s` safe inside an element or a double- or single-quoted attribute value.
pub fn text(s: &str) -> String {
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

/// An id for an anchor: ASCII letters, digits and `-`, prefixed so it never starts with a digit.
/// Distinct names may map to the same slug; [`anchors`] keeps them apart.
pub fn slug(prefix: &str, name: &str) -> String {
    let mut out = String::from(prefix);
    let mut dash = true;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
            dash = false;
        } else if !dash {
            out.push('-');
            dash = true;
        }
    }
    while out.ends_with('-') && out.len() > prefix.len() {
        out.pop();
    }
    out
}

/// Unique anchors for a list of names, in order.
pub fn anchors<'a>(prefix: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    names
        .into_iter()
        .map(|n| {
            let base = slug(prefix, n);
            let mut id = base.clone();
            let mut k = 2;
            while !seen.insert(id.clone()) {
                id = format!("{base}-{k}");
                k += 1;
            }
            id
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            text(r#"<b>"x" & 'y'</b>"#),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
        assert_eq!(text("µs 场景"), "µs 场景");
    }

    #[test]
    fn anchors_are_unique_and_safe() {
        assert_eq!(
            anchors("s-", ["Seed 1", "seed-1", "<x>"]),
            vec!["s-seed-1", "s-seed-1-2", "s-x"]
        );
    }
}
