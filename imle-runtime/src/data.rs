//! Readers for data sets in the formats PyEPO users have (.npy arrays and CSV tables), so that
//! users with PyEPO shortest-path data can train on it.
//!
//! * [`read_npy`]: one `.npy` array as an f32 tensor (the dtypes NumPy writes that candle reads:
//!   `f2`, `f4`, `f8`, `u1`, `u4`, `i2`, `i4`, `i8`, `b1`, little-endian, C order). Other files
//!   (big-endian, int8, Fortran order, …) get an error naming the file and the NumPy call that
//!   converts them.
//! * [`read_csv`] and [`CsvOptions`]: a numeric table as an f32 tensor `[rows, cols]`, parsed
//!   by the `csv` crate. The header, the delimiter and pandas' index column are detected (and
//!   reported in a [`CsvReport`]) or given: nothing is skipped without the caller being able
//!   to see it.
//! * [`read_table`]: either of the two, by file extension.
//! * [`ShortestPathData`]: features, vertex costs `[N, H, W]` and (optionally) the true paths,
//!   checked against each other; [`ShortestPathData::warcraft`] reads the Warcraft layout
//!   that PyEPO's tutorials use (`{split}_maps.npy`, `{split}_vertex_weights.npy`,
//!   `{split}_shortest_paths.npy`, or their `_part0.npy`, `_part1.npy`, … pieces).
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use imle_runtime::data::{CsvOptions, Delimiter, Header, ShortestPathData, read_npy};
//!
//! let dir = std::env::temp_dir().join(format!("imle-data-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! // Two instances: 3 features each, and 2×2 vertex costs (here flattened, as a CSV).
//! Tensor::new(&[[0.1f32, 0.2, 0.3], [0.4, 0.5, 0.6]], &Device::Cpu)?
//!     .write_npy(dir.join("x.npy"))?;
//! std::fs::write(dir.join("c.csv"), "c0,c1,c2,c3\n1,2,3,4\n5,6,7,8\n")?;
//!
//! let data = ShortestPathData::load(dir.join("x.npy"), dir.join("c.csv"), Some((2, 2)))?;
//! assert_eq!(data.len(), 2);
//! assert_eq!(data.grid(), (2, 2));
//! assert_eq!(data.costs.dims(), &[2, 2, 2]);
//! assert_eq!(read_npy(dir.join("x.npy"))?.dims(), &[2, 3]);
//!
//! // What the CSV reader decided, and how to decide it yourself.
//! let (costs, report) = CsvOptions::new().read(dir.join("c.csv"))?;
//! assert_eq!(costs.dims(), &[2, 4]);
//! assert_eq!(report.header.as_deref(), Some(&["c0", "c1", "c2", "c3"].map(String::from)[..]));
//! assert_eq!(report.delimiter, Delimiter::Comma);
//! let err = CsvOptions::new().header(Header::No).read(dir.join("c.csv")).unwrap_err();
//! assert!(err.to_string().contains("line 1, column 1: \"c0\" is not a number"));
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use candle_core::{DType, Device, Error, Result, Tensor};
use std::fmt;
use std::path::{Path, PathBuf};

fn data_error(path: &Path, message: impl fmt::Display) -> Error {
    Error::Msg(format!("{}: {message}", path.display()))
}

/// Reads a `.npy` file as an f32 tensor on the CPU, with the array's shape.
///
/// Reads the dtypes candle reads: `f2`, `f4`, `f8`, `i2`, `i4`, `i8`, `u1`, `u4` and `b1`
/// (as 0/1), little-endian, in C order (NumPy's defaults on x86 and ARM). Errors name the file
/// and, where NumPy can convert the array, the call that does: a big-endian array
/// (`arr.astype('<f4')`), int8 (`arr.astype('<i2')`), any other dtype (`arr.astype('<f4')`),
/// Fortran order (`np.ascontiguousarray(arr)`); also a missing file, a file that is not
/// `.npy` (no magic string) and a truncated body.
///
/// ```
/// use candle_core::{Device, Tensor};
/// let path = std::env::temp_dir().join(format!("imle-read-npy-{}.npy", std::process::id()));
/// Tensor::new(&[1u8, 2, 3], &Device::Cpu)?.write_npy(&path)?;
/// let t = imle_runtime::data::read_npy(&path)?;
/// assert_eq!(t.to_vec1::<f32>()?, vec![1.0, 2.0, 3.0]);
/// assert!(imle_runtime::data::read_npy("/no/such/file.npy").unwrap_err().to_string().contains("/no/such/file.npy"));
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor> {
    read_npy_native(path.as_ref())?.to_dtype(DType::F32)
}

