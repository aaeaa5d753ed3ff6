//! What a reviewer checks in `infra/template.yaml`, checked on every test run: every SQS event
//! source reports batch item failures, every queue has a dead-letter queue, visibility timeouts
//! are at least six times the consumer's timeout, every function's role names only this
//! stack's resources (and nothing with a wildcard) and reaches the table's items only by their
//! partition key prefixes, and the KMS key of the signing secrets rotates.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use serde_yaml_ng::Value;

const TEMPLATE: &str = include_str!("../../../infra/template.yaml");

fn template() -> Value {
    serde_yaml_ng::from_str(TEMPLATE).unwrap()
}

fn resources(t: &Value) -> Vec<(String, Value)> {
    t["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone()))
        .collect()
}

fn of_type(t: &Value, kind: &str) -> Vec<(String, Value)> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .collect()
}

fn tagged<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == tag => Some(&t.value),
        _ => None,
    }
}

/// The logical id a `!GetAtt X.Arn` (or `!Ref X`) points to.
fn target(v: &Value) -> Option<String> {
    if let Some(inner) = tagged(v, "GetAtt") {
        return inner.as_str().and_then(|s| s.split('.').next()).map(str::to_owned);
    }
    tagged(v, "Ref").and_then(Value::as_str).map(str::to_owned)
}

fn function_timeout(t: &Value, function: &Value) -> u64 {
    function["Properties"]["Timeout"]
        .as_u64()
        .or_else(|| t["Globals"]["Function"]["Timeout"].as_u64())
        .unwrap_or(3)
}

#[test]
fn every_sqs_event_source_reports_batch_item_failures() {
    let t = template();
    let mut sources = 0;
    for (name, f) in of_type(&t, "AWS::Serverless::Function") {
        for (_, event) in f["Properties"]["Events"].as_mapping().into_iter().flatten() {
            if event["Type"].as_str() != Some("SQS") {
                continue;
            }
            sources += 1;
            let types: Vec<_> = event["Properties"]["FunctionResponseTypes"]
                .as_sequence()
                .unwrap_or_else(|| panic!("{name}: an SQS event without FunctionResponseTypes"))
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert!(types.contains(&"ReportBatchItemFailures"), "{name}");
        }
    }
    assert_eq!(
        sources, 4,
        "dispatch, poll, provider-events and callbacks each have a consumer"
    );
}

#[test]
fn every_queue_has_a_dead_letter_queue_and_visibility_of_six_consumer_timeouts() {
    let t = template();
    let queues = of_type(&t, "AWS::SQS::Queue");
    let dead_letter_targets: BTreeSet<String> = queues
        .iter()
        .filter_map(|(_, q)| target(&q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]))
        .collect();
    let functions = of_type(&t, "AWS::Serverless::Function");
    for (name, q) in &queues {
        if dead_letter_targets.contains(name) {
            continue;
        }
        let redrive = &q["Properties"]["RedrivePolicy"];
        assert!(
            redrive["maxReceiveCount"].as_u64().is_some_and(|n| n >= 1),
            "{name} has no redrive policy"
        );
        let visibility = q["Properties"]["VisibilityTimeout"].as_u64().unwrap_or(30);
        let consumers: Vec<_> = functions
            .iter()
            .filter(|(_, f)| {
                f["Properties"]["Events"]
                    .as_mapping()
                    .into_iter()
                    .flatten()
                    .any(|(_, e)| {
                        e["Type"].as_str() == Some("SQS") && target(&e["Properties"]["Queue"]).as_deref() == Some(name)
                    })
            })
            .collect();
        assert_eq!(consumers.len(), 1, "{name} has exactly one consumer");
        for (fname, f) in consumers {
            let timeout = function_timeout(&t, f);
            assert!(
                visibility >= 6 * timeout,
                "{name}: visibility {visibility} s < 6 × {fname} timeout {timeout} s"
            );
        }
    }
    assert_eq!(dead_letter_targets.len(), 4);
}

/// Every resource string of a role's policy, with what it points at.
fn policy_resources(role: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for policy in role["Properties"]["Policies"].as_sequence().unwrap() {
        for statement in policy["PolicyDocument"]["Statement"].as_sequence().unwrap() {
            match &statement["Resource"] {
                Value::Sequence(list) => out.extend(list.iter().cloned()),
                other => out.push(other.clone()),
            }
        }
    }
    out
}

