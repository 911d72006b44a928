//! The CSV reader: [`CsvOptions`], what it decided ([`CsvReport`]) and [`read_csv`].

use super::data_error;
use candle_core::{Device, Result, Tensor};
use std::fmt;
use std::path::Path;

/// Whether the first row of a CSV table holds column names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Header {
    /// Decide from the first row (see [`CsvOptions::header`] for the exact rule).
    #[default]
    Auto,
    /// The first row is a header, whatever its width: skipped, and returned in
    /// [`CsvReport::header`].
    Yes,
    /// There is no header: the first row is data.
    No,
}

/// What separates the fields of a CSV table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Delimiter {
    /// Decide from the first non-blank line (see [`CsvOptions::delimiter`]).
    #[default]
    Auto,
    /// `,`: pandas' `to_csv` and most CSV writers.
    Comma,
    /// A tab: `to_csv(sep='\t')`, `np.savetxt(delimiter='\t')`, spreadsheets' "Text" export.
    Tab,
    /// `;`: spreadsheets (Excel, LibreOffice) in locales whose decimal separator is a comma.
    Semicolon,
    /// Runs of spaces and tabs: NumPy's `np.savetxt` default (one space), and tables aligned
    /// by hand. Fields cannot be quoted in this mode.
    Whitespace,
}

impl Delimiter {
    /// The byte the `csv` crate splits on, for the modes it parses.
    fn byte(self) -> Option<u8> {
        match self {
            Delimiter::Comma => Some(b','),
            Delimiter::Tab => Some(b'\t'),
            Delimiter::Semicolon => Some(b';'),
            Delimiter::Auto | Delimiter::Whitespace => None,
        }
    }

    /// Whether `1,5` reads as 1.5: in files whose fields are not separated by commas, which
    /// spreadsheets write in locales with a decimal comma.
    fn allows_decimal_comma(self) -> bool {
        matches!(self, Delimiter::Semicolon | Delimiter::Tab)
    }
}

impl fmt::Display for Delimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Delimiter::Auto => "detected",
            Delimiter::Comma => "comma",
            Delimiter::Tab => "tab",
            Delimiter::Semicolon => "semicolon",
            Delimiter::Whitespace => "whitespace",
        })
    }
}

/// Whether the first column of a CSV table is a row index to drop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IndexColumn {
    /// Drop the first column when the table has a header whose first field is empty: pandas'
    /// `DataFrame.to_csv(path)` (with its default `index=True`) writes an unnamed index that
    /// way, as does R's `write.csv`.
    #[default]
    Auto,
    /// Drop the first column (a named index, or an index without a header).
    Yes,
    /// Keep every column.
    No,
}

/// How to read a numeric CSV table; [`CsvOptions::read`] reads one.
///
/// A builder: every option starts at `Auto`, and each `Auto` decision is returned in the
/// [`CsvReport`], so that a caller can check it or pass the option explicitly.
///
/// ```
/// use imle_data::{CsvOptions, Delimiter, Header, IndexColumn};
/// let path = std::env::temp_dir().join(format!("imle-csv-options-{}.csv", std::process::id()));
/// // `pandas.DataFrame(array).to_csv(path)`: the column names 0, 1 and an unnamed index.
/// std::fs::write(&path, ",0,1\n0,0.5,1.5\n1,2.5,3.5\n")?;
/// let (t, report) = CsvOptions::new().read(&path)?;
/// assert_eq!(t.to_vec2::<f32>()?, [[0.5, 1.5], [2.5, 3.5]]);
/// assert!(report.header.is_some() && report.index_column_dropped);
/// // The same file with nothing detected: the header row is not numeric.
/// let strict = CsvOptions::new()
///     .header(Header::No)
///     .delimiter(Delimiter::Comma)
///     .index_column(IndexColumn::No);
/// assert!(strict.read(&path).unwrap_err().to_string().contains("line 1, column 1"));
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CsvOptions {
    header: Header,
    delimiter: Delimiter,
    index_column: IndexColumn,
}

/// What [`CsvOptions::read`] found and decided, alongside the table it returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvReport {
    /// The delimiter used: the one given, or the one detected (never [`Delimiter::Auto`]).
    pub delimiter: Delimiter,
    /// The header's fields (trimmed, unquoted, the index column's included) when the first
    /// row was taken as a header; `None` when it was read as data.
    pub header: Option<Vec<String>>,
    /// Whether the first column was dropped as a row index.
    pub index_column_dropped: bool,
    /// Whether the file started with a UTF-8 byte-order mark (Excel's "CSV UTF-8" writes one),
    /// which was skipped.
    pub bom_stripped: bool,
    /// Whether some cell used a decimal comma (`1,5` for 1.5; only with semicolons or tabs).
    pub decimal_comma: bool,
    /// The number of data rows read (the tensor's first dimension).
    pub rows: usize,
    /// The number of columns kept (the tensor's second dimension).
    pub cols: usize,
}

