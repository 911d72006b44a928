//! Data for `imle`: readers for data sets in the formats PyEPO users have (.npy arrays and CSV
//! tables), so that users with PyEPO shortest-path data can train on it, and PyEPO's data
//! generators and regret. A crate apart from the layer's runtime (as candle keeps
//! `candle-datasets`), so that users of the layer do not compile the CSV reader.
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
//! * [`PyEpoData`]: PyEPO's layout (features `x`, costs `c`, optionally true solutions `w`
//!   and objectives `z`), read from `x_{split}.npy`, `c_{split}.npy`, … or CSV files with
//!   [`PyEpoData::read`]; [`shortest_path_data`] and [`knapsack_data`] generate it as PyEPO's
//!   `genData` does (arc costs of a grid network, knapsack item values); [`regret`] and
//!   [`normalized_regret`] are PyEPO's metric.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use imle_data::{CsvOptions, Delimiter, Header, ShortestPathData, read_npy};
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

#![warn(missing_docs)]

mod csv;
mod npy;
mod pyepo;
mod warcraft;

pub use self::csv::{CsvOptions, CsvReport, Delimiter, Header, IndexColumn, read_csv};
pub use self::npy::read_npy;
pub use self::pyepo::{PyEpoData, knapsack_data, normalized_regret, regret, shortest_path_data};
pub use self::warcraft::ShortestPathData;

use candle_core::{Error, Result, Tensor};
use std::fmt;
use std::path::Path;

/// An error about one file (or directory): its path, then the problem.
fn data_error(path: &Path, message: impl fmt::Display) -> Error {
    Error::Msg(format!("{}: {message}", path.display()))
}

/// Reads a `.npy` file with [`read_npy`] or a `.csv` / `.txt` / `.tsv` file with [`read_csv`]
/// (every option `Auto`), by the file's extension.
///
/// ```
/// assert!(imle_data::read_table("costs.parquet").unwrap_err().to_string().contains(".npy"));
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

/// Helpers shared by the tests of the submodules.
#[cfg(test)]
pub(crate) mod test_util {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh temp directory for one test, removed when dropped.
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "imle-data-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        pub(crate) fn file(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A `.npy` file written by hand (version 1.0 header), as NumPy writes it.
    pub(crate) fn write_raw_npy(path: &Path, descr: &str, fortran: bool, shape: &str, body: &[u8]) {
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
}
