//! Embeds the migrations and the page templates into the binary, so it runs from any directory
//! (and in a container image that ships only the executable).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    // New migration folders must be picked up by `embed_migrations!`.
    println!("cargo:rerun-if-changed=../migrations");
    // A directory here makes cargo rescan every file below it.
    println!("cargo:rerun-if-changed=templates");

    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.join("templates");
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();

    let mut out = String::from("/// Every template under `templates/`, by name relative to it.\n");
    out.push_str("pub const TEMPLATES: &[(&str, &str)] = &[\n");
    for file in &files {
        let name = file
            .strip_prefix(&root)
            .expect("below the templates folder")
            .to_string_lossy()
            .replace('\\', "/");
        writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            file.display().to_string()
        )
        .expect("writing to a string");
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    std::fs::write(out_dir.join("templates.rs"), out).expect("writing templates.rs");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path
            .extension()
            .is_some_and(|ext| ext == "html" || ext == "txt")
        {
            files.push(path);
        }
    }
}
