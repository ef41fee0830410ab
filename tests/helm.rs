//! The Helm chart (deploy/helm/lagwatch) with real Helm (Helm v4's Go SDK via
//! helm-python-sdk): it lints strict, every values set renders, every rendered
//! core object validates against the Kubernetes schemas, the configs pass
//! `lagwatch check-config`, the rules pass promtool, and the chart renders the
//! same pod and config as the kustomize base, so the two stay in step.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "test code: a panic is a failed test with its line"
)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use serde_yaml::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed (scripts/test-env.sh installs helm-python-sdk):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn helm(args: &[&str]) -> Command {
    let mut c = Command::new("python3");
    c.arg(root().join("scripts/helm-render.py")).args(args);
    c
}

/// The chart rendered with `--set` pairs, as objects.
fn render(sets: &[&str]) -> Vec<Value> {
    let mut args = Vec::new();
    for s in sets {
        args.extend(["--set", s]);
    }
    render_with(&args)
}

/// The chart rendered with helm-render.py's arguments, as objects.
fn render_with(args: &[&str]) -> Vec<Value> {
    let text = run(&mut helm(args));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// Every rule's expression in a PrometheusRule.
fn exprs(rule: &Value) -> Vec<String> {
    rule["spec"]["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().iter())
        .map(|r| r["expr"].as_str().unwrap().to_string())
        .collect()
}

/// `promtool check rules` on a PrometheusRule's spec.
fn promtool_check(rule: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yml");
    std::fs::write(&file, serde_yaml::to_string(&rule["spec"]).unwrap()).unwrap();
    run(Command::new(common::require_binary("promtool"))
        .args(["check", "rules"])
        .arg(&file));
}

fn kind(v: &Value) -> &str {
    v["kind"].as_str().unwrap_or("")
}

fn find<'a>(objects: &'a [Value], k: &str) -> Option<&'a Value> {
    objects.iter().find(|o| kind(o) == k)
}

/// Values sets a user would install with.
const SETS: &[(&str, &[&str])] = &[
    ("defaults", &[]),
    (
        "sharded with claims",
        &[
            "sharding.enabled=true",
            "sharding.shards=3",
            "persistence.enabled=true",
        ],
    ),
    (
        "one pod with a claim, a PDB, a pinned image",
        &[
            "persistence.enabled=true",
            "podDisruptionBudget.enabled=true",
            "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ],
    ),
    (
        "kube-prometheus-stack",
        &[
            "serviceMonitor.additionalLabels.release=kps",
            "prometheusRule.additionalLabels.release=kps",
            "prometheusRule.grafanaUrl=https://grafana.corp.test",
            "dashboards.namespace=grafana",
        ],
    ),
    (
        "no operator",
        &[
            "serviceMonitor.enabled=false",
            "prometheusRule.enabled=false",
            "dashboards.enabled=false",
            "networkPolicy.enabled=false",
            "serviceAccount.create=false",
        ],
    ),
];

#[test]
fn the_chart_lints_strict_with_real_helm() {
    run(&mut helm(&["--lint"]));
    run(&mut helm(&["--lint", "--set", "sharding.enabled=true"]));
    // A chart without sources is refused with the reason, not rendered.
    let out = helm(&["--set", "config.sources=null"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config.sources: lagwatch needs at least one source"),
        "{err}"
    );
}

#[test]
fn every_values_set_renders_and_every_core_object_validates_against_the_kubernetes_schemas() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (name, sets)) in SETS.iter().enumerate() {
        let objects = render(sets);
        let workload = objects
            .iter()
            .find(|o| matches!(kind(o), "Deployment" | "StatefulSet"))
            .unwrap_or_else(|| panic!("{name}: no workload"));
        let pod = &workload["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(
            c["securityContext"]["readOnlyRootFilesystem"].as_bool(),
            Some(true),
            "{name}"
        );
        assert_eq!(
            pod["securityContext"]["runAsNonRoot"].as_bool(),
            Some(true),
            "{name}"
        );
        assert_eq!(
            c["livenessProbe"]["httpGet"]["path"].as_str(),
            Some("/healthz")
        );
        assert_eq!(
            c["readinessProbe"]["httpGet"]["path"].as_str(),
            Some("/readyz")
        );
        common::kubernetes_validate(&objects, name);
        // The config each pod runs with passes lagwatch's own check (a shard
        // pod's name carries its ordinal).
        for cm in objects.iter().filter(|o| kind(o) == "ConfigMap") {
            let Some(config) = cm["data"]["config.yaml"].as_str() else {
                continue;
            };
            let file = dir.path().join(format!("config-{i}.yaml"));
            std::fs::write(&file, config).unwrap();
            let out = run(Command::new(env!("CARGO_BIN_EXE_lagwatch"))
                .arg("check-config")
                .arg(&file)
                .env("HOSTNAME", "lagwatch-2"));
            assert!(out.contains(": ok"), "{name}: {out}");
        }
    }
}

