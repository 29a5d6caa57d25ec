//! A function's files from a zip archive, read defensively: the unpacked size is capped while
//! reading (a zip bomb stops at the cap, whatever its headers claim), and links, devices,
//! duplicate paths and binary files are refused at the entry that has them.

use app::files::{check_path, file_field, human_bytes, FileTree, MAX_FILES};
use app::model::FieldError;
use std::io::Read;

/// `S_IFMT` bits of a Unix mode as zip archivers store it.
const FILE_TYPE_MASK: u32 = 0o170000;
const REGULAR_FILE: u32 = 0o100000;
const DIRECTORY: u32 = 0o040000;

/// The tree in a zip archive. A zip made of one folder (`my-function/handler.js`, …) is read
/// as that folder's contents, as archivers make them when a folder is zipped.
pub fn read_zip(bytes: &[u8], max_bytes: usize) -> Result<FileTree, Vec<FieldError>> {
    let refuse = |message: String| vec![FieldError::new("files", message)];
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| refuse(format!("not a zip archive ({e}): upload a .zip of the function's folder")))?;
    if let Some(entries) = central_directory_entries(bytes).filter(|&n| n > archive.len()) {
        return Err(refuse(format!(
            "the archive holds the same path more than once ({entries} entries, {} distinct paths): zip each file once",
            archive.len()
        )));
    }
    if archive.len() > 4 * MAX_FILES {
        return Err(refuse(format!("the archive has {} entries; a function may have at most {MAX_FILES} files", archive.len())));
    }
    let mut files = FileTree::new();
    let mut errors = Vec::new();
    let mut unpacked = 0usize;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| refuse(format!("entry {index} of the archive cannot be read: {e}")))?;
        let path = entry.name().to_string();
        let kind = entry.unix_mode().map(|mode| mode & FILE_TYPE_MASK);
        if entry.is_dir() || kind == Some(DIRECTORY) {
            continue;
        }
        if entry.is_symlink() || kind.is_some_and(|k| k != REGULAR_FILE && k != 0) {
            let what = if entry.is_symlink() { "a symbolic link" } else { "a device or other special file" };
            errors.push(FieldError::new(file_field(&path), format!("{path:?} is {what}: a function's files are regular text files")));
            continue;
        }
        if let Err(e) = check_path(&path) {
            errors.push(FieldError::new(file_field(&path), e));
            continue;
        }
        // Read at most one byte past what is left, whatever size the entry claims.
        let room = max_bytes.saturating_sub(unpacked);
        let mut content = Vec::new();
        if let Err(e) = (&mut entry).take(room as u64 + 1).read_to_end(&mut content) {
            errors.push(FieldError::new(file_field(&path), format!("{path:?} cannot be unpacked: {e}")));
            continue;
        }
        unpacked += content.len();
        if content.len() > room {
            return Err(refuse(format!(
                "the archive unpacks to more than {}, the most the provider allows for a function's files",
                human_bytes(max_bytes)
            )));
        }
        let Ok(text) = String::from_utf8(content) else {
            errors.push(FieldError::new(file_field(&path), format!("{path:?} is not UTF-8 text: a function's files are text (source, JSON, data)")));
            continue;
        };
        if files.insert(path.clone(), text).is_some() {
            errors.push(FieldError::new(file_field(&path), format!("{path:?} is in the archive twice")));
        }
        if files.len() > MAX_FILES {
            return Err(refuse(format!("the archive has more than {MAX_FILES} files, the most a function may have")));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(strip_single_folder(files))
}

/// The entry count the archive's end record states. The zip reader keeps one entry per name,
/// so a larger count means a path is in it twice, and which copy counts would be a guess.
fn central_directory_entries(bytes: &[u8]) -> Option<usize> {
    const END_RECORD: &[u8] = b"PK\x05\x06";
    // The end record is the last 22 bytes plus a comment of up to 64 KB.
    let from = bytes.len().saturating_sub(22 + 65_535);
    let at = bytes[from..].windows(4).rposition(|w| w == END_RECORD)? + from;
    let total = u16::from_le_bytes(bytes.get(at + 10..at + 12)?.try_into().ok()?);
    // 0xFFFF: the count is in the zip64 record instead.
    (total != u16::MAX).then_some(total as usize)
}

/// `folder/a`, `folder/b` → `a`, `b`: when every file is inside one top folder.
fn strip_single_folder(files: FileTree) -> FileTree {
    let mut tops = files.keys().map(|path| path.split_once('/').map(|(top, _)| top));
    let Some(Some(first)) = tops.next() else { return files };
    let first = first.to_string();
    if !tops.all(|top| top == Some(first.as_str())) {
        return files;
    }
    files.into_iter().map(|(path, content)| (path[first.len() + 1..].to_string(), content)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (path, content) in entries {
            writer.start_file(*path, SimpleFileOptions::default()).unwrap();
            writer.write_all(content).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn a_zipped_folder_is_read_as_its_contents() {
        let bytes = zip_of(&[("fn/handler.js", b"module.exports = () => 1"), ("fn/lib/util.js", b"exports.x = 1")]);
        let files = read_zip(&bytes, 1 << 20).unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), ["handler.js", "lib/util.js"]);
    }

    #[test]
    fn a_bomb_stops_at_the_cap() {
        // 50 MB of zeros compresses to about 50 KB.
        let zeros = vec![b'0'; 50 * 1024 * 1024];
        let bytes = zip_of(&[("handler.js", &zeros)]);
        assert!(bytes.len() < 1024 * 1024, "{}", bytes.len());
        let errors = read_zip(&bytes, 10 * 1024 * 1024).unwrap_err();
        assert!(errors[0].message.contains("unpacks to more than 10.0 MB"), "{errors:?}");
    }

    #[test]
    fn links_traversal_binaries_and_garbage_are_refused_at_the_entry() {
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        writer.add_symlink("link.js", "/etc/passwd", SimpleFileOptions::default()).unwrap();
        writer.start_file("../escape.js", SimpleFileOptions::default()).unwrap();
        writer.write_all(b"x").unwrap();
        writer.start_file("image.bin", SimpleFileOptions::default()).unwrap();
        writer.write_all(&[0xff, 0xfe, 0x00]).unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        let errors = read_zip(&bytes, 1 << 20).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["files/link.js", "files/../escape.js", "files/image.bin"], "{errors:?}");
        assert!(read_zip(b"not a zip", 1 << 20).unwrap_err()[0].message.contains("not a zip archive"));
    }
}
