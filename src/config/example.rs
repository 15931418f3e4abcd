//! `tickwire config example`: a commented TOML file with every key of
//! `serve` and its default, written from the clap definitions of
//! [`Config`](super::Config) so it cannot drift from the flags.

use clap::{Arg, ArgAction, Command};

const HEADER: &str = "\
# tickwire configuration (`tickwire serve --config FILE`).
#
# Every key is a flag of `tickwire serve` (`sim-rate` or `sim_rate`); each
# can also be given as the flag (--sim-rate) or as the environment variable
# (TICKWIRE_SIM_RATE), and those win over this file: flag > environment >
# file > default. Keys set below hold their defaults; commented-out keys
# have none. Check a file with `tickwire config check FILE`.
";

/// Splits `text` into comment lines of at most `width` columns.
fn comment(text: &str, width: usize, out: &mut String) {
    for paragraph in text.split("\n\n") {
        let mut line = String::from("#");
        for word in paragraph.split_whitespace() {
            if line.len() > 1 && line.len() + 1 + word.len() > width {
                out.push_str(&line);
                out.push('\n');
                line = String::from("#");
            }
            line.push(' ');
            line.push_str(word);
        }
        if line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
        }
    }
}

/// A default as TOML: booleans as booleans, integers and decimals as
/// numbers, anything else as a
/// string (the file's values go through the flag's parser either way).
fn toml_value(s: &str) -> toml::Value {
    if let Ok(b) = s.parse::<bool>() {
        return toml::Value::Boolean(b);
    }
    if let Ok(i) = s.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    if s.contains('.')
        && let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        return toml::Value::Float(f);
    }
    toml::Value::String(s.to_string())
}

/// The `key = value` line of one argument (commented out when it has no
/// default).
fn key_line(arg: &Arg, key: &str) -> String {
    // A list's default may be one delimited string (`"1m,5m,1h"`).
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .flat_map(|v| match arg.get_value_delimiter() {
            Some(d) => v.split(d).map(str::to_string).collect(),
            None => vec![v],
        })
        .collect();
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => {
            let on = defaults.first().is_some_and(|d| d == "true");
            format!("{key} = {on}")
        }
        ArgAction::Append => {
            let items: Vec<toml::Value> = defaults.iter().map(|d| toml_value(d)).collect();
            let array = toml::Value::Array(items);
            if defaults.is_empty() {
                format!("# {key} = []")
            } else {
                format!("{key} = {array}")
            }
        }
        _ => match defaults.first() {
            Some(d) => format!("{key} = {}", toml_value(d)),
            None => {
                let name = arg
                    .get_value_names()
                    .and_then(|n| n.first())
                    .map_or_else(|| key.to_uppercase(), |n| n.to_string());
                format!("# {key} = \"<{name}>\"")
            }
        },
    }
}

/// The example file for the flags of `serve`.
pub fn render(serve: &Command) -> String {
    let mut out = String::from(HEADER);
    for arg in serve.get_arguments() {
        let Some(key) = arg.get_long() else { continue };
        if matches!(key, "help" | "version" | "config") || arg.is_hide_set() {
            continue;
        }
        out.push('\n');
        let help = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let mut help = help.trim_end().to_string();
        if !help.ends_with(['.', ':']) {
            // clap drops the final period of a one-paragraph doc comment
            help.push('.');
        }
        comment(&help, 78, &mut out);
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|p| !p.is_hide_set())
            .map(|p| p.get_name().to_string())
            .collect();
        if !possible.is_empty() && !matches!(arg.get_action(), ArgAction::SetTrue) {
            out.push_str(&format!("# One of: {}.\n", possible.join(", ")));
        }
        let env = arg
            .get_env()
            .map(|e| format!(", env {}", e.to_string_lossy()))
            .unwrap_or_default();
        out.push_str(&format!("# flag --{key}{env}\n"));
        out.push_str(&key_line(arg, key));
        out.push('\n');
    }
    out
}