/// [`read_npy`] without the conversion to f32: the tensor in the dtype candle gives it.
fn read_npy_native(path: &Path) -> Result<Tensor> {
    if !path.is_file() {
        return Err(data_error(path, "no such file"));
    }
    check_npy_header(path)?;
    Tensor::read_npy(path).map_err(|e| data_error(path, format!("not read: {e}")))
}

/// The `.npy` type codes (after the byte-order character) that candle 0.11's `read_npy`
/// accepts: NumPy's long forms and the one-character `struct` forms it also writes.
const NPY_CODES: &[&str] = &[
    "f2", "e", "f4", "f", "f8", "d", "i2", "h", "i4", "i", "i8", "q", "u1", "B", "u4", "I", "b1",
    "?",
];

/// Checks a `.npy` header for what candle rejects with a message that does not say what to
/// do (candle's big-endian message even says "little-endian descr"), so that the error can
/// name the file and the NumPy call that converts the array.
fn check_npy_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| data_error(path, e))?;
    let mut start = [0u8; 12];
    let got = file.read(&mut start).map_err(|e| data_error(path, e))?;
    if got < 10 || &start[..6] != b"\x93NUMPY" {
        return Err(data_error(
            path,
            "not a .npy file (no \\x93NUMPY magic string at the start)",
        ));
    }
    // Version 1 stores the header length in 2 bytes, versions 2 and 3 in 4 (NumPy's format).
    let (len, offset) = match start[6] {
        1 => (u16::from_le_bytes([start[8], start[9]]) as usize, 10),
        2 | 3 if got == 12 => (
            u32::from_le_bytes([start[8], start[9], start[10], start[11]]) as usize,
            12,
        ),
        v => {
            return Err(data_error(
                path,
                format!("unsupported .npy format version {v}; imle reads versions 1 and 2"),
            ));
        }
    };
    let mut header = vec![0u8; offset + len];
    header[..got].copy_from_slice(&start[..got]);
    file.read_exact(&mut header[got..])
        .map_err(|e| data_error(path, format!("truncated .npy header: {e}")))?;
    let header = String::from_utf8_lossy(&header[offset..]);
    let Some(descr) = npy_header_value(&header, "descr") else {
        // No plain 'descr': string (a structured dtype has a list there); candle says which.
        return Ok(());
    };
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let (order, code) = match descr.chars().next() {
        Some(c @ ('<' | '>' | '|' | '=')) => (c, &descr[1..]),
        _ => ('=', descr),
    };
    if code == "i1" || code == "b" {
        return Err(data_error(
            path,
            format!(
                "int8 array ('{descr}'), which candle does not read; \
                 convert with arr.astype('<i2') (or '<f4')"
            ),
        ));
    }
    if !NPY_CODES.contains(&code) {
        return Err(data_error(
            path,
            format!(
                "dtype '{descr}' is not supported; imle reads f2, f4, f8, i2, i4, i8, u1, u4 and \
                 b1 arrays: convert with arr.astype('<f4')"
            ),
        ));
    }
    // NumPy writes one-byte types as '|u1', but candle refuses any '>' prefix, so '>u1'
    // (written by hand) gets the same advice.
    if order == '>' {
        return Err(data_error(
            path,
            format!(
                "big-endian array ('{descr}'); imle reads little-endian .npy files: convert \
                 with arr.astype('<{code}')"
            ),
        ));
    }
    if npy_header_value(&header, "fortran_order").is_some_and(|v| v == "True") {
        return Err(data_error(
            path,
            "Fortran-order array ('fortran_order': True); imle reads C-order .npy files: save \
             np.ascontiguousarray(arr) instead",
        ));
    }
    Ok(())
}

