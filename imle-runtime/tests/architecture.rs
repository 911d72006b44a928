//! The module boundaries ARCHITECTURE.md states, checked on the source: each module of the
//! runtime imports (`crate::…`) only modules of a lower layer, so there is no import cycle;
//! the layer has no device branch; `noise/` and the built-in solvers know no tensors or
//! devices. Comments and `#[cfg(test)] mod tests` blocks are not imports and are skipped.

use std::collections::BTreeMap;
use std::path::Path;

/// Every module and its layer: a module may import only modules of a strictly lower layer.
/// A new module must be added here (the test fails otherwise), which is the point: its place
/// is decided once.
const LAYERS: &[(&str, u32)] = &[
    ("error", 0),
    ("noise", 1),
    ("target", 1),
    ("host", 1),
    ("loss", 1),
    ("config", 2),
    ("init", 2),
    ("solver", 3),
    ("state", 3),
    ("plumbing", 4),
    ("solvers", 4),
    ("cuda", 4),
    ("op", 5),
    ("noise_tensor", 5),
    ("perturbed", 5),
    ("spo", 5),
    ("layer", 6),
    ("straight_through", 7),
    ("context", 8),
    ("macro_support", 9),
];

/// The source of every `.rs` file under `dir`, by path relative to `src/`.
fn sources(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.insert(relative, std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)] mod tests` block (which
/// comes last in every file of this crate).
fn code(source: &str) -> String {
    let source = match source.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &source[..at],
        None => source,
    };
    source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module a file belongs to (`op/cpu.rs` → `op`), or `None` for `lib.rs` and
/// test-only files.
fn module_of(file: &str) -> Option<&str> {
    let test_only = ["noise/tests.rs", "noise/test_stats.rs", "noise/gamma.rs"];
    if file == "lib.rs" || test_only.contains(&file) {
        return None;
    }
    Some(file.split(['/', '.']).next().unwrap())
}

/// The top-level modules `code` names as `crate::module`.
fn imports(code: &str) -> Vec<String> {
    code.match_indices("crate::")
        .map(|(at, _)| {
            code[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

fn runtime_sources() -> BTreeMap<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    sources(&root, &root, &mut files);
    files
}

/// Whether `code` has `word` as a whole identifier (so `DeviceKernel` is not `Device`).
fn mentions(code: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    code.match_indices(word).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

#[test]
fn modules_import_only_lower_layers() {
    let layer = |name: &str| LAYERS.iter().find(|(m, _)| *m == name).map(|(_, l)| *l);
    let mut violations = Vec::new();
    for (file, source) in runtime_sources() {
        let Some(module) = module_of(&file) else {
            continue;
        };
        let own = layer(module)
            .unwrap_or_else(|| panic!("module `{module}` ({file}) has no layer in LAYERS"));
        for import in imports(&code(&source)) {
            if import == module {
                continue;
            }
            match layer(&import) {
                Some(l) if l < own => {}
                // Crate-root re-exports (`crate::TopK`) are lowercase-free and never match.
                Some(l) => violations.push(format!(
                    "{file} (`{module}`, layer {own}) imports `{import}` (layer {l})"
                )),
                None => violations.push(format!("{file} imports unknown module `{import}`")),
            }
        }
    }
    assert!(
        violations.is_empty(),
        "layering violations:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_layer_never_branches_on_the_device() {
    let files = runtime_sources();
    let layer = code(&files["layer.rs"]);
    for forbidden in [
        "cfg(feature",
        "Device::Cuda",
        "is_cuda",
        "cuda::",
        "apply_op",
    ] {
        assert!(
            !layer.contains(forbidden),
            "layer.rs contains `{forbidden}`"
        );
    }
}

#[test]
fn noise_and_the_built_in_solvers_know_no_tensors_or_devices() {
    for (file, source) in runtime_sources() {
        let pure = (file.starts_with("noise/") && module_of(&file).is_some())
            || file.starts_with("solvers/");
        if !pure {
            continue;
        }
        let code = code(&source);
        for forbidden in [
            "Tensor",
            "Device",
            "candle_core::cuda_backend",
            "feature = \"cuda\"",
        ] {
            assert!(!mentions(&code, forbidden), "{file} mentions `{forbidden}`");
        }
    }
}
