//! The study table: one row per recording, named columns and indicator columns.

use super::config::StudyConfig;
use crate::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One row of the table (one recording).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Line of the row in the CSV file (the header is line 1).
    pub line: usize,
    /// The recording as written in the table (empty: none).
    pub recording: Option<String>,
    /// Subject identifier.
    pub subject: String,
    /// Group label.
    pub group: String,
    /// Session label.
    pub session: Option<String>,
    /// Clinical score.
    pub score: Option<f64>,
    /// Age in years.
    pub age: Option<f64>,
    /// Sex.
    pub sex: Option<String>,
    /// Site.
    pub site: Option<String>,
    /// Indicator values of this recording (missing ones absent).
    pub values: BTreeMap<String, f64>,
}

/// The parsed table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The CSV file.
    pub path: PathBuf,
    /// Rows in file order.
    pub rows: Vec<Row>,
    /// Indicator columns of the CSV, in header order.
    pub indicator_columns: Vec<String>,
    /// Which optional named columns are present (`recording`, `session`, `score`, `age`, `sex`,
    /// `site`), by role.
    pub present: BTreeSet<&'static str>,
}

impl Table {
    /// The folder that relative recording paths are resolved against.
    pub fn base_dir(&self) -> &Path {
        self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
    }

    /// The resolved path of a row's recording.
    pub fn recording_path(&self, row: &Row) -> Option<PathBuf> {
        row.recording.as_ref().map(|r| {
            let p = Path::new(r);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                self.base_dir().join(p)
            }
        })
    }

    /// `path: line N, column `C`: reason` as an error.
    pub fn error_at(&self, line: usize, column: &str, reason: impl std::fmt::Display) -> Error {
        Error::Invalid(format!("{}: line {line}, column `{column}`: {reason}", self.path.display()))
    }
}

/// A cell of a numeric column: `None` for empty or `NA`; an error message for text or NaN / inf.
pub(crate) fn parse_number(cell: &str) -> std::result::Result<Option<f64>, String> {
    let t = cell.trim();
    if t.is_empty() || t == "NA" {
        return Ok(None);
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        Ok(v) => {
            Err(format!("{v} is not a finite number (leave the cell empty or write NA for a missing value)"))
        }
        Err(_) => Err(format!("`{t}` is not a number")),
    }
}

/// Reads the table of `cfg` (header row, comma-separated, UTF-8). Every column that is not one
/// of the named columns must be numeric: it is an indicator. Errors name the line and column.
pub fn read_table(cfg: &StudyConfig) -> Result<Table> {
    let path = cfg.table.clone();
    mex_core::check_table_size(&path).map_err(Error::Invalid)?;
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::Headers)
        .from_path(&path)
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| Error::Invalid(format!("{}: header: {e}", path.display())))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut table = Table {
        path: path.clone(),
        rows: Vec::new(),
        indicator_columns: Vec::new(),
        present: BTreeSet::new(),
    };
    for (i, h) in headers.iter().enumerate() {
        if h.is_empty() {
            return Err(table.error_at(1, &format!("#{}", i + 1), "empty column name in the header"));
        }
        if headers[..i].contains(h) {
            return Err(table.error_at(
                1,
                h,
                format!(
                    "duplicate column name (columns {} and {})",
                    headers[..i].iter().position(|x| x == h).map_or(0, |p| p + 1),
                    i + 1
                ),
            ));
        }
    }
    let mut role_of: Vec<Option<&'static str>> = vec![None; headers.len()];
    for (role, name) in cfg.columns.roles() {
        if let Some(i) = headers.iter().position(|h| h == name) {
            role_of[i] = Some(role);
            table.present.insert(role);
        } else if role == "subject" || role == "group" {
            return Err(table.error_at(
                1,
                name,
                format!("the required {role} column is missing (header: {})", headers.join(",")),
            ));
        }
    }
    for (i, h) in headers.iter().enumerate() {
        if role_of[i].is_none() {
            table.indicator_columns.push(h.clone());
        }
    }
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            Error::Invalid(format!("{}: line {line}: {e}", path.display()))
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        if rec.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let mut row = Row {
            line,
            recording: None,
            subject: String::new(),
            group: String::new(),
            session: None,
            score: None,
            age: None,
            sex: None,
            site: None,
            values: BTreeMap::new(),
        };
        for (i, cell) in rec.iter().enumerate() {
            let h = &headers[i];
            let text = || Some(cell.trim().to_string()).filter(|s| !s.is_empty());
            let num = || parse_number(cell).map_err(|m| table.error_at(line, h, m));
            match role_of[i] {
                Some("recording") => row.recording = text(),
                Some("subject") => row.subject = text().unwrap_or_default(),
                Some("group") => row.group = text().unwrap_or_default(),
                Some("session") => row.session = text(),
                Some("score") => row.score = num()?,
                Some("age") => row.age = num()?,
                Some("sex") => row.sex = text(),
                Some("site") => row.site = text(),
                _ => {
                    let v = parse_number(cell).map_err(|m| {
                        table.error_at(
                            line,
                            h,
                            format!("{m}; every column that is not a named one is a numeric indicator (rename named columns in the study file's [columns])"),
                        )
                    })?;
                    if let Some(v) = v {
                        row.values.insert(h.clone(), v);
                    }
                }
            }
        }
        if row.subject.is_empty() {
            return Err(table.error_at(line, &cfg.columns.subject, "empty subject"));
        }
        if row.group.is_empty() {
            return Err(table.error_at(line, &cfg.columns.group, "empty group"));
        }
        table.rows.push(row);
    }
    if table.rows.is_empty() {
        return Err(Error::Invalid(format!("{}: the table has no rows", path.display())));
    }
    Ok(table)
}

