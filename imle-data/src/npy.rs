//! `.npy` reading: [`read_npy`] and the header checks that name what candle does not read.

use super::data_error;
use candle_core::{DType, Result, Tensor};
use std::path::Path;

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
/// let t = imle_data::read_npy(&path)?;
/// assert_eq!(t.to_vec1::<f32>()?, vec![1.0, 2.0, 3.0]);
/// assert!(imle_data::read_npy("/no/such/file.npy").unwrap_err().to_string().contains("/no/such/file.npy"));
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), candle_core::Error>(())
/// ```
pub fn read_npy(path: impl AsRef<Path>) -> Result<Tensor> {
    read_npy_native(path.as_ref())?.to_dtype(DType::F32)
}

/// [`read_npy`] without the conversion to f32: the tensor in the dtype candle gives it.
pub(super) fn read_npy_native(path: &Path) -> Result<Tensor> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{TempDir, write_raw_npy};

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
}
