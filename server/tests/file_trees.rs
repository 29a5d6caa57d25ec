//! A function's files through the REST API, with no Docker engine behind it: trees in JSON and
//! in zip archives, every refused tree answered at the file that is wrong, and nothing stored
//! lost by a refusal. Runs on SQLite and on PostgreSQL.

mod common;

use common::offline::OfflineApp;
use common::Db;
use serde_json::{json, Value};
use std::io::Write;
use zip::write::SimpleFileOptions;

const HANDLER: &str = "const util = require('./lib/util');\nmodule.exports = async () => util.greet();\n";
const UTIL: &str = "exports.greet = () => 'hi';\n";

fn fields(body: &Value) -> Vec<String> {
    body["fields"].as_array().map(|f| f.iter().map(|e| e["field"].as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

/// Every field error's message, as the user reads them.
fn messages(body: &Value) -> String {
    body["fields"].as_array().map(|f| f.iter().map(|e| e["message"].as_str().unwrap()).collect::<Vec<_>>().join("\n")).unwrap_or_default()
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, content) in entries {
        writer.start_file(*path, SimpleFileOptions::default()).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

async fn files_are_stored_per_version_and_code_is_shorthand(db: Db) {
    let app = OfflineApp::new(db).await;
    let t = app.tenant().await;
    let files = json!({"handler.js": HANDLER, "lib/util.js": UTIL, "data/table.json": "{\"a\": 1}"});
    let (status, body) =
        app.send("POST", "/api/v1/functions", Some(&t.dev), Some(json!({"name": "tree", "language": "nodejs", "files": files}))).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["files"], files);
    assert_eq!(body["code"], HANDLER, "code is the entry file");

    // `code` alone replaces the entry file and keeps the others.
    let (status, body) = app.send("PUT", "/api/v1/functions/tree", Some(&t.dev), Some(json!({"code": "module.exports = () => 2;"}))).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["files"]["lib/util.js"], UTIL);
    assert_eq!(body["files"]["handler.js"], "module.exports = () => 2;");
    // A setting alone keeps every file.
    let (status, body) = app.send("PUT", "/api/v1/functions/tree", Some(&t.dev), Some(json!({"memory_mb": 64}))).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!((body["latest_version"].as_i64(), body["files"].as_object().unwrap().len()), (Some(3), 3));

    // A zip is a new version; a zipped folder is read as its contents.
    let archive = zip_of(&[("tree/handler.js", HANDLER.as_bytes()), ("tree/lib/util.js", b"exports.greet = () => 'zipped';\n")]);
    let (status, body) = app.send_bytes("PUT", "/api/v1/functions/tree/code", &t.dev, "application/zip", archive).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["latest_version"], 4);
    assert_eq!(body["files"], json!({"handler.js": HANDLER, "lib/util.js": "exports.greet = () => 'zipped';\n"}));

    // Every version keeps its own files.
    let (status, v1) = app.send("GET", "/api/v1/functions/tree/versions/1", Some(&t.dev), None).await;
    assert_eq!(status, 200);
    assert_eq!(v1["files"], files);
    // Another tenant sees none of it, not even by name.
    let other = app.tenant().await;
    let (status, _) = app.send("GET", "/api/v1/functions/tree/versions/1", Some(&other.dev), None).await;
    assert_eq!(status, 404);
    let (status, _) = app.send_bytes("PUT", "/api/v1/functions/tree/code", &other.dev, "application/zip", zip_of(&[("handler.js", b"x")])).await;
    assert_eq!(status, 404);
}

async fn refused_trees_are_answered_at_the_file_and_lose_nothing(db: Db) {
    let app = OfflineApp::new(db).await;
    let t = app.tenant().await;
    let good = json!({"handler.py": "from lib import util\ndef handle(e, c):\n    return util.X\n", "lib/util.py": "X = 1\n"});
    let (status, body) =
        app.send("POST", "/api/v1/functions", Some(&t.dev), Some(json!({"name": "kept", "language": "python", "files": good}))).await;
    assert_eq!(status, 202, "{body}");

    let many: serde_json::Map<String, Value> =
        (0..501).map(|i| (format!("m/{i}.py"), json!("X = 1"))).chain([("handler.py".to_string(), json!("def handle(e, c): pass"))]).collect();
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"handler.py": "x", "/etc/passwd": "x"}), "files//etc/passwd", "absolute"),
        (json!({"handler.py": "x", "../up.py": "x"}), "files/../up.py", "\"..\" segment"),
        (json!({"handler.py": "x", "lib\\win.py": "x"}), "files/lib\\win.py", "backslash"),
        (json!({"handler.py": "x", "bell\u{7}.py": "x"}), "files/bell\u{7}.py", "control character"),
        (json!({"util.py": "x"}), "files", "handler.py is missing"),
        (json!({"handler.py": "x", "node_modules/x.js": "x"}), "files/node_modules/x.js", "installs dependencies"),
        (Value::Object(many), "files", "at most 500|the most a function may have is 500"),
        (json!({"handler.py": "x".repeat(10 * 1024 * 1024 + 1)}), "files", "the most the provider allows is 10.0 MB"),
        (json!({"handler.py": "", "lib/u.py": "x"}), "files/handler.py", "is empty"),
    ];
    for (files, field, message) in cases {
        let (status, body) = app.send("PUT", "/api/v1/functions/kept", Some(&t.dev), Some(json!({"files": files}))).await;
        assert_eq!(status, 400, "{field}: {body}");
        assert!(fields(&body).contains(&field.to_string()), "{field} not named in {body}");
        assert!(message.split('|').any(|m| messages(&body).contains(m)), "{message:?} not in {body}");
    }
    let (status, body) =
        app.send("PUT", "/api/v1/functions/kept", Some(&t.dev), Some(json!({"code": "def handle(e, c): pass", "files": good}))).await;
    assert_eq!((status, fields(&body)), (400, vec!["code".to_string()]), "{body}");

    // Archives: a bomb stops at the cap, links and binaries are refused at the entry, garbage is named.
    let bomb = zip_of(&[("handler.py", &vec![b'#'; 40 * 1024 * 1024])]);
    assert!(bomb.len() < 1024 * 1024, "the bomb is small: {} bytes", bomb.len());
    let mut linked = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    linked.add_symlink("handler.py", "/etc/shadow", SimpleFileOptions::default()).unwrap();
    let linked = linked.finish().unwrap().into_inner();
    let archives: Vec<(Vec<u8>, &str, &str)> = vec![
        (bomb, "files", "unpacks to more than 10.0 MB"),
        (linked, "files/handler.py", "symbolic link"),
        (zip_of(&[("handler.py", b"x"), ("blob.bin", &[0xff, 0x00, 0xfe])]), "files/blob.bin", "not UTF-8 text"),
        (zip_of(&[("../../evil.py", b"x"), ("handler.py", b"x")]), "files/../../evil.py", "\"..\" segment"),
        (b"PK\x03\x04 not really".to_vec(), "files", "not a zip archive"),
        // Made with Python's zipfile, which writes a second entry of the same name.
        (include_bytes!("fixtures/duplicate-path.zip").to_vec(), "files", "the same path more than once (2 entries, 1 distinct paths)"),
    ];
    for (archive, field, message) in archives {
        let (status, body) = app.send_bytes("PUT", "/api/v1/functions/kept/code", &t.dev, "application/zip", archive).await;
        assert_eq!(status, 400, "{field}: {body}");
        assert!(fields(&body).contains(&field.to_string()), "{field} not named in {body}");
        assert!(messages(&body).contains(message), "{message:?} not in {body}");
    }
    let (status, body) = app.send_bytes("PUT", "/api/v1/functions/kept/code", &t.dev, "application/json", b"{}".to_vec()).await;
    assert_eq!(status, 415, "{body}");
    assert!(body["error"].as_str().unwrap().contains("application/zip"), "{body}");

    let (status, body) = app.send("GET", "/api/v1/functions/kept", Some(&t.dev), None).await;
    assert_eq!(status, 200);
    assert_eq!((body["latest_version"].as_i64(), &body["files"]), (Some(1), &good), "nothing stored was lost");
}

on_both_databases!(files_are_stored_per_version_and_code_is_shorthand, refused_trees_are_answered_at_the_file_and_lose_nothing);