#[test]
fn every_function_role_names_only_this_stacks_resources() {
    let t = template();
    let logical_ids: BTreeSet<String> = resources(&t).into_iter().map(|(k, _)| k).collect();
    let parameters: BTreeSet<String> = t["Parameters"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    for (name, f) in of_type(&t, "AWS::Serverless::Function") {
        let role = target(&f["Properties"]["Role"]).unwrap_or_else(|| panic!("{name} must have its own role"));
        assert!(f["Properties"]["Policies"].is_null(), "{name}: no SAM policy templates");
        let (_, role) = resources(&t).into_iter().find(|(k, _)| *k == role).unwrap();
        for resource in policy_resources(&role) {
            if let Some(id) = target(&resource) {
                assert!(logical_ids.contains(&id), "{name}: {id} is not in this stack");
                continue;
            }
            let text = tagged(&resource, "Sub")
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{name}: a literal resource {resource:?}; use this stack's resources"));
            assert!(!text.contains('*'), "{name}: wildcard in {text}");
            // Every ${…} names a resource or a parameter of this stack (or a pseudo parameter).
            for reference in text.split("${").skip(1).map(|s| s.split('}').next().unwrap()) {
                let id = reference.split('.').next().unwrap();
                assert!(
                    logical_ids.contains(id) || parameters.contains(id) || id.starts_with("AWS::"),
                    "{name}: {reference} in {text}"
                );
            }
            let names_stack_resource = text
                .split("${")
                .skip(1)
                .any(|s| logical_ids.contains(s.split(['.', '}']).next().unwrap()));
            let names_stack_parameter = text.contains("parameter${ProvidersParameterName}");
            assert!(
                names_stack_resource || names_stack_parameter,
                "{name}: {text} names nothing of this stack"
            );
        }
    }
}

/// SAM builds each function with `make build-<LogicalId>` from the repository root (the
/// Makefile runs cargo lambda with the size-optimised `lambda` profile): every function must have
/// its Makefile target, naming its binary.
#[test]
fn functions_are_rust_on_provided_al2023_built_by_the_makefile() {
    let t = template();
    let globals = &t["Globals"]["Function"];
    assert_eq!(globals["Runtime"].as_str(), Some("provided.al2023"));
    assert_eq!(globals["Handler"].as_str(), Some("bootstrap"));
    assert_eq!(
        globals["CodeUri"].as_str(),
        Some(".."),
        "SAM runs the Makefile of the repository root"
    );
    assert_eq!(t["Parameters"]["Architecture"]["Default"].as_str(), Some("x86_64"));
    let makefile = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Makefile")).unwrap();
    let binaries: BTreeSet<_> = of_type(&t, "AWS::Serverless::Function")
        .into_iter()
        .map(|(name, f)| {
            assert_eq!(f["Metadata"]["BuildMethod"].as_str(), Some("makefile"), "{name}");
            let binary = f["Metadata"]["Binary"].as_str().unwrap().to_owned();
            let target = format!("$(eval $(call function,{name},{binary}))");
            assert!(makefile.contains(&target), "the Makefile has no `{target}`");
            binary
        })
        .collect();
    let expected: BTreeSet<_> = [
        "cashout-api",
        "cashout-provider-webhooks",
        "cashout-dispatcher",
        "cashout-poller",
        "cashout-callbacks",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(binaries, expected);
    assert!(makefile.contains("--profile $(LAMBDA_PROFILE)") && makefile.contains("LAMBDA_PROFILE ?= lambda"));
}

#[test]
fn every_dead_letter_queue_and_function_has_an_alarm() {
    let t = template();
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    let watched: BTreeSet<String> = alarms
        .iter()
        // An alarm on a metric of our own (a log metric filter) has no dimensions: it watches
        // no resource.
        .flat_map(|(_, a)| a["Properties"]["Dimensions"].as_sequence().cloned().unwrap_or_default())
        .filter_map(|d| target(&d["Value"]))
        .collect();
    for (name, _) in of_type(&t, "AWS::SQS::Queue")
        .into_iter()
        .chain(of_type(&t, "AWS::Serverless::Function"))
    {
        assert!(watched.contains(&name), "{name} has no alarm");
    }
    let metrics: BTreeSet<_> = alarms
        .iter()
        .filter_map(|(_, a)| a["Properties"]["MetricName"].as_str().map(str::to_owned))
        .collect();
    for m in [
        "ApproximateNumberOfMessagesVisible",
        "ApproximateAgeOfOldestMessage",
        "Errors",
        "Throttles",
    ] {
        assert!(metrics.contains(m), "no {m} alarm");
    }
}

/// Every function's log group counts its `alert=true` lines into one metric, and an alarm watches
/// that metric (a line a person must act on never goes unnoticed).
#[test]
fn every_log_group_counts_its_alert_lines_and_an_alarm_watches_them() {
    let t = template();
    let groups: BTreeSet<String> = of_type(&t, "AWS::Logs::LogGroup").into_iter().map(|(n, _)| n).collect();
    assert!(groups.len() >= 5, "{groups:?}");
    let counted: BTreeSet<String> = of_type(&t, "AWS::Logs::MetricFilter")
        .into_iter()
        .filter(|(_, f)| f["Properties"]["FilterPattern"].as_str() == Some("{ $.fields.alert IS TRUE }"))
        .filter(|(_, f)| f["Properties"]["MetricTransformations"][0]["MetricName"].as_str() == Some("AlertLines"))
        .filter_map(|(_, f)| target(&f["Properties"]["LogGroupName"]))
        .collect();
    assert_eq!(counted, groups, "each log group has an alert-line filter");
    let watched = of_type(&t, "AWS::CloudWatch::Alarm").into_iter().any(|(_, a)| {
        a["Properties"]["MetricName"].as_str() == Some("AlertLines") && a["Properties"]["Threshold"].as_u64() == Some(0)
    });
    assert!(watched, "an alarm on AlertLines > 0");
}

/// The statements of a function's role.
fn statements(t: &Value, function: &Value) -> Vec<Value> {
    let role = target(&function["Properties"]["Role"]).unwrap();
    let (_, role) = resources(t).into_iter().find(|(k, _)| *k == role).unwrap();
    role["Properties"]["Policies"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_sequence().unwrap().clone())
        .collect()
}

fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::Sequence(list) => list.iter().map(|a| a.as_str().unwrap().to_owned()).collect(),
        one => vec![one.as_str().unwrap().to_owned()],
    }
}

