//! Readers for data sets in the formats PyEPO uses (.npy arrays and CSV tables), so that
//! users with PyEPO shortest-path data can train on it.
//!
//! * [`read_npy`]: one `.npy` array as an f32 tensor (any numeric dtype NumPy writes in C
//!   order: `f2`, `f4`, `f8`, `u1`, `u4`, `i2`, `i4`, `i8`), with the file named in errors.
//! * [`read_csv`]: a numeric CSV table as an f32 tensor `[rows, cols]`; a header line is
//!   detected and skipped, and so is the unnamed index column that `pandas.DataFrame.to_csv`
//!   writes by default.
//! * [`read_table`]: either of the two, by file extension.
//! * [`ShortestPathData`]: features, vertex costs `[N, H, W]` and (optionally) the true paths,
//!   checked against each other; [`ShortestPathData::warcraft`] reads the Warcraft layout
//!   that PyEPO's tutorials use (`{split}_maps.npy`, `{split}_vertex_weights.npy`,
//!   `{split}_shortest_paths.npy`).
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use imle_runtime::data::{ShortestPathData, read_npy};
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
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use candle_core::{DType, Device, Error, Result, Tensor};
use std::path::Path;

fn data_error(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Msg(format!("{}: {message}", path.display()))
}

/// Reads a `.npy` file as an f32 tensor on the CPU.
///
/// Errors name the file: a missing file, a file that is not `.npy` (bad magic string), an
/// unsupported dtype, Fortran order (save with `np.ascontiguousarray`), or a truncated body.
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
    let path = path.as_ref();
    if !path.is_file() {
        return Err(data_error(path, "no such file"));
    }
    let tensor = Tensor::read_npy(path).map_err(|e| data_error(path, format!("not read: {e}")))?;
    tensor.to_dtype(DType::F32)
}

/// Reads a numeric CSV table as an f32 tensor `[rows, cols]` on the CPU.
///
/// Fields are separated by commas (whitespace around them is ignored). The first line is a
/// header, and skipped, if any of its fields is not a number; if that header's first field is
/// empty (pandas' unnamed index column), the first column is dropped from every row. Empty
/// lines are skipped. Errors name the file and the line: a field that is not a number, rows
/// of different lengths, an empty table.
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
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| data_error(path, e))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .peekable();
    let mut drop_index = false;
    if let Some((_, first)) = lines.peek() {
        let fields: Vec<&str> = first.split(',').map(str::trim).collect();
        if fields.iter().any(|f| f.parse::<f32>().is_err()) {
            drop_index = fields[0].is_empty();
            lines.next();
        }
    }
    let mut values = Vec::new();
    let (mut rows, mut cols) = (0usize, None);
    for (number, line) in lines {
        let mut fields = line.split(',').map(str::trim);
        if drop_index {
            fields.next();
        }
        let before = values.len();
        for (col, field) in fields.enumerate() {
            let value = field.parse::<f32>().map_err(|_| {
                data_error(
                    path,
                    format!(
                        "line {}, column {}: {field:?} is not a number",
                        number + 1,
                        col + 1
                    ),
                )
            })?;
            values.push(value);
        }
        let width = values.len() - before;
        match cols {
            None => cols = Some(width),
            Some(c) if c != width => {
                return Err(data_error(
                    path,
                    format!(
                        "line {} has {width} values, earlier rows have {c}",
                        number + 1
                    ),
                ));
            }
            Some(_) => {}
        }
        rows += 1;
    }
    match cols {
        Some(cols) if rows > 0 && cols > 0 => Tensor::from_vec(values, (rows, cols), &Device::Cpu),
        _ => Err(data_error(path, "the table has no numeric rows")),
    }
}

/// Reads a `.npy` file with [`read_npy`] or a `.csv` / `.txt` file with [`read_csv`], by the
/// file's extension.
///
/// ```
/// assert!(imle_runtime::data::read_table("costs.parquet").unwrap_err().to_string().contains(".npy"));
/// ```
pub fn read_table(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("npy") => read_npy(path),
        Some(e) if e.eq_ignore_ascii_case("csv") || e.eq_ignore_ascii_case("txt") => read_csv(path),
        _ => Err(data_error(
            path,
            "unknown extension: expected .npy, or .csv / .txt for a CSV table",
        )),
    }
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
    /// (`[N, H·W]`, as in a CSV table).
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
    /// ```no_run
    /// use imle_runtime::data::ShortestPathData;
    /// let train = ShortestPathData::warcraft("warcraft_shortest_path/12x12", "train")?;
    /// assert_eq!(train.grid(), (12, 12));
    /// # Ok::<(), candle_core::Error>(())
    /// ```
    pub fn warcraft(dir: impl AsRef<Path>, split: &str) -> Result<Self> {
        let dir = dir.as_ref();
        let maps_path = dir.join(format!("{split}_maps.npy"));
        let costs_path = dir.join(format!("{split}_vertex_weights.npy"));
        let paths_path = dir.join(format!("{split}_shortest_paths.npy"));
        let raw = Tensor::read_npy(&maps_path);
        let raw = match raw {
            Ok(t) => t,
            Err(e) => {
                if !maps_path.is_file() {
                    return Err(data_error(&maps_path, "no such file"));
                }
                return Err(data_error(&maps_path, format!("not read: {e}")));
            }
        };
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
        let costs = read_npy(&costs_path)?;
        let paths = if paths_path.is_file() {
            Some(read_npy(&paths_path)?)
        } else {
            None
        };
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
        assert!(ragged.contains("line 2 has 1 values"), "{ragged}");
        std::fs::write(dir.file("empty.csv"), "a,b\n").unwrap();
        let empty = read_csv(dir.file("empty.csv")).unwrap_err().to_string();
        assert!(empty.contains("no numeric rows"), "{empty}");
        assert!(read_csv(dir.file("none.csv")).is_err());
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
