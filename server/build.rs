// `sqlx::migrate!` embeds the migrations at compile time: a new or changed migration file must
// rebuild this crate, which cargo does not notice by itself.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
