// `sqlx::migrate!` embeds the migrations folders at compile time; without this, a migration
// added on its own (no Rust file changed) would not be in the next build.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
