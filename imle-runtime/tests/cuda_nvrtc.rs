//! Compiles the CUDA kernels (`imle_runtime::cuda::KERNELS`) with NVRTC, exactly as the `cuda`
//! feature does at run time, wherever libnvrtc is installed: no GPU and no `cuda` feature are
//! needed, so a kernel that does not compile fails the default build's tests.
//!
//! The library is looked up in `$IMLE_NVRTC` (a path), `$CUDA_ROOT/lib64`, `$CUDA_HOME/lib64`,
//! `/usr/local/cuda/lib64`, `/opt/imle-cuda-13.0/lib64`, then the loader's search path. Without
//! it the tests pass having checked nothing, and say so where CI shows it: `support/skip.rs`
//! records the skip and `.ci/run` prints a `SKIPPED: ...` line for it. With
//! `IMLE_REQUIRE_NVRTC=1` (for machines that have a CUDA toolkit) a missing libnvrtc fails
//! the tests instead. CI does not set it: its image has no CUDA toolkit.

#[path = "support/skip.rs"]
mod skip;

use imle_runtime::cuda::{KERNEL_NAMES, KERNELS, NVRTC_OPTIONS};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::PathBuf;

type Program = *mut c_void;
type Status = c_int;

/// The NVRTC entry points this test uses (stable C API since CUDA 7).
struct Nvrtc {
    _library: libloading::Library,
    /// NVRTC opens its builtins library by name at compile time; loaded first from NVRTC's
    /// own folder, it is found even when that folder is not on the loader's search path.
    _builtins: Option<libloading::Library>,
    version: unsafe extern "C" fn(*mut c_int, *mut c_int) -> Status,
    create: unsafe extern "C" fn(
        *mut Program,
        *const c_char,
        *const c_char,
        c_int,
        *const *const c_char,
        *const *const c_char,
    ) -> Status,
    compile: unsafe extern "C" fn(Program, c_int, *const *const c_char) -> Status,
    log_size: unsafe extern "C" fn(Program, *mut usize) -> Status,
    log: unsafe extern "C" fn(Program, *mut c_char) -> Status,
    ptx_size: unsafe extern "C" fn(Program, *mut usize) -> Status,
    ptx: unsafe extern "C" fn(Program, *mut c_char) -> Status,
    destroy: unsafe extern "C" fn(*mut Program) -> Status,
}

fn candidates() -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Ok(path) = std::env::var("IMLE_NVRTC") {
        paths.push(PathBuf::from(path));
    }
    let mut dirs: Vec<PathBuf> = ["CUDA_ROOT", "CUDA_HOME", "CUDA_PATH"]
        .iter()
        .filter_map(|var| std::env::var(var).ok())
        .map(|root| PathBuf::from(root).join("lib64"))
        .collect();
    dirs.push("/usr/local/cuda/lib64".into());
    dirs.push("/opt/imle-cuda-13.0/lib64".into());
    for dir in dirs {
        for name in ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"] {
            paths.push(dir.join(name));
        }
    }
    for name in ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"] {
        paths.push(PathBuf::from(name));
    }
    paths
}

fn load() -> Result<Nvrtc, String> {
    let mut tried = Vec::new();
    for path in candidates() {
        let is_bare = path.components().count() == 1;
        if !is_bare && !path.exists() {
            continue;
        }
        let builtins = path.parent().and_then(builtins_next_to);
        // SAFETY: loading NVRTC runs its (well-behaved) initialisers only.
        match unsafe { libloading::Library::new(&path) } {
            Ok(library) => {
                return bind(library, builtins).map_err(|e| format!("{}: {e}", path.display()));
            }
            Err(e) => tried.push(format!("{} ({e})", path.display())),
        }
    }
    Err(format!("libnvrtc not found (tried {})", tried.len()))
}

/// NVRTC's builtins library in `dir`, loaded, if there is one.
fn builtins_next_to(dir: &std::path::Path) -> Option<libloading::Library> {
    let entries = std::fs::read_dir(dir).ok()?;
    let path = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("libnvrtc-builtins.so.") && !name.contains("alt")
        })
        .max()?;
    // SAFETY: as for NVRTC itself.
    unsafe { libloading::Library::new(path) }.ok()
}

