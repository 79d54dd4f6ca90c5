//! The `dialerd` binary: everything lives in the library.

fn main() {
    std::process::exit(dialerd::cli::main());
}