impl fmt::Display for CsvReport {
    /// One line, e.g. `100 rows × 40 columns, comma-delimited, header skipped, index column
    /// dropped`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} rows × {} columns, {}-delimited, ",
            self.rows, self.cols, self.delimiter
        )?;
        f.write_str(match self.header {
            Some(_) => "header skipped",
            None => "no header",
        })?;
        if self.index_column_dropped {
            f.write_str(", index column dropped")?;
        }
        if self.bom_stripped {
            f.write_str(", byte-order mark skipped")?;
        }
        if self.decimal_comma {
            f.write_str(", decimal commas")?;
        }
        Ok(())
    }
}

/// One row of the file: its 1-based line number and its fields, trimmed and unquoted.
struct Row {
    line: usize,
    fields: Vec<String>,
}

/// A number in a table cell: what Rust's `f32::from_str` reads (`1`, `-2.5`, `1e-3`, `nan`,
/// `inf`; NumPy's `np.savetxt` and pandas write these), or, where `decimal_comma` allows it,
/// one comma for the decimal point (`1,5`). Returns the value and whether the comma was used.
fn parse_number(field: &str, decimal_comma: bool) -> Option<(f32, bool)> {
    if let Ok(v) = field.parse::<f32>() {
        return Some((v, false));
    }
    if decimal_comma && !field.contains('.') && field.matches(',').count() == 1 {
        return field.replacen(',', ".", 1).parse().ok().map(|v| (v, true));
    }
    None
}

/// Picks the delimiter from the first non-blank line, counting only characters outside
/// double quotes: a tab wins, then a semicolon (so that `1,5;2,5` is two decimal-comma
/// numbers), then a comma, then spaces between fields; a line with none of them is one
/// column, read as comma-separated.
fn detect_delimiter(text: &[u8]) -> Delimiter {
    let line = text
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty())
        .unwrap_or(&[]);
    let (mut tabs, mut semicolons, mut commas, mut spaces) = (0, 0, 0, 0);
    let mut quoted = false;
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            _ if quoted => {}
            b'\t' => tabs += 1,
            b';' => semicolons += 1,
            b',' => commas += 1,
            b' ' => spaces += 1,
            _ => {}
        }
    }
    if tabs > 0 {
        Delimiter::Tab
    } else if semicolons > 0 {
        Delimiter::Semicolon
    } else if commas > 0 || spaces == 0 {
        Delimiter::Comma
    } else {
        Delimiter::Whitespace
    }
}

/// The rows of `text` split on `delimiter`, blank lines left out: the `csv` crate for comma,
/// tab and semicolon (quoting, CRLF), runs of spaces and tabs otherwise.
fn split_rows(path: &Path, text: &[u8], delimiter: Delimiter) -> Result<Vec<Row>> {
    let blank = |fields: &[String]| fields.iter().all(|f| f.is_empty());
    let mut rows = Vec::new();
    match delimiter.byte() {
        None => {
            for (i, line) in text.split(|&b| b == b'\n').enumerate() {
                let line = String::from_utf8_lossy(line);
                let fields: Vec<String> = line.split_whitespace().map(String::from).collect();
                if !fields.is_empty() {
                    rows.push(Row {
                        line: i + 1,
                        fields,
                    });
                }
            }
        }
        Some(byte) => {
            let mut reader = ::csv::ReaderBuilder::new()
                .has_headers(false)
                .delimiter(byte)
                // Ragged rows are checked here, with an error that names the line and the
                // delimiter, rather than by the csv crate.
                .flexible(true)
                .trim(::csv::Trim::All)
                .from_reader(text);
            // The csv crate's line numbers leave out blank lines, so lines are counted here
            // from each record's byte offset: the newlines before its first character.
            let (mut counted_to, mut newlines) = (0usize, 0usize);
            for record in reader.byte_records() {
                let record = record.map_err(|e| data_error(path, e))?;
                let mut start = record.position().map_or(0, |p| p.byte() as usize);
                while start < text.len() && matches!(text[start], b'\r' | b'\n') {
                    start += 1;
                }
                let start = start.max(counted_to);
                newlines += text[counted_to..start]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                counted_to = start;
                let line = newlines + 1;
                let fields: Vec<String> = record
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect();
                // A line of spaces is one empty field: blank, like an empty line.
                if !(fields.len() == 1 && blank(&fields)) {
                    rows.push(Row { line, fields });
                }
            }
        }
    }
    Ok(rows)
}