fn bind(
    library: libloading::Library,
    builtins: Option<libloading::Library>,
) -> Result<Nvrtc, libloading::Error> {
    // SAFETY: each symbol is read with the signature of NVRTC's C API (nvrtc.h).
    unsafe {
        Ok(Nvrtc {
            version: *library.get(b"nvrtcVersion")?,
            create: *library.get(b"nvrtcCreateProgram")?,
            compile: *library.get(b"nvrtcCompileProgram")?,
            log_size: *library.get(b"nvrtcGetProgramLogSize")?,
            log: *library.get(b"nvrtcGetProgramLog")?,
            ptx_size: *library.get(b"nvrtcGetPTXSize")?,
            ptx: *library.get(b"nvrtcGetPTX")?,
            destroy: *library.get(b"nvrtcDestroyProgram")?,
            _library: library,
            _builtins: builtins,
        })
    }
}

/// Reads a NUL-terminated string of `size` bytes through `read`.
fn read_string(size: usize, read: impl FnOnce(*mut c_char) -> Status) -> String {
    let mut buffer = vec![0u8; size.max(1)];
    assert_eq!(read(buffer.as_mut_ptr().cast()), 0);
    CStr::from_bytes_until_nul(&buffer)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Nvrtc {
    /// Compiles `source` for `arch`: the PTX, or the compiler's log.
    fn compile_ptx(&self, source: &str, arch: &str) -> Result<String, String> {
        let source = CString::new(source).unwrap();
        let name = CString::new("imle_kernels.cu").unwrap();
        let options: Vec<CString> = NVRTC_OPTIONS
            .iter()
            .map(|o| o.to_string())
            .chain([format!("--gpu-architecture={arch}")])
            .map(|o| CString::new(o).unwrap())
            .collect();
        let option_ptrs: Vec<*const c_char> = options.iter().map(|o| o.as_ptr()).collect();
        let mut program: Program = std::ptr::null_mut();
        // SAFETY: NVRTC's documented calling sequence; every pointer outlives the calls.
        unsafe {
            let created = (self.create)(
                &mut program,
                source.as_ptr(),
                name.as_ptr(),
                0,
                std::ptr::null(),
                std::ptr::null(),
            );
            assert_eq!(created, 0, "nvrtcCreateProgram failed ({created})");
            let status = (self.compile)(program, option_ptrs.len() as c_int, option_ptrs.as_ptr());
            let result = if status == 0 {
                let mut size = 0;
                assert_eq!((self.ptx_size)(program, &mut size), 0);
                Ok(read_string(size, |buffer| (self.ptx)(program, buffer)))
            } else {
                let mut size = 0;
                assert_eq!((self.log_size)(program, &mut size), 0);
                Err(read_string(size, |buffer| (self.log)(program, buffer)))
            };
            (self.destroy)(&mut program);
            result
        }
    }
}

/// Set to make a missing libnvrtc a failure.
const REQUIRE: &str = "IMLE_REQUIRE_NVRTC";

#[test]
fn nvrtc_compiles_every_kernel() {
    let nvrtc = match load() {
        Ok(nvrtc) => nvrtc,
        Err(why) => {
            let why = format!("the CUDA kernels were not compiled: {why}");
            skip::skip_unless_required("cuda_nvrtc::nvrtc_compiles_every_kernel", REQUIRE, &why);
            return;
        }
    };
    let (mut major, mut minor) = (0, 0);
    // SAFETY: two out-parameters.
    unsafe { (nvrtc.version)(&mut major, &mut minor) };
    println!("NVRTC {major}.{minor}");
    // Turing (the oldest architecture CUDA 13 supports) and Hopper (H100/H200).
    for arch in ["compute_75", "compute_90"] {
        let ptx = nvrtc
            .compile_ptx(KERNELS, arch)
            .unwrap_or_else(|log| panic!("NVRTC rejected the kernels for {arch}:\n{log}"));
        for name in KERNEL_NAMES {
            assert!(
                ptx.contains(&format!(".entry {name}(")),
                "{arch}: no entry point {name} in the PTX"
            );
        }
        // The noise must not be contracted into fused multiply-adds (see NVRTC_OPTIONS).
        assert!(!ptx.contains("fma.rn.f32"), "{arch}: the PTX has f32 FMAs");
        assert!(!ptx.contains(".ftz"), "{arch}: the PTX flushes subnormals");
    }
}

#[test]
fn nvrtc_reports_errors() {
    let nvrtc = match load() {
        Ok(nvrtc) => nvrtc,
        Err(why) => {
            skip::skip_unless_required("cuda_nvrtc::nvrtc_reports_errors", REQUIRE, &why);
            return;
        }
    };
    let log = nvrtc
        .compile_ptx(
            "extern \"C\" __global__ void broken() { undefined_name; }",
            "compute_90",
        )
        .expect_err("a kernel with an undefined name compiled");
    assert!(log.contains("undefined_name"), "log: {log}");
}
