//! Reading a manifest: the file, `--set` overrides edited into its TOML, and the errors that name
//! the file, line and key.

use std::path::Path;

use super::{Manifest, ManifestError, RawManifest, locate, validate};

/// Reads and validates the manifest at `path`.
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    load_with(path, &[])
}

/// Reads the manifest at `path`, applies command-line overrides such as `train.epochs=4` (the
/// value is TOML: `4`, `0.5`, `true`, `["unet", "fcn"]`; anything else is taken as a string),
/// and validates the result.
pub fn load_with(path: &Path, overrides: &[String]) -> Result<Manifest, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read { path: path.to_path_buf(), source })?;
    if overrides.is_empty() {
        return parse(path, &text);
    }
    // A syntax error in the file itself is reported against the file.
    let mut table: toml::Table = match toml::from_str(&text) {
        Ok(table) => table,
        Err(_) => return parse(path, &text),
    };
    let mut keys = Vec::new();
    for setting in overrides {
        keys.push(apply_override(&mut table, setting)?);
    }
    let effective =
        toml::to_string(&table).map_err(|e| ManifestError::Override { setting: overrides.join(" "), message: e.to_string() })?;
    let raw: RawManifest = toml::from_str(&effective).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let key = locate::assignment_at(&effective, offset).map(|a| a.path);
        let blamed = key.as_ref().and_then(|k| keys.iter().position(|o| k == o || k.starts_with(&format!("{o}."))));
        match blamed {
            Some(i) => ManifestError::Override { setting: overrides[i].clone(), message: e.message().trim().to_string() },
            None => {
                let (line, column) = locate::line_column(&effective, offset);
                ManifestError::Syntax { path: path.to_path_buf(), line, column, key, message: e.message().trim().to_string() }
            }
        }
    })?;
    let mut manifest = validate(path, &text, raw)?;
    // The report's copy of the manifest must be what actually ran.
    let header: String = overrides.iter().map(|o| format!("#   --set {o}\n")).collect();
    manifest.text = format!("# {} with these command-line overrides applied:\n{header}\n{effective}", path.display());
    Ok(manifest)
}

/// Applies one `key.path=value` override to `table`; returns the key path.
fn apply_override(table: &mut toml::Table, setting: &str) -> Result<String, ManifestError> {
    let fail = |message: String| ManifestError::Override { setting: setting.to_string(), message };
    let (key, value) = setting.split_once('=').ok_or_else(|| fail("expected KEY=VALUE, for example train.epochs=4".into()))?;
    let key = key.trim();
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(fail(format!("`{key}` is not a key path such as train.epochs")));
    }
    let value = match toml::from_str::<toml::Table>(&format!("v = {}", value.trim())) {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(value.trim().to_string())),
        Err(_) => toml::Value::String(value.trim().to_string()),
    };
    let (last, parents) = parts.split_last().ok_or_else(|| fail("empty key".into()))?;
    let mut node = table;
    for (depth, part) in parents.iter().enumerate() {
        let entry = node.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(fail(format!("`{}` is not a section, so `{key}` cannot be set", parts[..=depth].join(".")))),
        };
    }
    node.insert(last.to_string(), value);
    Ok(key.to_string())
}

/// Parses and validates manifest `text`; `path` names it in errors and anchors relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
    let raw: RawManifest = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let (line, column) = locate::line_column(text, offset);
        let key = e.span().and_then(|_| locate::assignment_at(text, offset)).map(|a| a.path);
        ManifestError::Syntax { path: path.to_path_buf(), line, column, key, message: e.message().trim().to_string() }
    })?;
    validate(path, text, raw)
}