impl CsvOptions {
    /// Every option `Auto`: see [`CsvOptions::header`], [`CsvOptions::delimiter`] and
    /// [`CsvOptions::index_column`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the first row is a header. [`Header::Auto`] (the default) takes the first row
    /// as a header when
    ///
    /// * one of its fields is neither empty nor a number (a column name), or
    /// * its first field is empty (the name of pandas' unnamed index column; an empty field
    ///   elsewhere is a missing value, an error in a data row), or
    /// * it is exactly `0,1,…,n−1` with `n ≥ 2` columns, as integers: the header pandas'
    ///   `DataFrame(array).to_csv(path, index=False)` writes for unnamed columns. A data file
    ///   whose first row happens to be `0,1,…,n−1` needs [`Header::No`].
    ///
    /// A one-column table whose first row is `0` is an error in `Auto` (pandas writes that
    /// header for an unnamed `Series`, and a data column may start at 0): pass `Yes` or `No`.
    pub fn header(mut self, header: Header) -> Self {
        self.header = header;
        self
    }

    /// The delimiter. [`Delimiter::Auto`] (the default) looks at the first non-blank line
    /// outside double quotes: a tab means [`Delimiter::Tab`], else a semicolon
    /// [`Delimiter::Semicolon`], else a comma [`Delimiter::Comma`], else spaces between
    /// fields [`Delimiter::Whitespace`] (`np.savetxt`); a single column reads as comma-separated.
    /// With semicolons or tabs a cell may use a decimal comma (`1,5`).
    pub fn delimiter(mut self, delimiter: Delimiter) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Whether the first column is a row index to drop; [`IndexColumn::Auto`] (the default)
    /// drops it when the header's first field is empty (pandas' default `to_csv(path)`).
    pub fn index_column(mut self, index_column: IndexColumn) -> Self {
        self.index_column = index_column;
        self
    }

