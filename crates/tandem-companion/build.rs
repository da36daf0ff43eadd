//! Embeds every psychoeducation file in `content/` (`*.md`), so adding an item is adding a
//! file: no Rust change. The files are parsed and validated at start-up by `Library`.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("content");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    let mut out = String::from("&[\n");
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("content file name is not UTF-8")?;
        let full = path.to_str().ok_or("content path is not UTF-8")?;
        writeln!(out, "    ({name:?}, include_str!({full:?})),")?;
    }
    out.push(']');
    let dest = PathBuf::from(std::env::var("OUT_DIR")?).join("builtin_content.rs");
    std::fs::write(dest, out)?;
    Ok(())
}
