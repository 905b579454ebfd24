//! `$VAR` / `${VAR}` expansion, shared by the collectors (queries) and the binary (YAML text).

/// Expands `$VAR` and `${VAR}` references in `text`.
///
/// A name is `[A-Za-z_][A-Za-z0-9_]*`. For each reference, `lookup(name)` returns the text to
/// substitute, or `None` to keep the reference exactly as written (`$NAME` or `${NAME}`).
///
/// Left alone, byte for byte:
/// - `$1`, `${1}`... (PromQL `label_replace` / regexp replacement groups): a name never starts
///   with a digit;
/// - `$$` (both characters are copied and the scan continues after them, so `$$HOME` stays too);
/// - a lone `$`, `${` without a closing `}`, `${}` and `${not a name}`.
///
/// Substituted text is not scanned again, so a value containing `$X` is inserted as is.
///
/// ```
/// use fas_collect::expand_vars;
/// let lookup = |name: &str| (name == "APP_NAME").then(|| "my-app".to_string());
/// assert_eq!(
///     expand_vars(r#"label_replace(up{app="${APP_NAME}"}, "x", "$1", "job", "(.*)") + $UNSET"#, &lookup),
///     r#"label_replace(up{app="my-app"}, "x", "$1", "job", "(.*)") + $UNSET"#,
/// );
/// ```
pub fn expand_vars(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push_str("$$");
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) if is_name(&inner[..end]) => {
                    let name = &inner[..end];
                    match lookup(name) {
                        Some(value) => out.push_str(&value),
                        None => {
                            out.push_str("${");
                            out.push_str(name);
                            out.push('}');
                        }
                    }
                    rest = &inner[end + 1..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            let len = name_len(after);
            if len == 0 {
                out.push('$');
                rest = after;
            } else {
                let name = &after[..len];
                match lookup(name) {
                    Some(value) => out.push_str(&value),
                    None => {
                        out.push('$');
                        out.push_str(name);
                    }
                }
                rest = &after[len..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Length in bytes of the name at the start of `s` (0 when `s` does not start with a name).
fn name_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {}
        _ => return 0,
    }
    bytes
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count()
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && name_len(s) == s.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "APP_NAME" => Some("my-app".into()),
            "REGION" => Some("ams".into()),
            "DOLLAR" => Some("$REGION".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_both_forms_and_keeps_unknown_references_as_written() {
        let cases = [
            ("${APP_NAME}", "my-app"),
            ("$APP_NAME", "my-app"),
            (
                "x{app=\"$APP_NAME\",r=\"${REGION}\"}",
                "x{app=\"my-app\",r=\"ams\"}",
            ),
            ("$APP_NAME-suffix", "my-app-suffix"),
            ("$APP_NAMEX", "$APP_NAMEX"),
            ("${APP_NAME}X", "my-appX"),
            ("$UNSET ${UNSET}", "$UNSET ${UNSET}"),
            ("a${EMPTY}b$EMPTY.c", "ab.c"),
            ("$DOLLAR", "$REGION"),
        ];
        for (input, want) in cases {
            assert_eq!(expand_vars(input, &env), want, "input {input:?}");
        }
    }

    #[test]
    fn leaves_regexp_groups_double_dollars_and_malformed_references_alone() {
        let untouched = [
            r#"label_replace(up, "dst", "$1", "src", "(.*)")"#,
            "${1} $2 $10",
            "$$ $$APP_NAME $${APP_NAME}",
            "cost $ 5",
            "trailing $",
            "${",
            "${APP_NAME",
            "${}",
            "${not a name}",
            "${1abc}",
            "ünïcödé $ é",
        ];
        for input in untouched {
            assert_eq!(expand_vars(input, &env), input, "input {input:?}");
        }
    }

    proptest! {
        #[test]
        fn identity_lookup_none_never_changes_text(text in ".*") {
            prop_assert_eq!(expand_vars(&text, &|_| None), text);
        }

        #[test]
        fn text_without_dollar_is_unchanged(text in "[^$]*") {
            prop_assert_eq!(expand_vars(&text, &env), text);
        }

        #[test]
        fn every_reference_is_replaced(
            parts in proptest::collection::vec(("[^$]{0,8}", "[A-Z_][A-Z0-9_]{0,6}", any::<bool>()), 0..6)
        ) {
            let mut input = String::new();
            let mut want = String::new();
            for (lit, name, braced) in &parts {
                input.push_str(lit);
                want.push_str(lit);
                if *braced { input.push_str(&format!("${{{name}}}")) } else {
                    input.push('$');
                    input.push_str(name);
                    // an unbraced name is followed by a separator so it does not swallow the next literal
                    input.push(' ');
                }
                want.push_str(&format!("<{name}>"));
                if !*braced { want.push(' ') }
            }
            prop_assert_eq!(expand_vars(&input, &|n| Some(format!("<{n}>"))), want);
        }

        #[test]
        fn regexp_groups_survive_any_lookup(n in 0u32..100, prefix in "[^$]{0,10}") {
            let text = format!("{prefix}${n} ${{{n}}} $${n}");
            prop_assert_eq!(expand_vars(&text, &|_| Some("X".into())), text);
        }
    }
}