    /// Reads a numeric table as an f32 tensor `[rows, cols]` on the CPU, with a report of
    /// what was detected.
    ///
    /// A UTF-8 byte-order mark at the start is skipped; fields are trimmed, and may be quoted
    /// (`"1.5"`) except in whitespace mode; blank lines are skipped; `\n` and `\r\n` line ends
    /// both work, with or without one at the end of the file.
    ///
    /// # Errors
    ///
    /// Each names the file, and the line (1-based, counting the header and blank lines) and
    /// the column (1-based, counting an index column) where there is one, with the option that
    /// changes the outcome where one would: a missing or unreadable file, an empty file, a
    /// file with a header and no data, a UTF-16 file, a cell that is empty or not a number,
    /// a row whose length differs from the first data row's (or, in [`Header::Auto`], a
    /// detected header whose length differs from the data's), an ambiguous one-column `0` header in [`Header::Auto`].
    ///
    /// ```
    /// use imle_data::{CsvOptions, Delimiter, Header};
    /// let path = std::env::temp_dir().join(format!("imle-csv-read-{}.txt", std::process::id()));
    /// // `np.savetxt(path, array)`: space-delimited, no header.
    /// std::fs::write(&path, "1.000000000000000000e+00 2.500000000000000000e+00\n\
    ///                        -3.000000000000000000e+00 4.000000000000000000e+00\n")?;
    /// let (t, report) = CsvOptions::new().read(&path)?;
    /// assert_eq!(t.to_vec2::<f32>()?, [[1.0, 2.5], [-3.0, 4.0]]);
    /// assert_eq!((report.delimiter, report.header.is_none()), (Delimiter::Whitespace, true));
    /// // Read as comma-separated, each line is one cell that is not a number; the error says why.
    /// let err = CsvOptions::new().header(Header::No).delimiter(Delimiter::Comma).read(&path);
    /// assert!(err.unwrap_err().to_string().contains("pass Delimiter::Whitespace"));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(&self, path: impl AsRef<Path>) -> Result<(Tensor, CsvReport)> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| data_error(path, e))?;
        if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
            return Err(data_error(
                path,
                "UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8 \
                 (Excel: \"CSV UTF-8\")",
            ));
        }
        let (text, bom_stripped) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
            Some(rest) => (rest, true),
            None => (&bytes[..], false),
        };
        let (delimiter, delimiter_how) = match self.delimiter {
            Delimiter::Auto => (detect_delimiter(text), "detected"),
            given => (given, "given"),
        };
        let delimiter_note = format!("the delimiter is {delimiter} ({delimiter_how})");
        let decimal_comma = delimiter.allows_decimal_comma();
        let mut rows = split_rows(path, text, delimiter)?.into_iter();
        let Some(first) = rows.next() else {
            return Err(data_error(path, "the file is empty (no rows)"));
        };
        // A name: a field that is not empty and not a number. An empty field elsewhere than
        // first is a missing value in a data row, which must be an error, not a header.
        let name = |f: &String| !f.is_empty() && parse_number(f, decimal_comma).is_none();
        let has_header = match self.header {
            Header::Yes => true,
            Header::No => false,
            Header::Auto if first.fields.iter().any(name) || first.fields[0].is_empty() => true,
            Header::Auto if first.fields.len() == 1 && first.fields[0] == "0" => {
                return Err(data_error(
                    path,
                    format!(
                        "line {}: a one-column table starting with 0 may have pandas' header \
                         (an unnamed Series) or start with the value 0: pass Header::Yes or \
                         Header::No",
                        first.line
                    ),
                ));
            }
            Header::Auto => first
                .fields
                .iter()
                .enumerate()
                .all(|(i, f)| *f == i.to_string()),
        };
        let (header, rows): (Option<Row>, Vec<Row>) = if has_header {
            (Some(first), rows.collect())
        } else {
            (None, std::iter::once(first).chain(rows).collect())
        };
        let header_hint = match (self.header, &header) {
            (Header::Auto, Some(h)) => format!(
                "; line {} was taken as a header: pass Header::No if it is data",
                h.line
            ),
            _ => String::new(),
        };
        let Some(width) = rows.first().map(|r| r.fields.len()) else {
            let h = header.map_or(0, |h| h.line);
            return Err(data_error(
                path,
                format!("line {h} is a header and no data rows follow{header_hint}"),
            ));
        };
        // A detected header must match the data's width (else the detection is suspect); a
        // header the caller asked for is skipped whatever its width, e.g. np.savetxt's
        // `# a b c` comment line.
        if let Some(h) = &header
            && self.header == Header::Auto
            && h.fields.len() != width
        {
            return Err(data_error(
                path,
                format!(
                    "the header (line {}) has {} fields but the first data row (line {}) has \
                     {width}; {delimiter_note}{header_hint}, Header::Yes to skip it anyway",
                    h.line,
                    h.fields.len(),
                    rows[0].line
                ),
            ));
        }
        let drop_index = match self.index_column {
            IndexColumn::Yes => true,
            IndexColumn::No => false,
            IndexColumn::Auto => header.as_ref().is_some_and(|h| h.fields[0].is_empty()),
        };
        let skip = usize::from(drop_index);
        let cols = width - skip;
        if cols == 0 {
            return Err(data_error(
                path,
                "no columns are left once the index column is dropped: pass IndexColumn::No",
            ));
        }
        let first_line = rows[0].line;
        let mut values = Vec::with_capacity(rows.len() * cols);
        let mut used_decimal_comma = false;
        for (r, row) in rows.iter().enumerate() {
            if row.fields.len() != width {
                return Err(data_error(
                    path,
                    format!(
                        "line {} has {} fields but the first data row (line {}) has {width}; \
                         {delimiter_note}",
                        row.line,
                        row.fields.len(),
                        first_line,
                    ),
                ));
            }
            for (c, field) in row.fields.iter().enumerate().skip(skip) {
                match parse_number(field, decimal_comma) {
                    Some((v, comma)) => {
                        values.push(v);
                        used_decimal_comma |= comma;
                    }
                    None => {
                        let what = if field.is_empty() {
                            " is empty (pandas writes missing values, NaN, as empty cells)"
                                .to_string()
                        } else {
                            format!(": {field:?} is not a number")
                        };
                        let hint = cell_hint(field, delimiter, &delimiter_note);
                        let hint = if r == 0 && header.is_none() && self.header == Header::No {
                            format!("{hint}; if line {} is a header, pass Header::Yes", row.line)
                        } else {
                            hint
                        };
                        return Err(data_error(
                            path,
                            format!("line {}, column {}{what}{hint}", row.line, c + 1),
                        ));
                    }
                }
            }
        }
        let report = CsvReport {
            delimiter,
            header: header.map(|h| h.fields),
            index_column_dropped: drop_index,
            bom_stripped,
            decimal_comma: used_decimal_comma,
            rows: rows.len(),
            cols,
        };
        let tensor = Tensor::from_vec(values, (report.rows, cols), &Device::Cpu)?;
        Ok((tensor, report))
    }
}

/// A hint for a cell that is not a number but holds another mode's delimiter: the file is
/// probably split on the wrong character.
fn cell_hint(field: &str, delimiter: Delimiter, note: &str) -> String {
    let commas = field.matches(',').count();
    let other = if field.contains(';') {
        Delimiter::Semicolon
    } else if field.contains('\t') {
        Delimiter::Tab
    } else if commas > 1 || (commas == 1 && !delimiter.allows_decimal_comma()) {
        Delimiter::Comma
    } else if field.contains(' ') {
        Delimiter::Whitespace
    } else {
        return String::new();
    };
    if other == delimiter {
        return String::new();
    }
    format!("; {note}: pass Delimiter::{other:?} if the file is {other}-delimited")
}

