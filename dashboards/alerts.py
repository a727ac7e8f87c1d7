"""Grafana alert rules for dust and wind, provisioned: the bureau's own alarms across every site.

Each rule is the usual Grafana shape: A, an InfluxQL query giving one series per site and node over a
recent range; B, a reduction of each series to one number; C, a threshold on B (the condition). The
limits are the defaults of gateway/process/limits.py, as the gateway's alarms use them: PM10 1-h mean
above the dust setting, 3-s gusts at or above the crane-stop and lifting-stop speeds.

These fire on the bureau's side from the stored data: they do not replace the gateway's own alarms
on site (with hysteresis and hold times), they tell the bureau about them.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

from grafana_foundation_sdk.builders import alerting
from grafana_foundation_sdk.builders import expr as expr_builders
from grafana_foundation_sdk.models import alerting as alerting_models

from dashboards.boards import CRANE_GUST, LIFTING_GUST, PM10_LIMIT
from dashboards.influxql import DATASOURCE_UID, VALID, Influx, eq, where

FOLDER = "sitewatch"
GROUP = "sitewatch"
GROUP_INTERVAL = "1m"
EXPRESSION_UID = "__expr__"  # Grafana's server-side expressions

Reducer = typing.Literal["last", "max"]
Comparison = typing.Literal["gt", "gte"]


@dataclass(frozen=True)
class RuleSpec:
    uid: str
    title: str
    summary: str
    query: str  # InfluxQL with $timeFilter: one series per site and node
    range_s: int  # how far back query A reads
    reducer: Reducer
    comparison: Comparison
    limit: float
    severity: str


DUST_QUERY = (
    'SELECT "value" FROM "aggregate" WHERE '
    f"""{where(eq("channel", "pm10_1h_mean"), VALID)} GROUP BY "site", "node\""""
)
GUST_QUERY = (
    'SELECT max("value") FROM "reading" WHERE '
    f"""{where(eq("channel", "wind_gust_3s"), eq("quality", "N"))}"""
    ' GROUP BY time(1m), "site", "node" fill(none)'
)

RULES = (
    RuleSpec("sitewatch-dust-pm10-1h", "扬尘超标: PM10 1 小时均值",
             f"PM10 1-h mean of {{{{ $labels.site }}}} / {{{{ $labels.node }}}} above {PM10_LIMIT:g} μg/m³",
             DUST_QUERY, 3 * 3600, "last", "gt", PM10_LIMIT, "alarm"),
    RuleSpec("sitewatch-wind-crane", "大风: 塔吊停止安装拆卸顶升",
             f"3-s gust at {{{{ $labels.site }}}} / {{{{ $labels.node }}}} at or above {CRANE_GUST:g} m/s: stop "
             "crane installation, dismantling and jacking (GB 55034-2022 3.4.7)",
             GUST_QUERY, 600, "max", "gte", CRANE_GUST, "alarm"),
    RuleSpec("sitewatch-wind-lifting", "大风: 停止露天吊装",
             f"3-s gust at {{{{ $labels.site }}}} / {{{{ $labels.node }}}} at or above {LIFTING_GUST:g} m/s: stop "
             "open-air lifting (JGJ 33-2012 4.1.15)",
             GUST_QUERY, 600, "max", "gte", LIFTING_GUST, "alarm"),
)


def rule(spec: RuleSpec) -> alerting.Rule:
    query = (
        alerting.Query("A")
        .datasource_uid(DATASOURCE_UID)
        .relative_time_range(alerting_models.RelativeTimeRange(from_val=spec.range_s, to=0))
        .model(Influx("A", spec.query))
    )
    reduce = (
        alerting.Query("B")
        .datasource_uid(EXPRESSION_UID)
        .model(expr_builders.TypeReduce().ref_id("B").expression("A").reducer(spec.reducer)
               .settings(expr_builders.ExprTypeReduceSettings().mode("dropNN")))
    )
    threshold = (
        alerting.Query("C")
        .datasource_uid(EXPRESSION_UID)
        .model(expr_builders.TypeThreshold().ref_id("C").expression("B").conditions([
            expr_builders.ExprTypeThresholdConditions().evaluator(
                expr_builders.ExprTypeThresholdConditionsEvaluator().type(spec.comparison).params([spec.limit])
            )
        ]))
    )
    return (
        alerting.Rule(spec.title)
        .uid(spec.uid)
        .condition("C")
        .queries([query, reduce, threshold])
        .no_data_state("OK")
        .exec_err_state("Error")
        .for_val("0s")
        .labels({"severity": spec.severity, "source": "sitewatch"})
        .annotations({"summary": spec.summary})
    )


# Keys of a rule in a provisioning file (Grafana's file format, not the HTTP API's: no folder or group per rule).
PROVISIONED_KEYS = ("uid", "title", "condition", "data", "noDataState", "execErrState", "for", "labels",
                    "annotations")


def provisioning() -> dict[str, object]:
    """The alerting provisioning file's content."""
    rules = []
    for spec in RULES:
        built = rule(spec).build().to_json()
        rules.append({key: built[key] for key in PROVISIONED_KEYS if key in built})
    return {
        "apiVersion": 1,
        "groups": [{"orgId": 1, "name": GROUP, "folder": FOLDER, "interval": GROUP_INTERVAL, "rules": rules}],
    }