/// The text of `'key': value` in a `.npy` header (a Python dict literal), up to the next
/// comma or closing brace; `None` if the key is absent or its value is not a plain literal.
fn npy_header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let quoted = [format!("'{key}'"), format!("\"{key}\"")];
    let at = quoted
        .iter()
        .find_map(|k| header.find(k.as_str()).map(|i| i + k.len()))?;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    if rest.starts_with(['[', '(', '{']) {
        return None;
    }
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim())
}

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
/// use imle_runtime::data::{CsvOptions, Delimiter, Header, IndexColumn};
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
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .delimiter(byte)
                // Ragged rows are checked here, with an error that names the line and the
                // delimiter, rather than by the csv crate.
                .flexible(true)
                .trim(csv::Trim::All)
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
    /// use imle_runtime::data::{CsvOptions, Delimiter, Header};
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
/// let t = imle_runtime::data::read_csv(&path)?;
/// assert_eq!(t.to_vec2::<f32>()?, vec![vec![1.5, 2.0], vec![3.0, -0.4]]);
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_csv(path: impl AsRef<Path>) -> Result<Tensor> {
    CsvOptions::new().read(path).map(|(t, _)| t)
}

/// Reads a `.npy` file with [`read_npy`] or a `.csv` / `.txt` / `.tsv` file with [`read_csv`]
/// (every option `Auto`), by the file's extension.
///
/// ```
/// assert!(imle_runtime::data::read_table("costs.parquet").unwrap_err().to_string().contains(".npy"));
/// ```
pub fn read_table(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("npy") => read_npy(path),
        Some(e)
            if ["csv", "txt", "tsv"]
                .iter()
                .any(|t| e.eq_ignore_ascii_case(t)) =>
        {
            read_csv(path)
        }
        _ => Err(data_error(
            path,
            "unknown extension: expected .npy, or .csv / .txt / .tsv for a text table",
        )),
    }
}

/// Reads one array of a Warcraft split: `{dir}/{split}_{name}.npy`, or, when that file is
/// absent, `{split}_{name}_part0.npy`, `_part1.npy`, … (at least two, as the 18×18 and larger
/// training splits ship) stacked along axis 0. `Ok(None)` when neither form exists.
fn read_npy_parts(dir: &Path, split: &str, name: &str) -> Result<Option<(Tensor, PathBuf)>> {
    let single = dir.join(format!("{split}_{name}.npy"));
    if single.is_file() {
        return Ok(Some((read_npy_native(&single)?, single)));
    }
    let part = |i: usize| dir.join(format!("{split}_{name}_part{i}.npy"));
    let parts: Vec<PathBuf> = (0..).map(part).take_while(|p| p.is_file()).collect();
    match parts.len() {
        0 => return Ok(None),
        1 => {
            return Err(data_error(
                &part(1),
                format!(
                    "no such file, but {} exists: a split stored in parts needs all of them",
                    parts[0].display()
                ),
            ));
        }
        _ => {}
    }
    let tensors = parts
        .iter()
        .map(|p| read_npy_native(p))
        .collect::<Result<Vec<_>>>()?;
    for (p, t) in parts.iter().zip(&tensors).skip(1) {
        let (d0, t0) = (tensors[0].dims(), t.dims());
        if t.dtype() != tensors[0].dtype() || d0.len() != t0.len() || d0.get(1..) != t0.get(1..) {
            return Err(data_error(
                p,
                format!(
                    "{:?} {:?} does not stack on {} ({:?} {:?}) along axis 0",
                    t.dtype(),
                    t0,
                    parts[0].display(),
                    tensors[0].dtype(),
                    d0
                ),
            ));
        }
    }
    let joined = Tensor::cat(&tensors, 0).map_err(|e| data_error(&parts[0], e))?;
    Ok(Some((joined, parts[0].clone())))
}

/// A shortest-path data set: inputs, the true vertex costs of an `H × W` grid, and optionally
/// the true shortest paths (0/1 masks), all with the same number `N` of instances.
///
/// ```
/// use candle_core::{Device, Tensor};
/// use imle_runtime::data::ShortestPathData;
/// let data = ShortestPathData::new(
///     Tensor::zeros((4, 5), candle_core::DType::F32, &Device::Cpu)?,
///     Tensor::ones((4, 9), candle_core::DType::F32, &Device::Cpu)?,
///     None,
///     Some((3, 3)),
/// )?;
/// assert_eq!(data.costs.dims(), &[4, 3, 3]);
/// # Ok::<(), candle_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ShortestPathData {
    /// The network's inputs, `[N, …]` (f32). For Warcraft maps, images `[N, 3, H·P, W·P]` in
    /// `[0, 1]`.
    pub features: Tensor,
    /// The true vertex costs, `[N, H, W]` (f32, finite).
    pub costs: Tensor,
    /// The true shortest paths as 0/1 masks `[N, H, W]`, when the data set has them.
    pub paths: Option<Tensor>,
}

