//! Deployment files: every kustomize overlay renders, every rendered object
//! validates against the Kubernetes schemas (kubernetes-validate), the
//! ConfigMaps' configs pass `lagwatch check-config`, and the PrometheusRule is
//! exactly alerts/ (generated, and accepted by promtool).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const OVERLAYS: &[&str] = &["base", "overlays/example", "overlays/sharded"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn render(overlay: &str) -> Vec<serde_yaml::Value> {
    let text = run(Command::new(common::require_binary("kubectl"))
        .arg("kustomize")
        .arg(root().join("deploy/kubernetes").join(overlay)));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

fn kind(v: &serde_yaml::Value) -> &str {
    v["kind"].as_str().unwrap_or("")
}

#[test]
fn every_overlay_renders_and_every_core_object_validates_against_the_kubernetes_schemas() {
    for overlay in OVERLAYS {
        let objects = render(overlay);
        let kinds: Vec<&str> = objects.iter().map(kind).collect();
        for needed in [
            "ConfigMap",
            "Service",
            "ServiceMonitor",
            "PrometheusRule",
            "NetworkPolicy",
        ] {
            assert!(
                kinds.contains(&needed),
                "{overlay} renders no {needed}: {kinds:?}"
            );
        }
        let workload = objects
            .iter()
            .find(|o| matches!(kind(o), "Deployment" | "StatefulSet"))
            .unwrap_or_else(|| panic!("{overlay} has no workload"));
        let pod = &workload["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(
            c["livenessProbe"]["httpGet"]["path"].as_str(),
            Some("/healthz")
        );
        assert_eq!(
            c["readinessProbe"]["httpGet"]["path"].as_str(),
            Some("/readyz")
        );
        let sc = &c["securityContext"];
        assert_eq!(
            sc["readOnlyRootFilesystem"].as_bool(),
            Some(true),
            "{overlay}"
        );
        assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
        assert_eq!(sc["capabilities"]["drop"][0].as_str(), Some("ALL"));
        assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"].as_str(),
            Some("RuntimeDefault")
        );
        // The grace period covers lagwatch's own shutdown_timeout (20s default).
        assert!(pod["terminationGracePeriodSeconds"].as_u64().unwrap() > 20);

        common::kubernetes_validate(&objects, overlay);

        let sm = objects
            .iter()
            .find(|o| kind(o) == "ServiceMonitor")
            .unwrap();
        assert_eq!(sm["apiVersion"].as_str(), Some("monitoring.coreos.com/v1"));
        assert_eq!(sm["spec"]["endpoints"][0]["port"].as_str(), Some("http"));
        assert_eq!(
            sm["spec"]["endpoints"][0]["path"].as_str(),
            Some("/metrics")
        );
    }
}

#[test]
fn the_configmap_configs_pass_check_config() {
    for overlay in OVERLAYS {
        for o in render(overlay).iter().filter(|o| kind(o) == "ConfigMap") {
            let config = o["data"]["config.yaml"].as_str().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("config.yaml");
            std::fs::write(&file, config).unwrap();
            let out = run(Command::new(env!("CARGO_BIN_EXE_lagwatch"))
                .arg("check-config")
                .arg(&file)
                // What the Secret provides (overlays/example/credentials.env).
                .env("KAFKA_PASSWORD", "x-secret")
                .env("NATS_PASSWORD", "x-secret")
                // A StatefulSet pod's name carries the shard ordinal.
                .env("HOSTNAME", "lagwatch-1"));
            assert!(out.contains(": ok"), "{overlay}: {out}");
        }
    }
}

#[test]
fn the_prometheusrule_is_generated_from_alerts_and_promtool_accepts_it() {
    run(Command::new("python3")
        .arg(root().join("scripts/gen-prometheusrule.py"))
        .arg("--check"));
    let rules: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(root().join("alerts/lagwatch.rules.yml")).unwrap(),
    )
    .unwrap();
    for overlay in OVERLAYS {
        let objects = render(overlay);
        let pr = objects
            .iter()
            .find(|o| kind(o) == "PrometheusRule")
            .unwrap();
        assert_eq!(
            pr["spec"], rules,
            "{overlay}: PrometheusRule spec == alerts/"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rules.yml");
        std::fs::write(&file, serde_yaml::to_string(&pr["spec"]).unwrap()).unwrap();
        run(Command::new(common::require_binary("promtool"))
            .args(["check", "rules"])
            .arg(&file));
    }
}

#[test]
fn the_dockerfile_builds_with_the_commands_ci_proves() {
    let docker = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    let test = std::fs::read_to_string(root().join("scripts/test.sh")).unwrap();
    assert!(
        docker.contains("cargo build --release --locked"),
        "{docker}"
    );
    assert!(
        test.contains("cargo test --locked"),
        "CI builds with the same lock file"
    );
    assert!(docker.contains("USER 65532:65532"), "non-root at run time");
    assert!(docker.contains("distroless"), "no shell at run time");
    assert!(Path::new(&root().join("Cargo.lock")).exists());
    // Every architecture: no multiarch directory written into a path.
    for arch in ["x86_64-linux-gnu", "aarch64-linux-gnu"] {
        assert!(
            !docker.contains(arch),
            "{arch} hard-coded in deploy/Dockerfile"
        );
    }
    assert!(docker.contains("gcc -print-multiarch"), "{docker}");
    // The build script and every source it needs are copied in.
    assert!(docker.contains("build.rs"), "build.rs not copied: {docker}");
    for label in ["title", "version", "revision", "licenses", "description"] {
        assert!(
            docker.contains(&format!("org.opencontainers.image.{label}=")),
            "OCI label {label} missing"
        );
    }
}
