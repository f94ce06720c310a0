//! `cloudpilot loadgen` end to end through the real binary: it starts its own simulated
//! fleet and server as child processes on loopback, drives them and writes its report.

use std::process::Command;

fn loadgen(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cloudpilot"))
        .arg("loadgen")
        .args(args)
        .arg("--no-progress")
        .env("RUST_LOG", "warn")
        .output()
        .expect("cloudpilot runs")
}

/// A small self-contained run produces the three report files, with PASS/MISS verdicts
/// and request counts that show real traffic reached the server without errors.
#[test]
fn a_small_run_loads_its_own_server_and_writes_json_markdown_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let o = loadgen(&[
        "--scenario",
        "profile-vs-health",
        "--routers",
        "3",
        "--duration",
        "2s",
        "--concurrency",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let phases = report["phases"].as_array().unwrap();
    let names: Vec<&str> = phases.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["health", "profile"]);
    for p in phases {
        assert!(p["requests"].as_u64().unwrap() > 10, "{p}");
        assert_eq!(p["errors"], 0, "{p}");
        assert!(p["latency"]["p99_ms"].as_f64().unwrap() > 0.0, "{p}");
    }
    let verdict = report["targets"][0]["verdict"].as_str().unwrap();
    assert!(verdict == "PASS" || verdict == "MISS");
    assert!(stdout.contains("GET /users/profile/ rate vs GET /health/"));
    let svg = std::fs::read_to_string(out.join("report.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<polyline"));
    assert!(out.join("report.md").exists());
}

/// A --target nobody serves is a failure of the run (non-zero), not a MISS.
#[test]
fn an_unreachable_target_fails_the_run() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let o = loadgen(&[
        "--target",
        &format!("http://127.0.0.1:{port}"),
        "--routers",
        "1",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("did not become healthy"), "{stderr}");
}