impl ShortestPathData {
    /// Checks and assembles a data set. `costs` may be `[N, H, W]`, or `[N, H·W]` with `grid`
    /// given; `paths`, when given, must have the costs' shape (or be flat like them).
    ///
    /// ```
    /// use candle_core::{Device, Tensor};
    /// use imle_runtime::data::ShortestPathData;
    /// // PyEPO's genData writes edge costs (40 edges of a 5×5 grid graph): not vertex costs.
    /// let x = Tensor::zeros((2, 5), candle_core::DType::F32, &Device::Cpu)?;
    /// let c = Tensor::ones((2, 40), candle_core::DType::F32, &Device::Cpu)?;
    /// let err = ShortestPathData::new(x, c, None, Some((5, 5))).unwrap_err();
    /// assert!(err.to_string().contains("40 costs per instance"));
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn new(
        features: Tensor,
        costs: Tensor,
        paths: Option<Tensor>,
        grid: Option<(usize, usize)>,
    ) -> Result<Self> {
        let n = features
            .dims()
            .first()
            .copied()
            .ok_or_else(|| Error::Msg("the features must have rank >= 1 (N, ...)".into()))?;
        let costs = grid_shaped("costs", costs.to_dtype(DType::F32)?, grid)?;
        let (cn, h, w) = costs.dims3()?;
        if cn != n {
            return Err(Error::Msg(format!(
                "{n} feature rows but {cn} cost instances: they must match"
            )));
        }
        if n == 0 {
            return Err(Error::Msg("the data set is empty (N = 0)".into()));
        }
        let flat = costs.flatten_all()?.to_vec1::<f32>()?;
        if let Some(bad) = flat.iter().position(|c| !c.is_finite()) {
            return Err(Error::Msg(format!(
                "cost {} of instance {} is not finite",
                flat[bad],
                bad / (h * w)
            )));
        }
        let paths = match paths {
            None => None,
            Some(p) => {
                let p = grid_shaped("paths", p.to_dtype(DType::F32)?, Some((h, w)))?;
                if p.dims() != costs.dims() {
                    return Err(Error::Msg(format!(
                        "paths have shape {:?}, costs {:?}: they must match",
                        p.dims(),
                        costs.dims()
                    )));
                }
                Some(p)
            }
        };
        Ok(ShortestPathData {
            features: features.to_dtype(DType::F32)?,
            costs,
            paths,
        })
    }

    /// Reads features and costs from `.npy` or CSV files (see [`read_table`]) and checks them
    /// with [`ShortestPathData::new`]. Give `grid` when the costs are stored flat
    /// (`[N, H·W]`, as in a CSV table). CSV files are read with every [`CsvOptions`] option
    /// `Auto`; to choose them, or to see what was detected, read the tables with
    /// [`CsvOptions::read`] and pass them to [`ShortestPathData::new`].
    ///
    /// ```no_run
    /// use imle_runtime::data::ShortestPathData;
    /// let data = ShortestPathData::load("x_train.csv", "c_train.csv", Some((12, 12)))?;
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn load(
        features: impl AsRef<Path>,
        costs: impl AsRef<Path>,
        grid: Option<(usize, usize)>,
    ) -> Result<Self> {
        let costs_path = costs.as_ref();
        let features = read_table(features)?;
        let costs = read_table(costs_path)?;
        Self::new(features, costs, None, grid).map_err(|e| data_error(costs_path, e))
    }

