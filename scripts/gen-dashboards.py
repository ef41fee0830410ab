#!/usr/bin/env python3
"""Generates the Grafana dashboards in dashboards/: JSON that imports by hand and
provisions from files or Grafana's sidecar alike (a `datasource` variable, no
`__inputs`), with `job` and `namespace` variables for several lagwatch
deployments in one Prometheus. The panels are defined here once; run after
changing them:
    scripts/gen-dashboards.py          # write dashboards/*.json and the Helm chart's copies
    scripts/gen-dashboards.py --check  # exit 1 if the committed files are stale
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART_DASHBOARDS = ROOT / "deploy" / "helm" / "lagwatch" / "files" / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}
# Which lagwatch: job and namespace (an absent label matches the All value ".*").
WHICH = 'job=~"$job",namespace=~"$namespace"'
SEL = WHICH + ',source=~"$source",system=~"$system"'
GSEL = SEL + ',group=~"$group"'
GROUP_URL = "/d/lagwatch-group/lagwatch-group"
OVERVIEW_URL = "/d/lagwatch-overview/lagwatch-overview"


# From a row of a table to that group's dashboard, keeping the time range and
# the data source.
GROUP_LINK = {
    "title": "Open ${__data.fields.group} on ${__data.fields.source}",
    "url": GROUP_URL + "?${__url_time_range}&var-datasource=${datasource}&var-job=${job}"
           "&var-namespace=${namespace}&var-source=${__data.fields.source}&var-group=${__data.fields.group}",
}


def datasource_var():
    return {
        "name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
        "current": {}, "hide": 0, "refresh": 1, "regex": "", "includeAll": False, "multi": False,
    }


def var_query(name, label, query, multi=True, include_all=True):
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
        "refresh": 2, "multi": multi, "includeAll": include_all, "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if include_all else {},
        "sort": 1,
    }


VARIABLES = [
    datasource_var(),
    var_query("job", "Job", "label_values(lagwatch_source_up, job)"),
    var_query("namespace", "Namespace", f'label_values(lagwatch_source_up{{job=~"$job"}}, namespace)'),
    var_query("source", "Source", f"label_values(lagwatch_source_up{{{WHICH}}}, source)"),
    var_query("system", "System", f"label_values(lagwatch_source_up{{{WHICH}}}, system)"),
]
GROUP_VAR = var_query("group", "Group", f'label_values(lagwatch_group_lag_messages{{{SEL}}}, group)')


class Layout:
    def __init__(self):
        self.y = 0
        self.x = 0
        self.row_h = 0
        self.id = 0

    def place(self, w, h):
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        self.id += 1
        return pos, self.id


def target(expr, legend="", instant=False, ref="A", fmt="time_series"):
    t = {"datasource": DS, "expr": expr, "refId": ref, "legendFormat": legend, "format": fmt}
    if instant:
        t["instant"] = True
        t["range"] = False
    return t


def panel(layout, kind, title, targets, w=12, h=8, unit=None, description="", extra=None):
    pos, pid = layout.place(w, h)
    p = {
        "id": pid, "type": kind, "title": title, "description": description, "datasource": DS,
        "gridPos": pos, "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
        "options": {},
    }
    if extra:
        p.update(extra)
    return p


def dashboard(uid, title, description, panels, variables):
    return {
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
        ],
        "uid": uid, "title": title, "description": description, "tags": ["lagwatch", "kafka", "nats"],
        "editable": True, "schemaVersion": 39, "version": 1, "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"}, "timezone": "",
        "templating": {"list": variables}, "annotations": {"list": []},
        "links": [
            {"title": "Overview", "type": "link", "url": OVERVIEW_URL, "keepTime": True, "includeVars": True},
            {"title": "Group", "type": "link", "url": GROUP_URL, "keepTime": True, "includeVars": True},
        ],
        "panels": panels,
    }


def overview():
    L = Layout()
    worst = [
        target(f'topk(50, max by (source, system, group, topic) (lagwatch_group_lag_seconds{{{SEL}}}))', instant=True, ref="A", fmt="table"),
        target(f'max by (source, system, group, topic) (lagwatch_group_lag_messages{{{SEL}}})', instant=True, ref="B", fmt="table"),
        target(f'max by (source, system, group, topic) (lagwatch_group_lag_growth_messages_per_second{{{SEL}}})', instant=True, ref="C", fmt="table"),
        target(f'max by (source, system, group, topic) (lagwatch_group_status_code{{{SEL}}})', instant=True, ref="D", fmt="table"),
        target(f'max by (source, system, group, topic) (lagwatch_group_catchup_eta_seconds{{{SEL}}})', instant=True, ref="E", fmt="table"),
        target(f'max by (source, system, group, topic) (lagwatch_group_replicas_recommended{{{SEL}}})', instant=True, ref="F", fmt="table"),
        target(f'max by (source, system, group, topic) (lagwatch_group_projected_loss_seconds{{{SEL}}})', instant=True, ref="G", fmt="table"),
    ]
    panels = [
        panel(L, "stat", "Sources up", [target(f'lagwatch_source_up{{{SEL}}}', "{{source}}", instant=True)], w=8, h=4,
              description="1: the last poll of the source succeeded."),
        panel(L, "stat", "Groups by status", [target(f'count by (status) (lagwatch_group_status{{{SEL}}} == 1)', "{{status}}", instant=True)], w=8, h=4,
              description="Burrow-style status of every group (worst partition)."),
        panel(L, "stat", "Messages behind, all groups", [target(f'sum(lagwatch_group_lag_messages{{{SEL}}})', "lag", instant=True)], w=8, h=4, unit="short"),
        panel(L, "table", "Groups, worst first", worst, w=24, h=10,
              description="Time lag (s), lag (messages), growth (msg/s), status (0 OK .. 5 ERR), ETA (s), recommended replicas, projected retention loss at the current rates (s; empty while the group keeps pace).",
              extra={"transformations": [{"id": "merge", "options": {}}, {"id": "sortBy", "options": {"sort": [{"field": "Value #A", "desc": True}]}}],
                     "fieldConfig": {"defaults": {"links": [GROUP_LINK]}, "overrides": []}}),
        panel(L, "timeseries", "Time lag (age of the oldest unconsumed message)", [target(f'lagwatch_group_lag_seconds{{{SEL}}}', "{{source}} {{group}} {{topic}}")], unit="s"),
        panel(L, "timeseries", "Lag (messages)", [target(f'lagwatch_group_lag_messages{{{SEL}}}', "{{source}} {{group}} {{topic}}")], unit="short"),
        panel(L, "timeseries", "Lag growth", [target(f'lagwatch_group_lag_growth_messages_per_second{{{SEL}}}', "{{source}} {{group}} {{topic}}")], unit="short",
              description="Messages per second the lag grows (negative: it drains)."),
        panel(L, "timeseries", "Catch-up ETA", [target(f'lagwatch_group_catchup_eta_seconds{{{SEL}}}', "{{source}} {{group}} {{topic}}")], unit="s",
              description="Present only while a group is catching up."),
        panel(L, "timeseries", "Retention risk: projected loss", [
            target(f'lagwatch_group_projected_loss_seconds{{{SEL}}}', "{{source}} {{group}} {{topic}} at current rates", ref="A"),
            target(f'lagwatch_group_time_until_loss_seconds{{{SEL}}}', "{{source}} {{group}} {{topic}} if stopped now", ref="B")], unit="s",
              description="When the configured retention deletes messages the group has not consumed: at the current rates (what alerts; absent while it keeps pace), and if it stopped now (headroom)."),
        panel(L, "timeseries", "Recommended vs current replicas", [
            target(f'lagwatch_group_replicas_recommended{{{SEL}}}', "{{group}} recommended ({{reason}})", ref="A"),
            target(f'lagwatch_group_replicas_current{{{SEL}}}', "{{group}} current", ref="B")], unit="short"),
        # Dead letters: events consumers gave up on (Kafka dead-letter topics,
        # JetStream MAX_DELIVERIES / MSG_TERMINATED advisories).
        panel(L, "timeseries", "Dead letters (window)", [
            target(f'max by (source, group, topic, dead_letter_topic, reason) (lagwatch_dead_letters_recent{{{SEL}}})',
                   "{{source}} {{group}} {{topic}} {{reason}} {{dead_letter_topic}}")], unit="short",
              description="Events given up on in lagwatch's dead_letters.window (default 1 h): written to a Kafka dead-letter "
                          "topic, or JetStream messages past max_deliver or terminated. ConsumerDeadLetters alerts on any new one."),
        panel(L, "timeseries", "Undrained dead-letter queues", [
            target(f'max by (source, group, topic, dead_letter_topic) (lagwatch_dead_letters_undrained{{{SEL}}})',
                   "{{source}} {{dead_letter_topic}} ({{topic}})")], unit="short",
              description="Kafka: messages in a dead-letter topic no consumer group has consumed yet (nobody consumes it: the "
                          "messages it stores). DeadLetterQueueNotDrained informs after 6 h."),
        panel(L, "timeseries", "lagwatch: poll duration p99", [
            target(f'histogram_quantile(0.99, sum by (source, le) (rate(lagwatch_poll_duration_seconds_bucket{{{SEL}}}[$__rate_interval])))', "{{source}}")], w=8, unit="s"),
        panel(L, "timeseries", "lagwatch: poll errors by kind", [
            target(f'sum by (source, kind) (rate(lagwatch_poll_errors_total{{{SEL}}}[$__rate_interval]))', "{{source}} {{kind}}")], w=8, unit="reqps"),
        panel(L, "timeseries", "lagwatch: seconds since last successful poll", [
            target(f'time() - lagwatch_last_successful_poll_timestamp_seconds{{{SEL}}}', "{{source}}")], w=8, unit="s"),
    ]
    return dashboard("lagwatch-overview", "lagwatch overview",
                     "Every consumer group of every source, worst first, and lagwatch's own health.", panels, VARIABLES)


def group():
    L = Layout()
    panels = [
        panel(L, "stat", "Status (0 OK, 1 WARN, 2 REWIND, 3 STALL, 4 STOP, 5 ERR)", [target(f'lagwatch_group_status_code{{{GSEL}}}', "{{group}}", instant=True)], w=6, h=4),
        panel(L, "stat", "Behind", [target(f'lagwatch_group_lag_seconds{{{GSEL}}}', "{{group}}", instant=True)], w=6, h=4, unit="s"),
        panel(L, "stat", "Lag", [target(f'lagwatch_group_lag_messages{{{GSEL}}}', "{{group}}", instant=True)], w=6, h=4, unit="short"),
        panel(L, "stat", "Members / partitions", [
            target(f'lagwatch_group_members{{{GSEL}}}', "members", instant=True, ref="A"),
            target(f'lagwatch_group_partitions{{{GSEL}}}', "partitions", instant=True, ref="B")], w=6, h=4),
        panel(L, "timeseries", "Produce vs consume rate", [
            target(f'lagwatch_group_produce_messages_per_second{{{GSEL}}}', "produced {{group}}", ref="A"),
            target(f'lagwatch_group_consume_messages_per_second{{{GSEL}}}', "consumed {{group}}", ref="B")], unit="short"),
        panel(L, "timeseries", "Time lag and its quality", [
            target(f'lagwatch_group_lag_seconds{{{GSEL}}}', "{{group}}", ref="A"),
            target(f'lagwatch_group_lag_seconds_quality{{{GSEL}}} == 1', "{{quality}}", ref="B")], unit="s"),
        panel(L, "timeseries", "Lag per topic (Kafka)", [target(f'lagwatch_topic_lag_messages{{{GSEL}}}', "{{topic}}")], unit="short",
              description="Per (group, topic); needs granularity topic or partition."),
        panel(L, "table", "Partitions (Kafka)", [
            target(f'lagwatch_partition_lag_messages{{{GSEL}}}', instant=True, ref="A", fmt="table"),
            target(f'lagwatch_partition_lag_seconds{{{GSEL}}}', instant=True, ref="B", fmt="table"),
            target(f'lagwatch_partition_status_code{{{GSEL}}}', instant=True, ref="C", fmt="table")],
              description="Lag, time lag and status per partition; needs granularity partition for the source.",
              extra={"transformations": [{"id": "merge", "options": {}}]}),
        panel(L, "timeseries", "JetStream: pending and ack pending", [
            target(f'lagwatch_jetstream_pending_messages{{{GSEL}}}', "pending {{group}} ({{topic}})", ref="A"),
            target(f'lagwatch_jetstream_ack_pending_messages{{{GSEL}}}', "ack pending {{group}} ({{topic}})", ref="B"),
            target(f'lagwatch_jetstream_max_ack_pending{{{GSEL}}}', "max ack pending {{group}}", ref="C")], unit="short"),
        panel(L, "timeseries", "Recommended vs current replicas", [
            target(f'lagwatch_group_replicas_recommended{{{GSEL}}}', "recommended ({{reason}})", ref="A"),
            target(f'lagwatch_group_replicas_current{{{GSEL}}}', "current", ref="B")], unit="short"),
        panel(L, "timeseries", "Retention: lost messages, projected loss, headroom", [
            target(f'lagwatch_group_lost_messages{{{GSEL}}}', "lost {{group}}", ref="A"),
            target(f'lagwatch_group_projected_loss_seconds{{{GSEL}}}', "seconds until loss at current rates {{group}}", ref="B"),
            target(f'lagwatch_group_time_until_loss_seconds{{{GSEL}}}', "seconds until loss if stopped {{group}}", ref="C")], w=24),
        panel(L, "timeseries", "Dead letters", [
            target(f'lagwatch_dead_letters_per_second{{{GSEL}}}', "per second {{topic}} {{reason}} {{dead_letter_topic}}", ref="A"),
            target(f'lagwatch_dead_letters_recent{{{GSEL}}}', "in window {{topic}} {{reason}} {{dead_letter_topic}}", ref="B")],
              description="Events the group gave up on: per second (left axis), and added in lagwatch's dead_letters.window "
                          "(default 1 h, right axis). Kafka: written to a dead-letter topic (group empty when no single "
                          "group consumes its source topic); JetStream: past max_deliver or terminated.",
              extra={"fieldConfig": {"defaults": {"unit": "short"}, "overrides": [
                  {"matcher": {"id": "byFrameRefID", "options": "B"},
                   "properties": [{"id": "custom.axisPlacement", "value": "right"}]}]}}),
        panel(L, "timeseries", "Redeliveries per second", [
            target(f'lagwatch_redelivered_messages_per_second{{{GSEL}}}', "{{group}} ({{topic}}, {{quality}})")], unit="short",
              description="JetStream: messages delivered again (not acked within ack_wait, or nak'd). quality upper_bound: "
                          "a filtered consumer, every delivery counted."),
    ]
    return dashboard("lagwatch-group", "lagwatch group", "One consumer group in detail: partitions, rates, members, recommendation.",
                     panels, VARIABLES + [GROUP_VAR])


def main():
    out = {"lagwatch-overview.json": overview(), "lagwatch-group.json": group()}
    stale = []
    for name, d in out.items():
        text = json.dumps(d, indent=2) + "\n"
        # The Helm chart ships the same files (it cannot read outside itself).
        for path in (ROOT / "dashboards" / name, CHART_DASHBOARDS / name):
            if "--check" in sys.argv:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path.relative_to(ROOT)))
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    if stale:
        print(f"stale: {', '.join(stale)}: run scripts/gen-dashboards.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
