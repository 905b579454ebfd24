//! Go's `flag` package takes long flags with one dash or two; clap takes two. The one flag the Go version had,
//! `-config`, is rewritten before clap sees the arguments.

use std::ffi::OsString;

/// Rewrites `-config PATH` to `--config PATH` and `-config=PATH` to `--config=PATH`, as Go's `flag` package
/// accepts them; every other argument is left as is.
///
/// Only those exact forms are touched (`-c`, `-configx`, `---config` stay as written, for clap to judge). The
/// value after `-config` / `--config` is never rewritten (a file may be called `-config`), nor is anything after
/// `--`. The first argument, the program name, is kept.
///
/// ```
/// use fly_autoscaler::config::normalize_args;
/// let args = normalize_args(["fly-autoscaler", "eval", "-config", "fas.yml"].map(Into::into));
/// assert_eq!(args, ["fly-autoscaler", "eval", "--config", "fas.yml"]);
/// ```
pub fn normalize_args<I: IntoIterator<Item = OsString>>(args: I) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    out.extend(args.next());
    let mut value_next = false;
    let mut rest_positional = false;
    for arg in args {
        if value_next || rest_positional {
            value_next = false;
            out.push(arg);
            continue;
        }
        match arg.to_str() {
            Some("--") => rest_positional = true,
            Some("-config" | "--config") => {
                value_next = true;
                out.push("--config".into());
                continue;
            }
            Some(s) if s.starts_with("-config=") => {
                out.push(format!("-{s}").into());
                continue;
            }
            _ => {}
        }
        out.push(arg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Vec<String> {
        normalize_args(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.into_string().unwrap_or_default())
            .collect()
    }

    #[test]
    fn single_dash_config_becomes_double_dash() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["fas", "eval", "-config", "f.yml"],
                &["fas", "eval", "--config", "f.yml"],
            ),
            (
                &["fas", "serve", "-config=f.yml"],
                &["fas", "serve", "--config=f.yml"],
            ),
            (
                &["fas", "plan", "-config", "f.yml", "--json"],
                &["fas", "plan", "--config", "f.yml", "--json"],
            ),
            (&["fas", "eval", "-config="], &["fas", "eval", "--config="]),
        ];
        for (input, want) in cases {
            assert_eq!(norm(input), *want, "{input:?}");
        }
    }

    #[test]
    fn everything_else_is_left_alone() {
        let untouched: &[&[&str]] = &[
            &["fas", "eval", "--config", "f.yml"],
            &["fas", "eval", "--config=f.yml"],
            &["fas", "eval", "-c", "f.yml"],
            &["fas", "eval", "-configx", "f.yml"],
            &["fas", "eval", "---config", "f.yml"],
            &["fas", "eval", "-h"],
            // A value that looks like the flag is a value.
            &["fas", "eval", "--config", "-config"],
            &["fas", "eval", "--config", "-config=x"],
            // After `--` nothing is a flag.
            &["fas", "eval", "--", "-config", "x"],
            // The program name is not an argument.
            &["-config"],
            &[],
        ];
        for input in untouched {
            assert_eq!(norm(input), *input, "{input:?}");
        }
        assert_eq!(
            norm(&["fas", "eval", "-config", "-config"]),
            ["fas", "eval", "--config", "-config"]
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_arguments_pass_through() {
        use std::os::unix::ffi::OsStringExt;
        let odd = OsString::from_vec(vec![0x2d, 0xff, 0xfe]);
        let out = normalize_args(["fas".into(), "eval".into(), "-config".into(), odd.clone()]);
        assert_eq!(
            out,
            ["fas".into(), "eval".into(), OsString::from("--config"), odd]
        );
    }
}