    /// Reads the Warcraft shortest-path layout used by PyEPO and the blackbox-backprop data:
    /// `{dir}/{split}_maps.npy` (`[N, H·P, W·P, 3]` RGB images, `u8` or float),
    /// `{dir}/{split}_vertex_weights.npy` (`[N, H, W]`) and, if present,
    /// `{dir}/{split}_shortest_paths.npy` (`[N, H, W]`). The maps become `[N, 3, H·P, W·P]`
    /// f32 in `[0, 1]` (divided by 255 when stored as integers or when any value exceeds 1).
    ///
    /// The data for 18×18 and larger grids ships the training split in pieces,
    /// `train_maps_part0.npy`, `train_maps_part1.npy` (and the same for the weights and
    /// paths): where `{split}_{name}.npy` is absent, its parts `_part0.npy`, `_part1.npy`, …
    /// are read and stacked along axis 0, in order. A lone `_part0.npy` is an error (a missing
    /// piece would silently halve the data), as is an array found in neither form; the error
    /// names the files looked for.
    ///
    /// ```no_run
    /// use imle_runtime::data::ShortestPathData;
    /// let train = ShortestPathData::warcraft("warcraft_shortest_path/12x12", "train")?;
    /// assert_eq!(train.grid(), (12, 12));
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn warcraft(dir: impl AsRef<Path>, split: &str) -> Result<Self> {
        let dir = dir.as_ref();
        let missing = |name: &str| {
            data_error(
                dir,
                format!(
                    "no such file: {split}_{name}.npy (nor its parts {split}_{name}_part0.npy, \
                     {split}_{name}_part1.npy, …)"
                ),
            )
        };
        let (raw, maps_path) =
            read_npy_parts(dir, split, "maps")?.ok_or_else(|| missing("maps"))?;
        let integer = !matches!(
            raw.dtype(),
            DType::F16 | DType::BF16 | DType::F32 | DType::F64
        );
        let maps = raw.to_dtype(DType::F32)?;
        let maps = match maps.dims() {
            [_, _, _, 3] => maps.permute((0, 3, 1, 2))?.contiguous()?,
            dims => {
                return Err(data_error(
                    &maps_path,
                    format!("expected RGB maps [N, H, W, 3], got shape {dims:?}"),
                ));
            }
        };
        let max = maps.max_all()?.to_scalar::<f32>()?;
        let maps = if integer || max > 1.0 {
            (maps / 255.0)?
        } else {
            maps
        };
        let (costs, _) = read_npy_parts(dir, split, "vertex_weights")?
            .ok_or_else(|| missing("vertex_weights"))?;
        // The true paths are optional: without them, the caller computes them from the costs.
        let paths = read_npy_parts(dir, split, "shortest_paths")?.map(|(p, _)| p);
        let data = Self::new(maps, costs, paths, None).map_err(|e| data_error(dir, e))?;
        let (h, w) = data.grid();
        let (ih, iw) = (data.features.dim(2)?, data.features.dim(3)?);
        if ih % h != 0 || iw % w != 0 {
            return Err(data_error(
                dir,
                format!("maps of {ih}×{iw} pixels do not split into a {h}×{w} grid of cells"),
            ));
        }
        Ok(data)
    }

    /// The number of instances `N`.
    ///
    /// ```
    /// # use candle_core::{Device, Tensor};
    /// # use imle_runtime::data::ShortestPathData;
    /// let x = Tensor::zeros((3, 1), candle_core::DType::F32, &Device::Cpu)?;
    /// let c = Tensor::ones((3, 2, 2), candle_core::DType::F32, &Device::Cpu)?;
    /// assert_eq!(ShortestPathData::new(x, c, None, None)?.len(), 3);
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    #[allow(clippy::len_without_is_empty)] // never empty: `new` rejects N = 0
    pub fn len(&self) -> usize {
        self.costs.dims()[0]
    }

    /// The grid `(H, W)`.
    ///
    /// ```
    /// # use candle_core::{Device, Tensor};
    /// # use imle_runtime::data::ShortestPathData;
    /// let x = Tensor::zeros((1, 1), candle_core::DType::F32, &Device::Cpu)?;
    /// let c = Tensor::ones((1, 2, 3), candle_core::DType::F32, &Device::Cpu)?;
    /// assert_eq!(ShortestPathData::new(x, c, None, None)?.grid(), (2, 3));
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn grid(&self) -> (usize, usize) {
        let dims = self.costs.dims();
        (dims[1], dims[2])
    }
}

