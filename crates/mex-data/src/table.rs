//! Spreadsheet-like tables (xlsx/xls/ods through calamine, or CSV) with header discovery by
//! content and cell accessors whose errors name the file, row and column.

use crate::{Error, Result};
use calamine::{open_workbook_auto, Data, Reader};
use std::path::{Path, PathBuf};

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Empty.
    Empty,
    /// Integer.
    Int(i64),
    /// Floating-point number.
    Float(f64),
    /// Text.
    Str(String),
}

impl Cell {
    /// The cell as text (numbers formatted without a trailing `.0`).
    pub fn text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
            Cell::Float(f) => f.to_string(),
            Cell::Str(s) => s.trim().to_string(),
        }
    }

    /// Whether the cell is empty or blank text.
    pub fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Str(s) => s.trim().is_empty(),
            _ => false,
        }
    }

    /// The cell as an integer (text holding an integer counts; `12.0` counts).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            Cell::Float(f) if f.fract() == 0.0 && f.is_finite() => Some(*f as i64),
            Cell::Str(s) => {
                let t = s.trim();
                t.parse::<i64>()
                    .ok()
                    .or_else(|| t.parse::<f64>().ok().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            }
            _ => None,
        }
    }
}

/// A table read from a spreadsheet sheet or a CSV file.
#[derive(Debug, Clone)]
pub struct Table {
    /// The file it came from.
    pub path: PathBuf,
    /// Rows of cells (rows may differ in length).
    pub rows: Vec<Vec<Cell>>,
    /// 1-based spreadsheet row number of `rows[0]`.
    pub first_row: usize,
}

/// Normalises a header name for matching: lower case, no spaces, underscores or dots.
pub fn norm(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace() && *c != '_' && *c != '.').flat_map(char::to_lowercase).collect()
}

impl Table {
    /// Reads sheet `sheet` (0-based) of a spreadsheet, or a CSV file (`.csv`, `sheet` ignored).
    pub fn read(path: &Path, sheet: usize) -> Result<Table> {
        if !path.is_file() {
            return Err(Error::io(path, std::io::Error::new(std::io::ErrorKind::NotFound, "file not found")));
        }
        let is_csv = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if is_csv {
            return Self::read_csv(path);
        }
        let serr = |m: String| Error::Spreadsheet { path: path.to_path_buf(), message: m };
        let mut wb = open_workbook_auto(path).map_err(|e| serr(e.to_string()))?;
        let names = wb.sheet_names();
        let range = wb
            .worksheet_range_at(sheet)
            .ok_or_else(|| serr(format!("no sheet {sheet} (the workbook has {}: {names:?})", names.len())))?
            .map_err(|e| serr(e.to_string()))?;
        let (r0, c0) = range.start().unwrap_or((0, 0));
        let rows = range
            .rows()
            .map(|r| {
                let mut v: Vec<Cell> = vec![Cell::Empty; c0 as usize];
                v.extend(r.iter().map(|d| match d {
                    Data::Int(i) => Cell::Int(*i),
                    Data::Float(f) => Cell::Float(*f),
                    Data::String(s) => Cell::Str(s.clone()),
                    Data::Bool(b) => Cell::Str(b.to_string()),
                    Data::Empty => Cell::Empty,
                    other => Cell::Str(other.to_string()),
                }));
                v
            })
            .collect();
        Ok(Table { path: path.to_path_buf(), rows, first_row: r0 as usize + 1 })
    }

    fn read_csv(path: &Path) -> Result<Table> {
        mex_core::check_table_size(path).map_err(|m| Error::Csv {
            path: path.to_path_buf(),
            line: 0,
            message: m,
        })?;
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_path(path)
            .map_err(|e| crate::sample::csv_err(path, &e))?;
        let mut rows = Vec::new();
        for rec in r.records() {
            let rec = rec.map_err(|e| crate::sample::csv_err(path, &e))?;
            rows.push(
                rec.iter()
                    .map(|s| {
                        let s = s.trim_start_matches('\u{feff}');
                        if s.trim().is_empty() {
                            Cell::Empty
                        } else {
                            Cell::Str(s.to_string())
                        }
                    })
                    .collect(),
            );
        }
        Ok(Table { path: path.to_path_buf(), rows, first_row: 1 })
    }

    /// 1-based spreadsheet row number of `rows[i]`.
    pub fn row_number(&self, i: usize) -> usize {
        self.first_row + i
    }

    /// The first row that contains every name of `required` (each given as a list of accepted
    /// aliases), compared after [`norm`]. Blank header cells are named `unnamed: <index>` as
    /// pandas does. Errors with [`Error::NoHeader`] when no row qualifies, or with
    /// [`Error::MissingColumn`] naming the first missing column of the best candidate row.
    pub fn find_header(&self, required: &[&[&str]]) -> Result<Header> {
        let mut best: Option<(usize, usize)> = None;
        for (i, row) in self.rows.iter().enumerate().take(64) {
            let names: Vec<String> = row.iter().map(|c| norm(&c.text())).collect();
            let hits = required.iter().filter(|al| al.iter().any(|a| names.contains(&norm(a)))).count();
            if hits == required.len() {
                return Ok(Header::from_row(row, i, self.row_number(i)));
            }
            if hits >= 2 && best.is_none_or(|(_, h)| hits > h) {
                best = Some((i, hits));
            }
        }
        match best {
            Some((i, _)) => {
                let h = Header::from_row(&self.rows[i], i, self.row_number(i));
                for al in required {
                    h.col(self, al)?;
                }
                Err(Error::NoHeader {
                    path: self.path.clone(),
                    expected: required.iter().map(|a| a[0].to_string()).collect(),
                })
            }
            None => Err(Error::NoHeader {
                path: self.path.clone(),
                expected: required.iter().map(|a| a[0].to_string()).collect(),
            }),
        }
    }

