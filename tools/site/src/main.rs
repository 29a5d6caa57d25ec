//! Builds the portal's site from the app's wasm, as `cargo leptos build` did after cargo:
//!
//! - wasm-bindgen (`--target web`, the library wasm-bindgen-cli is made of, at the exact
//!   version of the app's `wasm-bindgen`) writes `<site>/<pkg>/<name>.js` and the module,
//!   renamed from `<name>_bg.wasm` to `<name>.wasm`: the name the page's hydration script loads
//!   when leptos was compiled with `LEPTOS_OUTPUT_NAME` set (.cargo/config.toml sets it);
//! - the style sheet is copied to `<site>/<pkg>/<name>.css` (cargo-leptos only reformatted it);
//! - the assets folder is mirrored into the site root (everything there but the pkg folder is
//!   replaced, as cargo-leptos did).
//!
//! Usage: vcd-faas-site --wasm <app.wasm> [--site-root DIR] [--pkg-dir DIR] [--output-name NAME]
//!                      [--style FILE] [--assets DIR]
//! The defaults are the server's (LEPTOS_SITE_ROOT, LEPTOS_SITE_PKG_DIR, LEPTOS_OUTPUT_NAME,
//! else target/site, pkg, vcd-faas) and the repository's style/main.css and public/.

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;
use wasm_bindgen_cli_support::Bindgen;

struct Args {
    wasm: PathBuf,
    site_root: PathBuf,
    pkg_dir: String,
    output_name: String,
    style: PathBuf,
    assets: PathBuf,
}

const USAGE: &str = "usage: vcd-faas-site --wasm <app.wasm> [--site-root DIR] [--pkg-dir DIR] \
                     [--output-name NAME] [--style FILE] [--assets DIR]";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string())
}

fn parse_args() -> Result<Args> {
    let mut wasm = None;
    let mut args = Args {
        wasm: PathBuf::new(),
        site_root: env_or("LEPTOS_SITE_ROOT", "target/site").into(),
        pkg_dir: env_or("LEPTOS_SITE_PKG_DIR", "pkg"),
        output_name: env_or("LEPTOS_OUTPUT_NAME", "vcd-faas"),
        style: "style/main.css".into(),
        assets: "public".into(),
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let known = [
            "--wasm",
            "--site-root",
            "--pkg-dir",
            "--output-name",
            "--style",
            "--assets",
        ];
        if !known.contains(&flag.as_str()) {
            bail!("unknown argument {flag}\n{USAGE}");
        }
        let Some(value) = given.next() else {
            bail!("{flag} needs a value\n{USAGE}")
        };
        match flag.as_str() {
            "--wasm" => wasm = Some(PathBuf::from(value)),
            "--site-root" => args.site_root = value.into(),
            "--pkg-dir" => args.pkg_dir = value,
            "--output-name" => args.output_name = value,
            "--style" => args.style = value.into(),
            _ => args.assets = value.into(),
        }
    }
    args.wasm = wasm.with_context(|| format!("--wasm is missing\n{USAGE}"))?;
    Ok(args)
}

/// wasm-bindgen with wasm-bindgen-cli's defaults for `--target web --out-name <name>`, as
/// cargo-leptos runs it (no `--debug`, no `--keep-debug`), then the module renamed.
fn bindgen(args: &Args, pkg: &Path) -> Result<()> {
    let mut bindgen = Bindgen::new();
    bindgen.web(true)?;
    #[allow(deprecated)]
    bindgen
        .input_path(&args.wasm)
        .out_name(&args.output_name)
        .typescript(true)
        .demangle(true)
        // The CLI's default: the generated init() falls back to `<name>_bg.wasm` next to the
        // script when no path is given (the page always gives one).
        .omit_default_module_path(false)
        .reference_types(false);
    bindgen
        .generate(pkg)
        .with_context(|| format!("wasm-bindgen failed on {}", args.wasm.display()))?;
    let emitted = pkg.join(format!("{}_bg.wasm", args.output_name));
    let wasm = pkg.join(format!("{}.wasm", args.output_name));
    fs::rename(&emitted, &wasm)
        .with_context(|| format!("cannot rename {} to {}", emitted.display(), wasm.display()))?;
    Ok(())
}