/// `[N, H, W]` as it is, or `[N, H·W]` reshaped with `grid`; anything else is an error.
fn grid_shaped(what: &str, t: Tensor, grid: Option<(usize, usize)>) -> Result<Tensor> {
    match (t.dims(), grid) {
        ([_, h, w], None) if *h > 0 && *w > 0 => Ok(t),
        ([_, h, w], Some((gh, gw))) if (*h, *w) == (gh, gw) => Ok(t),
        ([n, cells], Some((h, w))) if *cells == h * w => t.reshape((*n, h, w)),
        ([_, cells], Some((h, w))) => Err(Error::Msg(format!(
            "{what}: {cells} costs per instance, but a {h}×{w} grid has {} vertices (edge costs, \
             as PyEPO's genData writes for its grid graph, need an edge-cost solver)",
            h * w
        ))),
        ([_, _], None) => Err(Error::Msg(format!(
            "{what} are flat ({:?}): give the grid (H, W)",
            t.dims()
        ))),
        (dims, grid) => Err(Error::Msg(format!(
            "{what} must be [N, H, W] or [N, H·W]; got shape {dims:?} (grid {grid:?})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh temp directory for one test, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "imle-data-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        fn file(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A `.npy` file written by hand (version 1.0 header), as NumPy writes it.
    fn write_raw_npy(path: &Path, descr: &str, fortran: bool, shape: &str, body: &[u8]) {
        let mut header = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(body);
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn npy_of_each_dtype_reads_as_f32() -> Result<()> {
        let dir = TempDir::new();
        let f64s: Vec<u8> = [1.5f64, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        write_raw_npy(&dir.file("a.npy"), "<f8", false, "(2,)", &f64s);
        assert_eq!(read_npy(dir.file("a.npy"))?.to_vec1::<f32>()?, [1.5, -2.0]);
        let i64s: Vec<u8> = [3i64, -4, 5, 6]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        write_raw_npy(&dir.file("b.npy"), "<i8", false, "(2, 2)", &i64s);
        assert_eq!(
            read_npy(dir.file("b.npy"))?.to_vec2::<f32>()?,
            [[3.0, -4.0], [5.0, 6.0]]
        );
        write_raw_npy(&dir.file("c.npy"), "|u1", false, "(3,)", &[0, 128, 255]);
        assert_eq!(
            read_npy(dir.file("c.npy"))?.to_vec1::<f32>()?,
            [0.0, 128.0, 255.0]
        );
        Ok(())
    }

    #[test]
    fn npy_errors_name_the_file_and_the_problem() {
        let dir = TempDir::new();
        let missing = read_npy(dir.file("missing.npy")).unwrap_err().to_string();
        assert!(missing.contains("missing.npy") && missing.contains("no such file"));
        std::fs::write(dir.file("text.npy"), "not numpy at all").unwrap();
        let bad = read_npy(dir.file("text.npy")).unwrap_err().to_string();
        assert!(bad.contains("text.npy") && bad.contains("magic"), "{bad}");
        write_raw_npy(&dir.file("f.npy"), "<f4", true, "(1,)", &1f32.to_le_bytes());
        let fortran = read_npy(dir.file("f.npy")).unwrap_err().to_string();
        assert!(
            fortran.contains("f.npy") && fortran.contains("fortran"),
            "{fortran}"
        );
        write_raw_npy(&dir.file("short.npy"), "<f4", false, "(4,)", &[0; 6]);
        let short = read_npy(dir.file("short.npy")).unwrap_err().to_string();
        assert!(short.contains("short.npy"), "{short}");
    }

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

    #[test]
    fn npy_big_endian_int8_and_other_dtypes_are_named() {
        let dir = TempDir::new();
        let be: Vec<u8> = [1.5f32, 2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        write_raw_npy(&dir.file("be.npy"), ">f4", false, "(2,)", &be);
        let e = read_npy(dir.file("be.npy")).unwrap_err().to_string();
        assert!(
            e.contains("be.npy: big-endian array ('>f4')")
                && e.contains("arr.astype('<f4')")
                && !e.contains("little-endian descr"),
            "{e}"
        );
        write_raw_npy(&dir.file("be8.npy"), ">i8", false, "(1,)", &[0; 8]);
        let e = read_npy(dir.file("be8.npy")).unwrap_err().to_string();
        assert!(e.contains("be8.npy") && e.contains("astype('<i8')"), "{e}");
        for descr in ["|i1", "<i1", "|b"] {
            write_raw_npy(&dir.file("i1.npy"), descr, false, "(2,)", &[1, 2]);
            let e = read_npy(dir.file("i1.npy")).unwrap_err().to_string();
            assert!(
                e.contains("i1.npy: int8 array") && e.contains("astype('<i2')"),
                "{descr}: {e}"
            );
        }
        for descr in ["<u2", "<c8", "<U3", ">u8"] {
            write_raw_npy(&dir.file("u.npy"), descr, false, "(1,)", &[0; 16]);
            let e = read_npy(dir.file("u.npy")).unwrap_err().to_string();
            assert!(
                e.contains(&format!("u.npy: dtype '{descr}' is not supported")),
                "{descr}: {e}"
            );
        }
        // NumPy writes bytes as '|u1'; a hand-made '>u1', which candle refuses, is named too.
        write_raw_npy(&dir.file("u1.npy"), ">u1", false, "(2,)", &[3, 4]);
        let e = read_npy(dir.file("u1.npy")).unwrap_err().to_string();
        assert!(e.contains("u1.npy: big-endian array ('>u1')"), "{e}");
        write_raw_npy(&dir.file("f.npy"), "<f4", true, "(1,)", &1f32.to_le_bytes());
        let e = read_npy(dir.file("f.npy")).unwrap_err().to_string();
        assert!(
            e.contains("f.npy: Fortran-order array") && e.contains("np.ascontiguousarray"),
            "{e}"
        );
    }

    /// Writes one Warcraft array, whole or in `parts` pieces along axis 0.
    fn write_warcraft(dir: &TempDir, name: &str, t: &Tensor, parts: usize) -> Result<()> {
        if parts == 1 {
            return t.write_npy(dir.file(&format!("{name}.npy")));
        }
        let n = t.dim(0)?;
        let step = n.div_ceil(parts);
        for i in 0..parts {
            let start = (i * step).min(n);
            let len = step.min(n - start);
            t.narrow(0, start, len)?
                .write_npy(dir.file(&format!("{name}_part{i}.npy")))?;
        }
        Ok(())
    }

    #[test]
    fn warcraft_split_in_parts_is_stacked() -> Result<()> {
        let dir = TempDir::new();
        let n = 5;
        let bytes: Vec<u8> = (0..n * 4 * 4 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let maps = Tensor::from_vec(bytes, (n, 4, 4, 3), &Device::Cpu)?;
        let costs =
            (Tensor::arange(0f32, (n * 4) as f32, &Device::Cpu)? + 1.0)?.reshape((n, 2, 2))?;
        let paths = Tensor::new(&[[1f32, 0.0], [0.0, 1.0]], &Device::Cpu)?
            .unsqueeze(0)?
            .repeat((n, 1, 1))?;
        write_warcraft(&dir, "train_maps", &maps, 2)?;
        write_warcraft(&dir, "train_vertex_weights", &costs, 2)?;
        write_warcraft(&dir, "train_shortest_paths", &paths, 3)?;
        let data = ShortestPathData::warcraft(&dir.0, "train")?;
        assert_eq!(data.len(), n);
        assert_eq!(data.costs.to_vec3::<f32>()?, costs.to_vec3::<f32>()?);
        assert_eq!(
            data.paths.unwrap().to_vec3::<f32>()?,
            paths.to_vec3::<f32>()?
        );
        let expected = (maps.to_dtype(DType::F32)?.permute((0, 3, 1, 2))? / 255.0)?;
        let diff = data
            .features
            .broadcast_sub(&expected)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(diff < 1e-6, "{diff}");
        // A single file is preferred over parts; parts of other names are left alone.
        costs.write_npy(dir.file("train_vertex_weights.npy"))?;
        assert_eq!(ShortestPathData::warcraft(&dir.0, "train")?.len(), n);
        // A lone part0 names the missing part1.
        std::fs::remove_file(dir.file("train_maps_part1.npy")).unwrap();
        let lone = ShortestPathData::warcraft(&dir.0, "train")
            .unwrap_err()
            .to_string();
        assert!(
            lone.contains("train_maps_part1.npy: no such file")
                && lone.contains("train_maps_part0.npy exists"),
            "{lone}"
        );
        // Neither form: both names in the error.
        std::fs::remove_file(dir.file("train_maps_part0.npy")).unwrap();
        let neither = ShortestPathData::warcraft(&dir.0, "train")
            .unwrap_err()
            .to_string();
        assert!(
            neither.contains("train_maps.npy") && neither.contains("train_maps_part0.npy"),
            "{neither}"
        );
        // Parts that do not stack (another image size) are named.
        write_warcraft(&dir, "train_maps", &maps, 2)?;
        maps.narrow(1, 0, 2)?
            .write_npy(dir.file("train_maps_part1.npy"))?;
        let bad = ShortestPathData::warcraft(&dir.0, "train")
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("train_maps_part1.npy") && bad.contains("does not stack"),
            "{bad}"
        );
        Ok(())
    }

    #[test]
    fn load_features_and_costs_from_npy_and_csv() -> Result<()> {
        let dir = TempDir::new();
        let x = Tensor::arange(0f32, 6.0, &Device::Cpu)?.reshape((2, 3))?;
        x.write_npy(dir.file("x.npy"))?;
        std::fs::write(
            dir.file("c.csv"),
            "c0,c1,c2,c3,c4,c5\n1,2,3,4,5,6\n6,5,4,3,2,1\n",
        )
        .unwrap();
        let data = ShortestPathData::load(dir.file("x.npy"), dir.file("c.csv"), Some((2, 3)))?;
        assert_eq!(data.len(), 2);
        assert_eq!(data.grid(), (2, 3));
        assert_eq!(
            data.costs.to_vec3::<f32>()?[1],
            [[6.0, 5.0, 4.0], [3.0, 2.0, 1.0]]
        );
        assert_eq!(data.features.to_vec2::<f32>()?, x.to_vec2::<f32>()?);
        // Flat costs without a grid, a wrong grid, and mismatched N are errors.
        let flat = ShortestPathData::load(dir.file("x.npy"), dir.file("c.csv"), None);
        assert!(flat.unwrap_err().to_string().contains("give the grid"));
        let wrong = ShortestPathData::load(dir.file("x.npy"), dir.file("c.csv"), Some((2, 2)));
        assert!(
            wrong
                .unwrap_err()
                .to_string()
                .contains("6 costs per instance")
        );
        Tensor::zeros((3, 3), DType::F32, &Device::Cpu)?.write_npy(dir.file("x3.npy"))?;
        let n = ShortestPathData::load(dir.file("x3.npy"), dir.file("c.csv"), Some((2, 3)));
        assert!(n.unwrap_err().to_string().contains("must match"));
        let ext = ShortestPathData::load(dir.file("x.json"), dir.file("c.csv"), Some((2, 3)));
        assert!(ext.unwrap_err().to_string().contains("unknown extension"));
        Ok(())
    }

    #[test]
    fn non_finite_costs_are_rejected() -> Result<()> {
        let x = Tensor::zeros((1, 1), DType::F32, &Device::Cpu)?;
        let c = Tensor::new(&[[[1f32, f32::NAN], [1.0, 1.0]]], &Device::Cpu)?;
        let err = ShortestPathData::new(x, c, None, None).unwrap_err();
        assert!(err.to_string().contains("not finite"));
        Ok(())
    }

    #[test]
    fn warcraft_layout() -> Result<()> {
        let dir = TempDir::new();
        // Two 2×2 maps of 2×2 pixels per cell, as u8 NHWC.
        let maps: Vec<u8> = (0..2 * 4 * 4 * 3).map(|i| (i * 5 % 256) as u8).collect();
        write_raw_npy(
            &dir.file("train_maps.npy"),
            "|u1",
            false,
            "(2, 4, 4, 3)",
            &maps,
        );
        let costs = Tensor::new(
            &[[[1f32, 2.0], [3.0, 4.0]], [[0.5, 9.0], [9.0, 0.5]]],
            &Device::Cpu,
        )?;
        costs.write_npy(dir.file("train_vertex_weights.npy"))?;
        let paths = Tensor::new(
            &[[[1f32, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]],
            &Device::Cpu,
        )?;
        paths.write_npy(dir.file("train_shortest_paths.npy"))?;
        let data = ShortestPathData::warcraft(&dir.0, "train")?;
        assert_eq!(data.features.dims(), &[2, 3, 4, 4]);
        assert_eq!(data.grid(), (2, 2));
        // Channel 1 of pixel (0, 1) of map 0 is byte 1·3 + 1 = 4 → 20 / 255.
        let v = data
            .features
            .get(0)?
            .get(1)?
            .get(0)?
            .get(1)?
            .to_scalar::<f32>()?;
        assert!((v - 20.0 / 255.0).abs() < 1e-6);
        assert_eq!(
            data.paths.unwrap().to_vec3::<f32>()?,
            paths.to_vec3::<f32>()?
        );
        // Without the paths file the paths are None; without the maps, a clear error.
        std::fs::remove_file(dir.file("train_shortest_paths.npy")).unwrap();
        assert!(ShortestPathData::warcraft(&dir.0, "train")?.paths.is_none());
        let missing = ShortestPathData::warcraft(&dir.0, "test")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("test_maps.npy") && missing.contains("no such file"));
        Ok(())
    }
}
