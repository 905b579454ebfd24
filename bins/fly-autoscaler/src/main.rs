//! The `fly-autoscaler` binary.
fn main() {
    eprintln!("ERROR: not built yet");
    std::process::exit(1);
}