    /// Positional header for header-less sheets: column `i` is named `names[i]`.
    pub fn positional_header(names: &[&str]) -> Header {
        Header {
            index: None,
            row_number: 0,
            names: names.iter().map(|n| norm(n)).collect(),
            display: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    /// The data rows after `header` (all rows for a positional header), skipping blank rows.
    pub fn data_rows<'a>(&'a self, header: &'a Header) -> impl Iterator<Item = Row<'a>> + 'a {
        let start = header.index.map_or(0, |i| i + 1);
        (start..self.rows.len())
            .filter(move |&i| !self.rows[i].iter().all(Cell::is_blank))
            .map(move |i| Row { table: self, header, index: i })
    }
}

/// A table's header: column names (normalised) and where the header row is.
#[derive(Debug, Clone)]
pub struct Header {
    /// Index into `Table::rows` (`None` for a positional header).
    pub index: Option<usize>,
    /// 1-based spreadsheet row of the header (0 for a positional header).
    pub row_number: usize,
    names: Vec<String>,
    display: Vec<String>,
}

impl Header {
    fn from_row(row: &[Cell], index: usize, row_number: usize) -> Header {
        let display: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| if c.is_blank() { format!("Unnamed: {i}") } else { c.text() })
            .collect();
        Header { index: Some(index), row_number, names: display.iter().map(|d| norm(d)).collect(), display }
    }

    /// Column index of the first alias found; [`Error::MissingColumn`] otherwise.
    pub fn col(&self, table: &Table, aliases: &[&str]) -> Result<usize> {
        self.find(aliases).ok_or_else(|| Error::MissingColumn {
            path: table.path.clone(),
            column: aliases.first().copied().unwrap_or("").to_string(),
            header_row: self.row_number,
        })
    }

    /// Column index of the first alias found.
    pub fn find(&self, aliases: &[&str]) -> Option<usize> {
        aliases.iter().find_map(|a| {
            let n = norm(a);
            self.names.iter().position(|c| *c == n)
        })
    }

    /// Display name of column `i`.
    pub fn name(&self, i: usize) -> String {
        self.display.get(i).cloned().unwrap_or_else(|| format!("column {}", i + 1))
    }
}

/// One data row with error-reporting accessors.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    table: &'a Table,
    header: &'a Header,
    index: usize,
}

impl<'a> Row<'a> {
    /// 1-based spreadsheet row number.
    pub fn number(&self) -> usize {
        self.table.row_number(self.index)
    }

    /// The table's file.
    pub fn path(&self) -> &'a Path {
        &self.table.path
    }

    /// The cell at column `i` (empty beyond the row's end).
    pub fn cell(&self, i: usize) -> &'a Cell {
        static EMPTY: Cell = Cell::Empty;
        self.table.rows[self.index].get(i).unwrap_or(&EMPTY)
    }

    /// A [`Error::BadCell`] for column `i`.
    pub fn bad(&self, i: usize, reason: impl Into<String>) -> Error {
        Error::BadCell {
            path: self.table.path.clone(),
            row: self.number(),
            column: self.header.name(i),
            value: self.cell(i).text(),
            reason: reason.into(),
        }
    }

    /// Text of column `i`; errors when blank.
    pub fn text(&self, i: usize) -> Result<String> {
        let c = self.cell(i);
        if c.is_blank() {
            return Err(self.bad(i, "empty cell"));
        }
        Ok(c.text())
    }

    /// Text of column `i`, empty when blank.
    pub fn text_or_empty(&self, i: usize) -> String {
        self.cell(i).text()
    }

    /// A non-negative integer; errors when blank or not a number.
    pub fn usize(&self, i: usize) -> Result<usize> {
        let c = self.cell(i);
        match c.as_i64() {
            Some(v) if v >= 0 => Ok(v as usize),
            _ if c.is_blank() => Err(self.bad(i, "empty cell, a frame number is required")),
            _ => Err(self.bad(i, "not a non-negative integer")),
        }
    }

    /// A non-negative integer, or `None` for a blank cell, `/`, `-`, `n/a` or a negative number
    /// (the datasets' ways of writing "not annotated"); other text is an error.
    pub fn opt_usize(&self, i: usize) -> Result<Option<usize>> {
        let c = self.cell(i);
        if c.is_blank() {
            return Ok(None);
        }
        if let Some(v) = c.as_i64() {
            return Ok((v >= 0).then_some(v as usize));
        }
        let t = c.text().to_ascii_lowercase();
        if ["/", "-", "n/a", "na", "none", "?"].contains(&t.as_str()) {
            return Ok(None);
        }
        Err(self.bad(i, "not a frame number or a missing-value marker ('/')"))
    }
}
