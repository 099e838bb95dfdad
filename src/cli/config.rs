//! `--config FILE`: every `minichain node` flag can also come from a TOML file, whose keys
//! are the flags' long names (`threads = 2`, `bootstrap = ["10.0.0.1:9000"]`, `mine = true`).
//!
//! Precedence, highest first: command line, environment (`MINICHAIN_<FLAG>`), file,
//! built-in default. The file is merged by turning each key the command line and the
//! environment leave unset into the flag itself, so clap checks every value the same way
//! whatever its source. Unknown keys are an error, never silently ignored.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::CommandFactory;

use super::Cli;

/// Returns `args` with the values of the node's config file (if any) added.
///
/// # Errors
/// If the file cannot be read, is not TOML, or has an unknown key or a value of the
/// wrong shape.
pub fn merge_config_file(
    args: Vec<OsString>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<OsString>> {
    let Some(node_at) = args.iter().position(|a| a == "node") else { return Ok(args) };
    let after: Vec<String> =
        args[node_at + 1..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let from_cli = after
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| after.get(i + 1).cloned())
        .or_else(|| after.iter().find_map(|a| a.strip_prefix("--config=").map(str::to_owned)));
    let Some(path) = from_cli.or_else(|| env("MINICHAIN_CONFIG").filter(|v| !v.is_empty())) else {
        return Ok(args);
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read config file {path}"))?;
    let table: toml::Table =
        text.parse().with_context(|| format!("config file {path} is not valid TOML"))?;
    let command = Cli::command();
    let node = command.find_subcommand("node").context("node subcommand")?;
    let mut extra = Vec::new();
    for (raw_key, value) in &table {
        if raw_key.contains('_') {
            bail!(
                "unknown key '{raw_key}' in config file {path}: keys are the flags' long names, \
                 with hyphens ('{}')",
                raw_key.replace('_', "-")
            );
        }
        let key = raw_key.clone();
        let Some(arg) = node.get_arguments().find(|a| a.get_long() == Some(key.as_str())) else {
            let known: Vec<&str> = node
                .get_arguments()
                .filter_map(|a| a.get_long())
                .filter(|l| *l != "config")
                .collect();
            bail!(
                "unknown key '{raw_key}' in config file {path} (known keys: {})",
                known.join(", ")
            );
        };
        if key == "config" {
            bail!("config file {path} cannot name another config file");
        }
        let flag = format!("--{key}");
        let on_cli = after.iter().any(|a| *a == flag || a.starts_with(&format!("{flag}=")));
        let in_env =
            arg.get_env().and_then(|e| env(&e.to_string_lossy())).is_some_and(|v| !v.is_empty());
        if on_cli || in_env {
            continue;
        }
        if !arg.get_action().takes_values() && !value.is_bool() {
            let given = match value {
                toml::Value::String(s) => format!("\"{s}\""),
                toml::Value::Integer(i) => i.to_string(),
                other => format!("a {}", other.type_str()),
            };
            bail!("config file {path}, key '{raw_key}': use true or false, not {given}");
        }
        let flags = to_flags(&flag, value, Path::new(&path))?;
        check_value(node, raw_key, &path, &flags)?;
        extra.extend(flags);
    }
    let mut merged = args;
    merged.extend(extra.into_iter().map(OsString::from));
    Ok(merged)
}

/// Parses one key's flags alone, each as `--flag=value` (so that `-1` is a value, not a
/// flag), so that a bad value names the file and the key rather than only the flag.
fn check_value(node: &clap::Command, key: &str, path: &str, flags: &[String]) -> Result<()> {
    let mut argv = vec!["node".to_owned()];
    let mut it = flags.iter().peekable();
    while let Some(flag) = it.next() {
        match it.peek() {
            Some(v) if !v.starts_with("--") || v.len() == 2 => {
                argv.push(format!("{flag}={v}"));
                it.next();
            }
            _ => argv.push(flag.clone()),
        }
    }
    if let Err(e) = node.clone().no_binary_name(true).try_get_matches_from(&argv[1..]) {
        let why = e.to_string();
        let why = why.lines().next().unwrap_or_default().trim_start_matches("error: ");
        bail!("config file {path}, key '{key}': {why}");
    }
    Ok(())
}

fn to_flags(flag: &str, value: &toml::Value, path: &Path) -> Result<Vec<String>> {
    let scalar = |v: &toml::Value| -> Result<String> {
        Ok(match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => bail!("config file {}: {flag} cannot be {}", path.display(), other.type_str()),
        })
    };
    Ok(match value {
        toml::Value::Boolean(true) => vec![flag.to_owned()],
        toml::Value::Boolean(false) => vec![],
        toml::Value::Array(items) => items
            .iter()
            .map(|v| Ok(vec![flag.to_owned(), scalar(v)?]))
            .collect::<Result<Vec<_>>>()?
            .concat(),
        v => vec![flag.to_owned(), scalar(v)?],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn write(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("minichain.toml");
        std::fs::write(&path, text).unwrap();
        let p = path.display().to_string();
        (dir, p)
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn file_values_fill_what_the_command_line_and_environment_leave_unset() {
        let (_d, path) = write(
            "threads = 3\nmine = true\ndebug = false\nbootstrap = [\"10.0.0.1:9000\", \"10.0.0.2:9000\"]\nrpc = \"127.0.0.1:1\"\n",
        );
        let merged = merge_config_file(
            args(&["minichain", "node", "--config", &path, "--threads", "2"]),
            |k| (k == "MINICHAIN_RPC").then(|| "127.0.0.1:2".to_owned()),
        )
        .unwrap();
        let s: Vec<String> = merged.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let tail = &s[5..];
        assert!(!tail.contains(&"--threads".to_owned()), "command line wins: {tail:?}");
        assert!(!tail.contains(&"--rpc".to_owned()), "environment wins: {tail:?}");
        assert!(!tail.contains(&"--debug".to_owned()));
        assert_eq!(tail.iter().filter(|a| *a == "--bootstrap").count(), 2);
        assert!(tail.contains(&"--mine".to_owned()));
        let cli = <Cli as clap::Parser>::try_parse_from(&merged).unwrap();
        let super::super::Command::Node(node) = cli.command else { panic!("not a node command") };
        assert_eq!((node.threads, node.mine, node.bootstrap.len()), (2, true, 2));
    }

    #[test]
    fn unknown_keys_bad_toml_and_bad_shapes_are_clear_errors() {
        let (_d, path) = write("thread = 2\n");
        let err =
            merge_config_file(args(&["minichain", "node", "--config", &path]), no_env).unwrap_err();
        assert!(err.to_string().contains("unknown key 'thread'"), "{err}");
        let (_d, path) = write("threads = [\n");
        let err =
            merge_config_file(args(&["minichain", "node", "--config", &path]), no_env).unwrap_err();
        assert!(err.to_string().contains("not valid TOML"), "{err}");
        let (_d, path) = write("rpc = { a = 1 }\n");
        let err =
            merge_config_file(args(&["minichain", "node", "--config", &path]), no_env).unwrap_err();
        assert!(err.to_string().contains("cannot be table"), "{err}");
        let err = merge_config_file(
            args(&["minichain", "node", "--config", "/nonexistent.toml"]),
            no_env,
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot read config file"), "{err}");
        // A bad value is caught by the same parser as on the command line, and named by
        // file and key (once clap's "unexpected argument '-1' found" named neither).
        for (text, key, why) in [
            ("threads = 999\n", "threads", "999"),
            ("threads = -1\n", "threads", "-1"),
            ("mine = \"yes\"\n", "mine", "use true or false, not \"yes\""),
            ("ban-secs = -5\n", "ban-secs", "-5"),
        ] {
            let (_d, path) = write(text);
            let err = merge_config_file(args(&["minichain", "node", "--config", &path]), no_env)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&path) && err.contains(&format!("key '{key}'")), "{err}");
            assert!(err.contains(why) && !err.contains("unexpected argument"), "{err}");
        }
        // The flags' names have hyphens: `data_dir` was once taken silently.
        let (_d, path) = write("data_dir = \"/tmp/x\"\n");
        let err = merge_config_file(args(&["minichain", "node", "--config", &path]), no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key 'data_dir'") && err.contains("'data-dir'"), "{err}");
    }

    #[test]
    fn the_environment_can_name_the_file_and_other_commands_are_untouched() {
        let (_d, path) = write("threads = 4\n");
        let merged = merge_config_file(args(&["minichain", "node"]), |k| {
            (k == "MINICHAIN_CONFIG").then(|| path.clone())
        })
        .unwrap();
        assert!(merged.contains(&OsString::from("--threads")));
        let untouched = args(&["minichain", "status"]);
        assert_eq!(merge_config_file(untouched.clone(), no_env).unwrap(), untouched);
    }
}
