//! Build facts for `lagwatch_build_info`: the git commit (from
//! `LAGWATCH_GIT_COMMIT` when set, as in an image built without `.git`, else
//! from `git rev-parse`) and the rustc version. "unknown" when neither says.

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=LAGWATCH_GIT_COMMIT");
    println!("cargo:rerun-if-changed=.git/HEAD");
    // The branch's ref file moves with every commit; packed refs when it is not loose.
    if let Some(reference) = std::fs::read_to_string(".git/HEAD")
        .ok()
        .and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_string()))
    {
        println!("cargo:rerun-if-changed=.git/{reference}");
    }
    println!("cargo:rerun-if-changed=.git/packed-refs");
    let commit = std::env::var("LAGWATCH_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| output("git", &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let version = output(&rustc, &["--version"])
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=LAGWATCH_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=LAGWATCH_RUSTC_VERSION={version}");
}
