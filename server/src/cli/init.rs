//! `fn init`: a new folder with a function that works as it is — the portal's hello template,
//! an empty dependency manifest to add packages to, and `vcd-faas.json`.

use super::args::InitArgs;
use super::error::{CliError, CliResult};
use super::folder::{Manifest, MANIFEST_FILE};
use std::path::{Path, PathBuf};

pub fn init(args: &InitArgs) -> CliResult {
    app::model::validate_name("function name", &args.name).map_err(|why| CliError::Usage(format!("{why} (got {:?})", args.name)))?;
    let language = args.language.language();
    let folder = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    make_empty_folder(&folder)?;
    let (dependencies_file, dependencies) = language.manifest_example();
    let manifest = Manifest { name: Some(args.name.clone()), language: Some(language.as_str().into()), ..Manifest::default() };
    let files = [
        (language.entry_file(), language.hello_template().to_string()),
        (dependencies_file, dependencies.replace("my-function", &args.name)),
        (MANIFEST_FILE, format!("{}\n", serde_json::to_string_pretty(&manifest).expect("a manifest serializes"))),
    ];
    for (name, content) in files {
        let path = folder.join(name);
        std::fs::write(&path, content).map_err(|e| CliError::io("write", &path, e))?;
    }
    eprintln!("made {} ({} function {:?}); deploy it with: vcd-faas fn deploy {}", folder.display(), language.label(), args.name, folder.display());
    Ok(())
}

/// Makes `folder`, or takes it if it exists and is empty; never writes over files.
fn make_empty_folder(folder: &Path) -> CliResult {
    match std::fs::read_dir(folder) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(CliError::Usage(format!("{} exists and is not empty: choose another name or --dir", folder.display())));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(folder).map_err(|e| CliError::io("make the folder", folder, e)),
        Err(e) => Err(CliError::Usage(format!("cannot use {}: {e}", folder.display()))),
    }
}
