//! `${VAR}` and `${VAR:-default}` in string values, so secrets come from the
//! environment. Done on the parsed tree, not the text, so a value with quotes or
//! colons in it cannot change the YAML's structure. `$$` is a literal `$`.

use serde_yaml::Value;

use super::Problem;

/// Replaces variables in every string value below `value`. Returns one problem per
/// missing variable or malformed reference; pushes every substituted value onto
/// `secrets` so error messages can redact them.
pub(super) fn interpolate(
    value: &mut Value,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Vec<String>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    walk(value, String::new(), env, secrets, &mut problems);
    problems
}

fn walk(
    value: &mut Value,
    path: String,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Vec<String>,
    problems: &mut Vec<Problem>,
) {
    match value {
        Value::String(s) => {
            if s.contains('$') {
                match expand(s, env, secrets) {
                    Ok(new) => *s = new,
                    Err(message) => problems.push(Problem {
                        path,
                        line: None,
                        message,
                    }),
                }
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                walk(v, format!("{path}[{i}]"), env, secrets, problems);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = match k {
                    Value::String(s) => s.clone(),
                    other => serde_yaml::to_string(other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                let child = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                walk(v, child, env, secrets, problems);
            }
        }
        Value::Tagged(t) => walk(&mut t.value, path, env, secrets, problems),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Expands one string. Errors name the variable, never its value.
pub(super) fn expand(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                "unclosed `${`: write `${NAME}` (or `$$` for a literal `$`)".to_string()
            })?;
            let inner = &body[..end];
            let (name, default) = match inner.find(":-") {
                Some(j) => (&inner[..j], Some(&inner[j + 2..])),
                None => (inner, None),
            };
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || name.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(format!(
                    "`${{{inner}}}` is not a valid variable reference; names are letters, digits and `_`"
                ));
            }
            match env(name) {
                Some(v) => {
                    if v.len() >= 4 {
                        secrets.push(v.clone());
                    }
                    out.push_str(&v);
                }
                None => match default {
                    Some(d) => out.push_str(d),
                    None => {
                        return Err(format!(
                            "environment variable `{name}` is not set and has no default (write `${{{name}:-default}}` to give one)"
                        ))
                    }
                },
            }
            rest = &body[end + 1..];
        } else {
            // A lone `$` not followed by `{` is kept as it is (e.g. `$JS.API` subjects).
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}