#[test]
fn sharding_persistence_and_operator_switches_render_what_they_say() {
    let sharded = render(SETS[1].1);
    let sts = find(&sharded, "StatefulSet").expect("sharded: a StatefulSet");
    assert!(find(&sharded, "Deployment").is_none());
    assert_eq!(sts["spec"]["replicas"].as_u64(), Some(3));
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "state"
    );
    assert!(
        find(&sharded, "PodDisruptionBudget").is_some(),
        "a PDB when sharded"
    );
    let env = &sts["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env[0]["name"], "HOSTNAME");
    let config: Value = serde_yaml::from_str(
        find(&sharded, "ConfigMap").unwrap()["data"]["config.yaml"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(config["shard"]["count"].as_u64(), Some(3));
    assert_eq!(config["shard"]["index_from_hostname"].as_bool(), Some(true));

    let single = render(SETS[2].1);
    let claim = find(&single, "PersistentVolumeClaim").expect("a claim for the one pod");
    let volumes = &find(&single, "Deployment").unwrap()["spec"]["template"]["spec"]["volumes"];
    assert!(volumes
        .as_sequence()
        .unwrap()
        .iter()
        .any(|v| v["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]));
    let image = find(&single, "Deployment").unwrap()["spec"]["template"]["spec"]["containers"][0]
        ["image"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(image.starts_with("lagwatch@sha256:"), "{image}");

    // kube-prometheus-stack selects on `release`; the dashboards go to Grafana's
    // namespace with the sidecar's label and are the shipped files.
    let kps = render(SETS[3].1);
    for k in ["ServiceMonitor", "PrometheusRule"] {
        assert_eq!(
            find(&kps, k).unwrap()["metadata"]["labels"]["release"],
            "kps",
            "{k}"
        );
    }
    let boards: Vec<&Value> = kps
        .iter()
        .filter(|o| kind(o) == "ConfigMap" && o["metadata"]["labels"]["grafana_dashboard"] == "1")
        .collect();
    assert_eq!(boards.len(), 2);
    for b in boards {
        assert_eq!(b["metadata"]["namespace"], "grafana");
        let data = b["data"].as_mapping().unwrap();
        let (file, text) = data.iter().next().unwrap();
        let shipped =
            std::fs::read_to_string(root().join("dashboards").join(file.as_str().unwrap()))
                .unwrap();
        assert_eq!(text.as_str().unwrap().trim_end(), shipped.trim_end());
    }
    let rule = find(&kps, "PrometheusRule").unwrap();
    let url = rule["spec"]["groups"][0]["rules"][0]["annotations"]["dashboard_url"]
        .as_str()
        .unwrap();
    assert!(
        url.starts_with("https://grafana.corp.test/d/lagwatch-group/"),
        "{url}"
    );

    let none = render(SETS[4].1);
    for k in [
        "ServiceMonitor",
        "PrometheusRule",
        "NetworkPolicy",
        "ServiceAccount",
    ] {
        assert!(find(&none, k).is_none(), "{k} rendered while disabled");
    }
    assert_eq!(
        none.iter()
            .filter(|o| o["metadata"]["labels"]["grafana_dashboard"] == "1")
            .count(),
        0
    );
}

#[test]
fn the_charts_rules_are_the_shipped_rules_scoped_to_the_release_and_promtool_accepts_them() {
    let objects = render(&[]);
    let rule = find(&objects, "PrometheusRule").unwrap();
    let shipped: Value = serde_yaml::from_str(
        &std::fs::read_to_string(root().join("alerts/lagwatch.rules.yml")).unwrap(),
    )
    .unwrap();
    let names = |v: &Value| -> Vec<String> {
        v["groups"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_sequence().unwrap().iter())
            .map(|r| r["alert"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&rule["spec"]), names(&shipped));
    for expr in exprs(rule) {
        // The release's job (the Service's name) and namespace on every metric.
        for m in expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("lagwatch_") || *w == "up")
        {
            assert!(
                expr.contains(&format!(r#"{m}{{job="lagwatch",namespace="monitoring""#)),
                "{m} unscoped in {expr}"
            );
        }
    }
    promtool_check(rule);

    let dir = tempfile::tempdir().unwrap();
    // A selector of one's own with a `$` and a name that looks like a metric:
    // inserted verbatim, once, and still valid PromQL.
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        "prometheusRule:\n  selector: 'job=~\"lagwatch_prod$\",env=\"${x}\"'\n",
    )
    .unwrap();
    let objects = render_with(&["--values", values.to_str().unwrap()]);
    let rule = find(&objects, "PrometheusRule").unwrap();
    for expr in exprs(rule) {
        assert!(!expr.contains("lagwatch_prod{"), "{expr}");
        assert!(
            expr.contains(r#"{job=~"lagwatch_prod$",env="${x}""#),
            "{expr}"
        );
    }
    promtool_check(rule);
}

/// The chart and the kustomize base are two ways to install one thing: with
/// default values the chart renders the kustomize base's pod and config.
#[test]
fn the_chart_and_the_kustomize_base_render_the_same_pod_and_config() {
    let chart = render(&[]);
    let text = run(Command::new(common::require_binary("kubectl"))
        .arg("kustomize")
        .arg(root().join("deploy/kubernetes/base")));
    let base: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let pod = |objects: &[Value]| {
        find(objects, "Deployment").unwrap()["spec"]["template"]["spec"].clone()
    };
    let (a, b) = (pod(&chart), pod(&base));
    let mut ca = a["containers"][0].clone();
    let cb = b["containers"][0].clone();
    // The image: the chart's appVersion, the base's tag.
    assert_eq!(ca["image"], cb["image"]);
    // The chart can map several Secrets; the default is the base's one.
    ca["envFrom"] = cb["envFrom"].clone();
    assert_eq!(ca, cb, "container: chart (left) vs kustomize base (right)");
    for key in [
        "securityContext",
        "terminationGracePeriodSeconds",
        "automountServiceAccountToken",
    ] {
        assert_eq!(a[key], b[key], "pod {key}");
    }
    let volume_names = |p: &Value| -> Vec<String> {
        let mut v: Vec<String> = p["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(volume_names(&a), volume_names(&b));
    // The config: the same document.
    let config = |objects: &[Value]| -> Value {
        serde_yaml::from_str(
            find(objects, "ConfigMap").unwrap()["data"]["config.yaml"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(
        config(&chart),
        config(&base),
        "config: chart vs kustomize base"
    );
    // Same Service port, same scrape.
    assert_eq!(
        find(&chart, "Service").unwrap()["spec"]["ports"],
        find(&base, "Service").unwrap()["spec"]["ports"]
    );
    let ep = |o: &[Value]| find(o, "ServiceMonitor").unwrap()["spec"]["endpoints"].clone();
    assert_eq!(ep(&chart), ep(&base));
}