#[test]
fn every_function_reaches_table_items_only_by_their_partition_key_prefixes() {
    let t = template();
    for (name, f) in of_type(&t, "AWS::Serverless::Function") {
        let mut on_table = 0;
        for statement in statements(&t, &f) {
            let dynamodb: Vec<String> = actions(&statement)
                .into_iter()
                .filter(|a| a.starts_with("dynamodb:"))
                .collect();
            if dynamodb.is_empty() {
                continue;
            }
            // `ForAllValues` holds vacuously for a call without keys: no function may scan.
            assert!(
                !dynamodb.iter().any(|a| a == "dynamodb:Scan" || a == "dynamodb:*"),
                "{name}: {dynamodb:?}"
            );
            if target(&statement["Resource"]).as_deref() == Some("CashoutTable") {
                on_table += 1;
                let prefixes = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
                    .as_sequence()
                    .unwrap_or_else(|| panic!("{name}: {dynamodb:?} on the table without dynamodb:LeadingKeys"));
                assert!(!prefixes.is_empty(), "{name}");
                for p in prefixes {
                    let p = p.as_str().unwrap();
                    assert!(p != "*" && !p.starts_with('*'), "{name}: {p} matches every item");
                }
            } else {
                // Index queries only (`…/index/…`), which LeadingKeys does not describe.
                assert_eq!(dynamodb, ["dynamodb:Query"], "{name}: {statement:?}");
            }
        }
        assert!(on_table > 0, "{name} reaches no table items");
    }
}

#[test]
fn the_signing_secrets_key_rotates_and_only_the_api_makes_data_keys() {
    let t = template();
    let (_, key) = resources(&t)
        .into_iter()
        .find(|(k, _)| k == "SigningSecretsKey")
        .unwrap();
    assert_eq!(key["Type"].as_str(), Some("AWS::KMS::Key"));
    assert_eq!(key["Properties"]["EnableKeyRotation"].as_bool(), Some(true));
    assert_eq!(
        target(&t["Globals"]["Function"]["Environment"]["Variables"]["CASHOUT_KMS_KEY_ID"]).as_deref(),
        Some("SigningSecretsKey"),
        "every function is told the key"
    );
    for (name, f) in of_type(&t, "AWS::Serverless::Function") {
        for statement in statements(&t, &f) {
            let kms: Vec<String> = actions(&statement)
                .into_iter()
                .filter(|a| a.starts_with("kms:"))
                .collect();
            if kms.is_empty() {
                continue;
            }
            assert_eq!(
                target(&statement["Resource"]).as_deref(),
                Some("SigningSecretsKey"),
                "{name}"
            );
            let allowed: &[&str] = if name == "ApiFunction" {
                &["kms:GenerateDataKey", "kms:Decrypt"]
            } else {
                &["kms:Decrypt"]
            };
            for action in &kms {
                assert!(allowed.contains(&action.as_str()), "{name}: {action}");
            }
            assert_eq!(
                statement["Condition"]["StringEquals"]["kms:EncryptionContext:cashout"].as_str(),
                Some("webhook-secret"),
                "{name}: KMS only for signing secrets"
            );
        }
    }
}