/// The site root is emptied (but its pkg folder): never the working folder, one above it, or
/// one holding the assets; and the assets must not hold a pkg folder of their own.
fn check_site_root(site_root: &Path, assets: &Path, pkg_dir: &str) -> Result<()> {
    if assets.join(pkg_dir).exists() {
        bail!(
            "{} holds {pkg_dir}/, the folder the site's own files go in",
            assets.display()
        );
    }
    let root = site_root.canonicalize()?;
    let cwd = std::env::current_dir()?.canonicalize()?;
    let holds_assets = assets.canonicalize().is_ok_and(|at| at.starts_with(&root));
    if cwd.starts_with(&root) || holds_assets {
        bail!(
            "refusing to empty {} for the site: it holds the working folder or the assets",
            root.display()
        );
    }
    Ok(())
}

/// Replaces everything in the site root but the pkg folder with a copy of the assets folder.
fn mirror_assets(assets: &Path, site_root: &Path, pkg_dir: &str) -> Result<usize> {
    for entry in fs::read_dir(site_root)? {
        let entry = entry?;
        if entry.file_name() == pkg_dir {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        }
        .with_context(|| format!("cannot remove {}", path.display()))?;
    }
    if !assets.exists() {
        eprintln!(
            "vcd-faas-site: no assets folder {}; nothing copied",
            assets.display()
        );
        return Ok(0);
    }
    copy_dir(assets, site_root)
}

fn copy_dir(from: &Path, to: &Path) -> Result<usize> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let mut copied = 0;
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let (source, dest) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copied += copy_dir(&source, &dest)?;
        } else {
            fs::copy(&source, &dest).with_context(|| {
                format!("cannot copy {} to {}", source.display(), dest.display())
            })?;
            copied += 1;
        }
    }
    Ok(copied)
}

fn main() {
    // `{:#}`: the error and its causes on one line, without the backtrace RUST_BACKTRACE adds.
    if let Err(e) = parse_args().and_then(|args| build(&args)) {
        eprintln!("vcd-faas-site: {e:#}");
        std::process::exit(1);
    }
}

fn build(args: &Args) -> Result<()> {
    if !args.wasm.is_file() {
        bail!(
            "{} does not exist: build the app first (cargo build -p app --lib --target \
             wasm32-unknown-unknown --no-default-features --features hydrate ...)",
            args.wasm.display()
        );
    }
    if !args.style.is_file() {
        bail!("no style sheet {}", args.style.display());
    }
    fs::create_dir_all(&args.site_root)
        .with_context(|| format!("cannot create {}", args.site_root.display()))?;
    check_site_root(&args.site_root, &args.assets, &args.pkg_dir)?;
    let pkg = args.site_root.join(&args.pkg_dir);
    fs::create_dir_all(&pkg).with_context(|| format!("cannot create {}", pkg.display()))?;

    let started = Instant::now();
    bindgen(args, &pkg)?;
    let size = fs::metadata(pkg.join(format!("{}.wasm", args.output_name)))?.len();
    println!(
        "wasm-bindgen: {}/{name}.js and {name}.wasm ({:.1} MB) in {:.1} s",
        pkg.display(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        name = args.output_name,
    );

    let css = pkg.join(format!("{}.css", args.output_name));
    fs::copy(&args.style, &css)
        .with_context(|| format!("cannot copy {} to {}", args.style.display(), css.display()))?;
    println!("style: {} -> {}", args.style.display(), css.display());

    let started = Instant::now();
    let copied = mirror_assets(&args.assets, &args.site_root, &args.pkg_dir)?;
    println!(
        "assets: {copied} file(s) from {} into {} in {:.1} s",
        args.assets.display(),
        args.site_root.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