/// The positive and negative group labels, after checking the groups: the positive group exists;
/// the negative one is the configured one or the only other group; no subject is in two groups;
/// each compared group has at least two subjects. Rows of other groups (only possible with an
/// explicit `negative`) are dropped.
pub fn check_groups(table: &mut Table, cfg: &StudyConfig) -> Result<(String, String)> {
    let gcol = cfg.columns.group.as_str();
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    for r in &table.rows {
        groups.entry(r.group.clone()).or_insert(r.line);
    }
    let list = groups.keys().cloned().collect::<Vec<_>>().join(", ");
    if !groups.contains_key(&cfg.positive) {
        return Err(table.error_at(
            1,
            gcol,
            format!("the positive group `{}` does not occur (groups: {list})", cfg.positive),
        ));
    }
    let negative = match &cfg.negative {
        Some(n) => {
            if !groups.contains_key(n) {
                return Err(table.error_at(
                    1,
                    gcol,
                    format!("the negative group `{n}` does not occur (groups: {list})"),
                ));
            }
            n.clone()
        }
        None => {
            let others: Vec<&String> = groups.keys().filter(|g| **g != cfg.positive).collect();
            match others.as_slice() {
                [one] => (*one).clone(),
                [] => return Err(table.error_at(1, gcol, format!("only one group (`{}`): a study compares two", cfg.positive))),
                _ => {
                    return Err(table.error_at(
                        1,
                        gcol,
                        format!("more than two groups ({list}): name the reference group with `negative` in a study file"),
                    ))
                }
            }
        }
    };
    let pos = cfg.positive.clone();
    table.rows.retain(|r| r.group == pos || r.group == negative);
    let mut subject_group: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
    for r in &table.rows {
        match subject_group.get(r.subject.as_str()) {
            Some(&(g, first)) if g != r.group => {
                return Err(table.error_at(
                    r.line,
                    gcol,
                    format!(
                        "subject `{}` is in group `{}` here but in `{g}` on line {first}",
                        r.subject, r.group
                    ),
                ))
            }
            Some(_) => {}
            None => {
                subject_group.insert(&r.subject, (&r.group, r.line));
            }
        }
    }
    for g in [&pos, &negative] {
        let subs: Vec<(&str, usize)> = subject_group
            .iter()
            .filter(|(_, (gg, _))| *gg == g.as_str())
            .map(|(s, (_, l))| (*s, *l))
            .collect();
        if subs.len() < 2 {
            let line = subs.first().map_or(1, |s| s.1);
            return Err(table.error_at(
                line,
                gcol,
                format!("group `{g}` has {} subject(s); a comparison needs at least 2 per group", subs.len()),
            ));
        }
    }
    Ok((pos, negative))
}