/// Reads a numeric CSV table as an f32 tensor `[rows, cols]` on the CPU, every option
/// [`Auto`](Header::Auto): `CsvOptions::new().read(path)` without the report.
///
/// What `Auto` does, in short (the rules are on [`CsvOptions::header`],
/// [`CsvOptions::delimiter`] and [`CsvOptions::index_column`]): a UTF-8 byte-order mark is
/// skipped; the delimiter is a tab, semicolon, comma or whitespace, whichever the first line
/// has (in that order); the first row is a header if it has a name (a field neither empty nor a
/// number), if its first field is empty, or if it is exactly `0,1,…,n−1` with `n ≥ 2` (pandas'
/// `to_csv(index=False)`); the first column is dropped if
/// the header's first field is empty (pandas' `to_csv` index). Use [`CsvOptions::read`] to see
/// what was decided, or to decide it.
///
/// ```
/// let path = std::env::temp_dir().join(format!("imle-read-csv-{}.csv", std::process::id()));
/// std::fs::write(&path, ",a,b\n0,1.5,2\n1,3,-4e-1\n")?; // pandas' to_csv, with its index
/// let t = imle_data::read_csv(&path)?;
/// assert_eq!(t.to_vec2::<f32>()?, vec![vec![1.5, 2.0], vec![3.0, -0.4]]);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_csv(path: impl AsRef<Path>) -> Result<Tensor> {
    CsvOptions::new().read(path).map(|(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TempDir;

    #[test]
    fn csv_with_and_without_header_and_index() -> Result<()> {
        let dir = TempDir::new();
        std::fs::write(dir.file("plain.csv"), "1,2,3\n4, 5 ,6\n\n").unwrap();
        assert_eq!(
            read_csv(dir.file("plain.csv"))?.to_vec2::<f32>()?,
            [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
        );
        std::fs::write(dir.file("header.csv"), "a,b\n1e-3,2\r\n3,4\r\n").unwrap();
        assert_eq!(
            read_csv(dir.file("header.csv"))?.to_vec2::<f32>()?,
            [[1e-3, 2.0], [3.0, 4.0]]
        );
        std::fs::write(dir.file("pandas.csv"), ",0,1\n0,7,8\n1,9,10\n").unwrap();
        assert_eq!(
            read_csv(dir.file("pandas.csv"))?.to_vec2::<f32>()?,
            [[7.0, 8.0], [9.0, 10.0]]
        );
        Ok(())
    }

    #[test]
    fn csv_errors_name_the_line() {
        let dir = TempDir::new();
        std::fs::write(dir.file("bad.csv"), "a,b\n1,2\n3,x\n").unwrap();
        let bad = read_csv(dir.file("bad.csv")).unwrap_err().to_string();
        assert!(
            bad.contains("bad.csv") && bad.contains("line 3, column 2"),
            "{bad}"
        );
        std::fs::write(dir.file("ragged.csv"), "1,2\n3\n").unwrap();
        let ragged = read_csv(dir.file("ragged.csv")).unwrap_err().to_string();
        assert!(ragged.contains("line 2 has 1 fields"), "{ragged}");
        std::fs::write(dir.file("empty.csv"), "a,b\n").unwrap();
        let empty = read_csv(dir.file("empty.csv")).unwrap_err().to_string();
        assert!(empty.contains("no data rows"), "{empty}");
        assert!(read_csv(dir.file("none.csv")).is_err());
    }

    /// Writes `text` to a fresh file of `dir` and reads it with `options`.
    fn read_text(
        dir: &TempDir,
        name: &str,
        text: impl AsRef<[u8]>,
        options: CsvOptions,
    ) -> Result<(Vec<Vec<f32>>, CsvReport)> {
        std::fs::write(dir.file(name), text).unwrap();
        let (t, report) = options.read(dir.file(name))?;
        Ok((t.to_vec2::<f32>()?, report))
    }

    fn auto() -> CsvOptions {
        CsvOptions::new()
    }

    fn err_text(r: Result<(Vec<Vec<f32>>, CsvReport)>) -> String {
        r.map(|(v, report)| format!("no error: {v:?} {report:?}"))
            .unwrap_err()
            .to_string()
    }

    fn strings(fields: &[&str]) -> Option<Vec<String>> {
        Some(fields.iter().map(|f| f.to_string()).collect())
    }

    #[test]
    fn csv_pandas_numeric_header_is_recognised_exactly() -> Result<()> {
        let dir = TempDir::new();
        // DataFrame(array).to_csv(path, index=False): the header 0,1,2 is not a data row.
        let (v, report) = read_text(&dir, "a.csv", "0,1,2\n1.5,2,3\n4,5,6\n", auto())?;
        assert_eq!(v, [[1.5, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        assert_eq!(report.header, strings(&["0", "1", "2"]));
        assert!(!report.index_column_dropped);
        assert_eq!((report.rows, report.cols), (2, 3));
        // The same first row read as data when asked.
        let no = auto().header(Header::No);
        let (v, report) = read_text(&dir, "a.csv", "0,1,2\n1.5,2,3\n", no)?;
        assert_eq!(v, [[0.0, 1.0, 2.0], [1.5, 2.0, 3.0]]);
        assert_eq!(report.header, None);
        // Numeric first rows that are not exactly 0..n-1 are data.
        for first in ["1,2,3", "0,1,3", "0,2,1", "0.0,1.0,2.0", "1,0,2"] {
            let (v, report) = read_text(&dir, "b.csv", format!("{first}\n7,8,9\n"), auto())?;
            assert_eq!((v.len(), report.header), (2, None), "{first}");
        }
        // A two-column 0,1 header (n = 2 is the smallest pandas header Auto takes).
        let (v, _) = read_text(&dir, "c.csv", "0,1\n5,6\n", auto())?;
        assert_eq!(v, [[5.0, 6.0]]);
        // One column starting with 0: pandas' Series header or a value; Auto refuses to guess.
        let one = err_text(read_text(&dir, "d.csv", "0\n5\n7\n", auto()));
        assert!(
            one.contains("d.csv") && one.contains("Header::Yes or Header::No"),
            "{one}"
        );
        let (v, _) = read_text(&dir, "d.csv", "0\n5\n7\n", auto().header(Header::Yes))?;
        assert_eq!(v, [[5.0], [7.0]]);
        let (v, _) = read_text(&dir, "d.csv", "0\n5\n7\n", auto().header(Header::No))?;
        assert_eq!(v, [[0.0], [5.0], [7.0]]);
        let (v, _) = read_text(&dir, "e.csv", "3\n5\n", auto())?;
        assert_eq!(v, [[3.0], [5.0]]);
        // A file that is only the 0..n-1 row: a header without data, and the way out.
        let only = err_text(read_text(&dir, "f.csv", "0,1,2\n", auto()));
        assert!(
            only.contains("line 1 is a header and no data rows follow")
                && only.contains("pass Header::No"),
            "{only}"
        );
        Ok(())
    }

    #[test]
    fn csv_named_header_and_forced_header() -> Result<()> {
        let dir = TempDir::new();
        let (v, report) = read_text(&dir, "a.csv", "cost a,cost b\n1,2\n3,4\n", auto())?;
        assert_eq!(v, [[1.0, 2.0], [3.0, 4.0]]);
        assert_eq!(report.header, strings(&["cost a", "cost b"]));
        // Header::Yes skips a numeric first row that Auto would read as data.
        let yes = auto().header(Header::Yes);
        let (v, report) = read_text(&dir, "b.csv", "10,20\n1,2\n", yes)?;
        assert_eq!(
            (v, report.header),
            (vec![vec![1.0, 2.0]], strings(&["10", "20"]))
        );
        // np.savetxt(path, a, header="x y"): a comment line one field wider, skipped when asked.
        let savetxt = "# x y\n1 2\n3 4\n";
        let wide = err_text(read_text(&dir, "e.txt", savetxt, auto()));
        assert!(wide.contains("Header::Yes to skip it anyway"), "{wide}");
        let (v, report) = read_text(&dir, "e.txt", savetxt, auto().header(Header::Yes))?;
        assert_eq!(v, [[1.0, 2.0], [3.0, 4.0]]);
        assert_eq!(report.header, strings(&["#", "x", "y"]));
        // A missing value in the first row is not a header: an error at that cell.
        let missing = err_text(read_text(&dir, "d.csv", "1,,3\n4,5,6\n", auto()));
        assert!(missing.contains("line 1, column 2 is empty"), "{missing}");
        // A header whose width is not the data's is an error, with the Header::No hint.
        let wide = err_text(read_text(&dir, "c.csv", "a,b,c\n1,2\n", auto()));
        assert!(
            wide.contains("the header (line 1) has 3 fields but the first data row (line 2) has 2")
                && wide.contains("Header::No"),
            "{wide}"
        );
        Ok(())
    }

    #[test]
    fn csv_index_column_auto_and_explicit() -> Result<()> {
        let dir = TempDir::new();
        // pandas' default to_csv(path): empty first header field, row numbers in column 1,
        // whatever the index values are (here a filtered frame's).
        let text = ",0,1\n3,7,8\n9,9,10\n";
        let (v, report) = read_text(&dir, "a.csv", text, auto())?;
        assert_eq!(v, [[7.0, 8.0], [9.0, 10.0]]);
        assert!(report.index_column_dropped);
        assert_eq!(report.header, strings(&["", "0", "1"]));
        let (v, report) = read_text(&dir, "a.csv", text, auto().index_column(IndexColumn::No))?;
        assert_eq!(v, [[3.0, 7.0, 8.0], [9.0, 9.0, 10.0]]);
        assert!(!report.index_column_dropped);
        // A named index (df.index.name = "id") is not detected; IndexColumn::Yes drops it.
        let named = "id,a,b\n0,1,2\n1,3,4\n";
        let (v, report) = read_text(&dir, "b.csv", named, auto())?;
        assert_eq!((v[0].len(), report.index_column_dropped), (3, false));
        let (v, _) = read_text(&dir, "b.csv", named, auto().index_column(IndexColumn::Yes))?;
        assert_eq!(v, [[1.0, 2.0], [3.0, 4.0]]);
        // to_csv(header=False): an index without a header, dropped only when asked.
        let (v, _) = read_text(
            &dir,
            "c.csv",
            "0,1,2\n1,3,4\n",
            auto().header(Header::No).index_column(IndexColumn::Yes),
        )?;
        assert_eq!(v, [[1.0, 2.0], [3.0, 4.0]]);
        let nothing = err_text(read_text(
            &dir,
            "d.csv",
            "5\n6\n",
            auto().index_column(IndexColumn::Yes),
        ));
        assert!(nothing.contains("IndexColumn::No"), "{nothing}");
        Ok(())
    }

    #[test]
    fn csv_utf8_bom_is_stripped_with_and_without_header() -> Result<()> {
        let dir = TempDir::new();
        // Excel's "CSV UTF-8" before a header-less table: no row may be lost.
        let (v, report) = read_text(&dir, "a.csv", "\u{feff}1,2\r\n3,4\r\n", auto())?;
        assert_eq!(v, [[1.0, 2.0], [3.0, 4.0]]);
        assert!(report.bom_stripped && report.header.is_none());
        // And before a header: the first name does not keep the mark.
        let (v, report) = read_text(&dir, "b.csv", "\u{feff}a,b\n1,2\n", auto())?;
        assert_eq!(v, [[1.0, 2.0]]);
        assert_eq!(report.header, strings(&["a", "b"]));
        // With a pandas 0..n-1 header, and with the header given.
        let (v, _) = read_text(&dir, "c.csv", "\u{feff}0,1\n1,2\n", auto())?;
        assert_eq!(v, [[1.0, 2.0]]);
        let (v, _) = read_text(&dir, "d.csv", "\u{feff}1,2\n", auto().header(Header::No))?;
        assert_eq!(v, [[1.0, 2.0]]);
        let (_, report) = read_text(&dir, "e.csv", "1,2\n", auto())?;
        assert!(!report.bom_stripped);
        // UTF-16 (Excel's "Unicode Text") is named, not misread.
        let utf16 = err_text(read_text(&dir, "f.txt", b"\xFF\xFE1\x00", auto()));
        assert!(
            utf16.contains("f.txt") && utf16.contains("UTF-16"),
            "{utf16}"
        );
        Ok(())
    }

    #[test]
    fn csv_delimiters_detected_and_given() -> Result<()> {
        let dir = TempDir::new();
        // np.savetxt's default: one space, %.18e.
        let savetxt = "1.000000000000000000e+00 2.500000000000000000e+00\n\
                       -3.000000000000000000e+00 4.000000000000000000e+00\n";
        let (v, report) = read_text(&dir, "a.txt", savetxt, auto())?;
        assert_eq!(v, [[1.0, 2.5], [-3.0, 4.0]]);
        assert_eq!(report.delimiter, Delimiter::Whitespace);
        // Runs of spaces and tabs, leading and trailing blanks.
        let ragged_space = "  1   2  3 \n4 \t 5\t6\n";
        let (v, report) = read_text(&dir, "b.txt", ragged_space, auto())?;
        assert_eq!(v, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        assert_eq!(report.delimiter, Delimiter::Whitespace);
        // A whitespace file with a header (np.savetxt(header=...) without the comment mark).
        let (v, report) = read_text(&dir, "c.txt", "x y\n1 2\n", auto())?;
        assert_eq!(
            (v, report.header),
            (vec![vec![1.0, 2.0]], strings(&["x", "y"]))
        );
        // Tabs.
        let (v, report) = read_text(&dir, "d.tsv", "a\tb\n1\t2\n3\t4\n", auto())?;
        assert_eq!(v, [[1.0, 2.0], [3.0, 4.0]]);
        assert_eq!(report.delimiter, Delimiter::Tab);
        // Semicolons with decimal commas (Excel in a German or French locale).
        let (v, report) = read_text(&dir, "e.csv", "a;b\n1,5;2\n-3;4,25\n", auto())?;
        assert_eq!(v, [[1.5, 2.0], [-3.0, 4.25]]);
        assert_eq!(report.delimiter, Delimiter::Semicolon);
        assert!(report.decimal_comma);
        let (_, report) = read_text(&dir, "f.csv", "1;2\n", auto())?;
        assert!(!report.decimal_comma);
        // A given delimiter wins over detection: a one-column file of "1 2" cells is an error.
        let given = auto().delimiter(Delimiter::Comma).header(Header::No);
        let spaces = err_text(read_text(&dir, "g.txt", "1 2\n3 4\n", given));
        assert!(
            spaces.contains("line 1, column 1: \"1 2\" is not a number")
                && spaces.contains("the delimiter is comma (given)")
                && spaces.contains("pass Delimiter::Whitespace"),
            "{spaces}"
        );
        let semi = err_text(read_text(
            &dir,
            "h.csv",
            "1;2\n",
            auto().delimiter(Delimiter::Comma).header(Header::No),
        ));
        assert!(semi.contains("pass Delimiter::Semicolon"), "{semi}");
        // A comma inside quotes does not make a file comma-separated.
        let (v, report) = read_text(&dir, "i.csv", "\"a,b\";c\n1;2\n", auto())?;
        assert_eq!(
            (v, report.delimiter),
            (vec![vec![1.0, 2.0]], Delimiter::Semicolon)
        );
        Ok(())
    }

    #[test]
    fn csv_line_endings_quotes_and_blank_lines() -> Result<()> {
        let dir = TempDir::new();
        let expected = [[1.0f32, 2.0], [3.0, 4.0]];
        for text in [
            "1,2\n3,4\n",
            "1,2\n3,4",
            "1,2\r\n3,4\r\n",
            "1,2\r\n3,4",
            "\n1,2\n\n   \n3,4\n\n",
            "\"1\",\"2\"\n\" 3 \",4\n",
            "1 , 2\n 3,4 \n",
        ] {
            let (v, report) = read_text(&dir, "a.csv", text, auto())?;
            assert_eq!(v, expected, "{text:?}");
            assert_eq!((report.header, report.delimiter), (None, Delimiter::Comma));
        }
        for text in ["a b\r\n1 2\r\n3 4", "1\t2\r\n3\t4\r\n", "x;y\r\n1;2\r\n3;4"] {
            let (v, _) = read_text(&dir, "b.csv", text, auto())?;
            assert_eq!(v, expected, "{text:?}");
        }
        // Line numbers count the header and blank lines.
        let bad = err_text(read_text(&dir, "c.csv", "a,b\n\n1,2\r\n3,x\r\n", auto()));
        assert!(
            bad.contains("line 4, column 2: \"x\" is not a number"),
            "{bad}"
        );
        Ok(())
    }

    #[test]
    fn csv_errors_name_file_line_column_and_option() {
        let dir = TempDir::new();
        let no = auto().header(Header::No);
        let named = err_text(read_text(&dir, "a.csv", "a,b\n1,2\n", no));
        assert!(
            named.contains("a.csv: line 1, column 1: \"a\" is not a number")
                && named.contains("if line 1 is a header, pass Header::Yes"),
            "{named}"
        );
        let empty_cell = err_text(read_text(&dir, "b.csv", "a,b\n1,\n", auto()));
        assert!(
            empty_cell.contains("b.csv: line 2, column 2 is empty"),
            "{empty_cell}"
        );
        let ragged = err_text(read_text(&dir, "c.csv", "a,b\n1,2\n3,4,5\n", auto()));
        assert!(
            ragged.contains("c.csv: line 3 has 3 fields but the first data row (line 2) has 2")
                && ragged.contains("the delimiter is comma (detected)"),
            "{ragged}"
        );
        for text in ["", "\n\n", "\u{feff}", "  \r\n"] {
            let empty = err_text(read_text(&dir, "d.csv", text, auto()));
            assert!(
                empty.contains("d.csv: the file is empty"),
                "{text:?}: {empty}"
            );
        }
        let header_only = err_text(read_text(&dir, "e.csv", "a,b\n", auto()));
        assert!(
            header_only.contains("e.csv: line 1 is a header and no data rows follow"),
            "{header_only}"
        );
        let missing = CsvOptions::new().read(dir.file("none.csv")).unwrap_err();
        assert!(missing.to_string().contains("none.csv"), "{missing}");
        // In the index column's presence, columns are counted in the file.
        let indexed = err_text(read_text(&dir, "f.csv", ",a,b\n0,1,y\n", auto()));
        assert!(indexed.contains("line 2, column 3"), "{indexed}");
    }

    #[test]
    fn csv_report_display_says_what_was_decided() -> Result<()> {
        let dir = TempDir::new();
        let (_, report) = read_text(&dir, "a.csv", "\u{feff},0,1\n0,1,2\n", auto())?;
        assert_eq!(
            report.to_string(),
            "1 rows × 2 columns, comma-delimited, header skipped, index column dropped, \
             byte-order mark skipped"
        );
        Ok(())
    }
}
