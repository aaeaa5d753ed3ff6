//! Cascad (seed 003): the pre-request, service, invoice, list and error samples replayed byte for
//! byte; every status of the directives table, the production services' rules, resolutions and
//! signed callbacks on the wire.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use cashout_provider_sim::{
    CascadCredentials, FaultConfig, Faults, ManualClock, Provider, SimConfig, SimHandle, defaults,
};
use serde_json::{Value, json};
use sha1::Digest as _;

use super::{Answer, assert_bytes, at, clocked, send, start};

const PREREQUEST_REQUEST: &str = include_str!("../fixtures/seed003_prerequest_request.json");
const PREREQUEST_RESPONSE: &str = include_str!("../fixtures/seed003_prerequest_response.json");
const SERVICES: &str = include_str!("../fixtures/seed003_services.json");
const SERVICE: &str = include_str!("../fixtures/seed003_service.json");
const CREATE_REQUEST: &str = include_str!("../fixtures/seed003_create_request.json");
const CREATE_RESPONSE: &str = include_str!("../fixtures/seed003_create_response.json");
const PROCESS_RESPONSE: &str = include_str!("../fixtures/seed003_process_response.json");
const PUBLIC_SHOW: &str = include_str!("../fixtures/seed003_public_show.json");
const PRIVATE_SHOW: &str = include_str!("../fixtures/seed003_private_show.json");
const LIST: &str = include_str!("../fixtures/seed003_list.json");
const ERROR_401: &str = include_str!("../fixtures/seed003_error_401.json");
const ERROR_404: &str = include_str!("../fixtures/seed003_error_404.json");
const ERROR_405: &str = include_str!("../fixtures/seed003_error_405.json");
const ERROR_422: &str = include_str!("../fixtures/seed003_error_422.json");
const ERROR_500: &str = include_str!("../fixtures/seed003_error_500.json");

/// The public key of seed 003's pre-request sample.
const SEED_PUBLIC_KEY: &str = "pk_live_NM6Rpg6A29zNlSQHiCsprOJyT9WXuFa76WcwwBB69cS";
/// The reference of seed 003's create request. Its answers show another one
/// (`ada8c01f-f5d4-4037-88f1-d222ee6497ad`): the replays read that as this one.
const SEED_REFERENCE: &str = "a5c22bfb-04c1-4dbf-8b46-9753bf1f6570";
const SEED_ANSWER_REFERENCE: &str = "ada8c01f-f5d4-4037-88f1-d222ee6497ad";
/// `created` of seed 003's create answer.
const SEED_CREATED: i64 = 1_597_835_735;

fn cascad_config(unix: i64, production_services: bool) -> (Arc<ManualClock>, SimConfig) {
    let (clock, config) = clocked(unix);
    (
        clock,
        SimConfig {
            cascad: CascadCredentials {
                public_key: SEED_PUBLIC_KEY.into(),
                ..CascadCredentials::default()
            },
            faults: Faults {
                cascad: FaultConfig {
                    production_services,
                    ..FaultConfig::default()
                },
                ..Faults::default()
            },
            ..config
        },
    )
}

fn cascad(sim: &SimHandle, method: &str, path: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(
            method.parse().unwrap(),
            format!("{}{path}", sim.base_url(Provider::Cascad)),
        )
        .basic_auth(defaults::CASCAD_ACCOUNT, Some(defaults::CASCAD_API_KEY))
}

async fn cascad_create(sim: &SimHandle, body: &str) -> Answer {
    send(
        cascad(sim, "POST", "/payout-invoices")
            .header("content-type", "application/json")
            .body(body.to_owned()),
    )
    .await
}

/// The ids the simulator chose for an invoice, to put in place of the seed's.
struct Ids {
    invoice: String,
    serial: String,
    customer: String,
}

fn ids(answer: &Value) -> Ids {
    let data = &answer["data"];
    Ids {
        invoice: data["id"].as_str().unwrap().to_owned(),
        serial: data["attributes"]["serial_number"].as_str().unwrap().to_owned(),
        customer: data["relationships"]["customer"]["data"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// A seed sample with the simulator's ids in place of `seed_serial`'s invoice and the seed's
/// customer, and the request's reference in place of the answer's.
fn with_ids(sample: &str, seed_serial: &str, ids: &Ids) -> String {
    sample
        .replace(&format!("cpoi_{seed_serial}"), &ids.invoice)
        .replace(seed_serial, &ids.serial)
        .replace("cus_Tjhe1ufEB3kRrgWy", &ids.customer)
        .replace(SEED_ANSWER_REFERENCE, SEED_REFERENCE)
}

#[tokio::test]
async fn seed_003_prerequest_sample_is_served_as_documented() {
    let (_, config) = cascad_config(SEED_CREATED, false);
    let sim = start(config).await;
    let answer = send(
        reqwest::Client::new()
            .post(format!("{}/payout-prerequest", sim.base_url(Provider::Cascad)))
            .header("content-type", "application/json")
            .body(PREREQUEST_REQUEST),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    // The sample is not laid out as a serialiser writes (`"currency":"USD"`, uneven indents): it
    // is compared as JSON. Its regexps are escaped twice (`"^\\\\d{1,15}$"`): compared once
    // unescaped, as served (see `services.rs`).
    let expected: Value = serde_json::from_str(&PREREQUEST_RESPONSE.replace(r"\\\\", r"\\")).unwrap();
    assert_eq!(answer.json(), expected);
    // `methods` and `account` sit inside `services`, as the sample has them.
    assert!(answer.json()["data"]["services"]["methods"]["test"].is_object());
    // Another key is refused; an amount out of every service's limits offers none.
    let wrong = PREREQUEST_REQUEST.replace("pk_live_", "pk_test_");
    let r = send(
        reqwest::Client::new()
            .post(format!("{}/payout-prerequest", sim.base_url(Provider::Cascad)))
            .body(wrong),
    )
    .await;
    assert_bytes(&r.text, ERROR_401, "401");
    let huge = PREREQUEST_REQUEST.replace("\"amount\":10", "\"amount\":10000000");
    let r = send(
        reqwest::Client::new()
            .post(format!("{}/payout-prerequest", sim.base_url(Provider::Cascad)))
            .body(huge),
    )
    .await;
    let services = r.json()["data"]["services"].as_object().unwrap().clone();
    let mut keys: Vec<&String> = services.keys().collect();
    keys.sort();
    assert_eq!(keys, ["account", "methods"], "no service, only the account's objects");
}

#[tokio::test]
async fn seed_003_services_are_served_as_documented_with_the_production_switch() {
    let (_, config) = cascad_config(SEED_CREATED, true);
    let sim = start(config).await;
    let one = send(cascad(&sim, "GET", "/payout-services/comcpos_RHUGUgEnmmedR7h3")).await;
    assert_eq!(one.status, 200);
    assert_bytes(&one.text, SERVICE, "service by id");
    // The list sample is abridged (168 services, two shown, the second without `links`): each
    // service it shows is served with at least what it shows.
    let list = send(cascad(&sim, "GET", "/payout-services?page[number]=1&page[size]=20")).await;
    let list = list.json();
    let seed: Value = serde_json::from_str(SERVICES).unwrap();
    for documented in seed["data"].as_array().unwrap() {
        let served = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == documented["id"])
            .unwrap_or_else(|| panic!("{} is not served", documented["id"]));
        assert_contains(served, documented, documented["id"].as_str().unwrap());
    }
    assert_eq!(list["meta"], json!({"total": 6, "pages": 1, "page": 1}));
    assert_eq!(
        list["links"]["first"],
        "/api/payout-services?page[number]=1&page[size]=20"
    );
    // The id is the account service id, not the code.
    assert_bytes(
        &send(cascad(&sim, "GET", "/payout-services/swift_jpy")).await.text,
        ERROR_404,
        "404",
    );
    // Without the switch, the account has the test services only.
    let (_, plain) = cascad_config(SEED_CREATED, false);
    let plain = start(plain).await;
    let codes: Vec<Value> = send(cascad(&plain, "GET", "/payout-services")).await.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["attributes"]["service"].clone())
        .collect();
    assert_eq!(codes, [json!("test_usd"), json!("test_eur"), json!("test_gbp")]);
    assert_eq!(
        send(cascad(&plain, "GET", "/payout-services/comcpos_RHUGUgEnmmedR7h3"))
            .await
            .status,
        404
    );
}

/// `served` holds every key of `documented` with the same value (recursively for objects).
#[track_caller]
fn assert_contains(served: &Value, documented: &Value, path: &str) {
    match (served, documented) {
        (Value::Object(s), Value::Object(d)) => {
            for (k, v) in d {
                let inner = s.get(k).unwrap_or_else(|| panic!("{path}.{k} is missing"));
                assert_contains(inner, v, &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(served, documented, "{path}"),
    }
}

#[tokio::test]
async fn seed_003_invoice_samples_replay_byte_for_byte_from_create_to_processed() {
    let (clock, config) = cascad_config(SEED_CREATED, true);
    let sim = start(config).await;
    // The create request exactly as printed: 201 and the documented answer.
    let created = cascad_create(&sim, CREATE_REQUEST).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let ids = ids(&created.json());
    assert!(ids.invoice.starts_with("cpoi_") && ids.invoice.len() == "cpoi_VdHYVxq4RsLEebAQ".len());
    assert_bytes(
        &created.text,
        &with_ids(CREATE_RESPONSE, "VdHYVxq4RsLEebAQ", &ids),
        "create answer",
    );
    // Processed 197 s later (so that `processed` lands on the sample's 1597835933): the answer
    // is the invoice, still `created`.
    clock.set(at(1_597_835_932));
    let processed = send(cascad(
        &sim,
        "POST",
        &format!("/payout-invoices/{}/process", ids.invoice),
    ))
    .await;
    assert_eq!(processed.status, 200);
    assert_bytes(
        &processed.text,
        &with_ids(PROCESS_RESPONSE, "VdHYVxq4RsLEebAQ", &ids),
        "process answer",
    );
    clock.set(at(1_597_835_933) + time::Duration::milliseconds(500));
    let private = send(cascad(&sim, "GET", &format!("/payout-invoices/{}", ids.invoice))).await;
    assert_bytes(
        &private.text,
        &with_ids(PRIVATE_SHOW, "VdHYVxq4RsLEebAQ", &ids),
        "private lookup",
    );
    let public = send(reqwest::Client::new().get(format!(
        "{}/payout-invoices/{}?public_key={SEED_PUBLIC_KEY}",
        sim.base_url(Provider::Cascad),
        ids.invoice
    )))
    .await;
    assert_bytes(
        &public.text,
        &with_ids(PUBLIC_SHOW, "VdHYVxq4RsLEebAQ", &ids),
        "public lookup",
    );
    // By reference, through both APIs.
    let by_reference = send(cascad(
        &sim,
        "GET",
        &format!("/payout-invoices?filter[reference_id]={SEED_REFERENCE}"),
    ))
    .await;
    assert_eq!(by_reference.json()["data"][0]["id"], json!(ids.invoice));
    let public_by_reference = send(reqwest::Client::new().get(format!(
        "{}/payout-invoices?filter[reference_id]={SEED_REFERENCE}&public_key={SEED_PUBLIC_KEY}",
        sim.base_url(Provider::Cascad)
    )))
    .await;
    assert_eq!(
        public_by_reference.json()["data"][0],
        serde_json::from_str::<Value>(&with_ids(PUBLIC_SHOW, "VdHYVxq4RsLEebAQ", &ids)).unwrap()["data"]
    );
}

#[tokio::test]
async fn seed_003_list_sample_replays_from_its_two_invoices() {
    // The sample's invoices: S1zo… created at 1595841808 and left `created`; O2aH… (the create
    // request's reference) created at 1595841296 and processed at 1595854491.
    let (clock, config) = cascad_config(1_595_841_296, true);
    let sim = start(config).await;
    let older = cascad_create(&sim, CREATE_REQUEST).await;
    let older = ids(&older.json());
    clock.set(at(1_595_841_808));
    let newer_request = CREATE_REQUEST.replace(SEED_REFERENCE, "1c005c55-d345-4eef-960b-bd8db14256b2");
    let newer = ids(&cascad_create(&sim, &newer_request).await.json());
    clock.set(at(1_595_854_490));
    send(cascad(
        &sim,
        "POST",
        &format!("/payout-invoices/{}/process", older.invoice),
    ))
    .await;
    clock.set(at(1_595_854_491) + time::Duration::milliseconds(500));
    let list = send(cascad(&sim, "GET", "/payout-invoices")).await;
    assert_eq!(list.status, 200);
    assert_eq!(older.customer, newer.customer, "one customer reference, one customer");
    let expected = with_ids(&with_ids(LIST, "S1zoJnT8x4iZ4oPr", &newer), "O2aH69xK7mgwZUK1", &older);
    // The sample's `meta` does not describe its own page (count 5 for two invoices, `before` an
    // id not in it): its keys are compared, the rest byte for byte from `links` on.
    let from_links = |text: &str| text[text.find("\"links\"").unwrap()..].to_owned();
    assert_bytes(&from_links(&list.text), &from_links(&expected), "list");
    let meta = list.json()["meta"].clone();
    let seed_meta: Value = serde_json::from_str(LIST).unwrap();
    assert_eq!(
        meta.as_object().unwrap().keys().collect::<Vec<_>>(),
        seed_meta["meta"].as_object().unwrap().keys().collect::<Vec<_>>()
    );
    assert_eq!(
        meta,
        json!({"count": 2, "size": 20, "before": newer.invoice, "after": older.invoice})
    );
}

#[tokio::test]
async fn seed_003_error_samples_are_served_byte_for_byte() {
    let (_, config) = cascad_config(SEED_CREATED, true);
    let sim = start(config).await;
    let base = sim.base_url(Provider::Cascad);
    let client = reqwest::Client::new();
    assert_bytes(
        &send(client.get(format!("{base}/payout-invoices"))).await.text,
        ERROR_401,
        "401 without auth",
    );
    let not_found = send(cascad(&sim, "GET", "/payout-invoices/cpoi_DoesNotExist0000")).await;
    assert_eq!(not_found.status, 404);
    assert_bytes(&not_found.text, ERROR_404, "404 unknown invoice");
    let not_allowed = send(cascad(&sim, "DELETE", "/payout-invoices/cpoi_DoesNotExist0000")).await;
    assert_eq!(not_allowed.status, 405);
    assert_bytes(&not_allowed.text, ERROR_405, "405");
    let zero = CREATE_REQUEST.replace("\"amount\":10,", "\"amount\":0,");
    let r = cascad_create(&sim, &zero).await;
    assert_eq!(r.status, 422);
    assert_bytes(&r.text, ERROR_422, "422 amount");
    assert!(sim.ledger().payouts.is_empty(), "422: nothing was created");
    sim.set_faults(
        Provider::Cascad,
        FaultConfig {
            error_after: 100,
            production_services: true,
            ..FaultConfig::default()
        },
    );
    let r = cascad_create(&sim, CREATE_REQUEST).await;
    assert_eq!(r.status, 500);
    assert_bytes(&r.text, ERROR_500, "500");
    assert_eq!(sim.ledger().payouts.len(), 1, "the lost answer: the invoice exists");
}

#[tokio::test]
async fn cascad_answers_every_status_of_the_directives_table() {
    let (_, config) = cascad_config(SEED_CREATED, true);
    let sim = start(config).await;
    // 400: not JSON; nothing created.
    let r = cascad_create(&sim, "{\"data\": ").await;
    assert_eq!((r.status, r.json()["errors"][0]["code"].clone()), (400, json!("400")));
    // 403: a test key cannot make a live payout.
    let live = CREATE_REQUEST.replace("\"test_mode\":true", "\"test_mode\":false");
    let r = cascad_create(&sim, &live).await;
    assert_eq!(
        (r.status, r.json()["errors"][0]["status"].clone()),
        (403, json!("Forbidden"))
    );
    assert!(sim.ledger().payouts.is_empty());
    // 201, then 409 naming the invoice that exists.
    let first = ids(&cascad_create(&sim, CREATE_REQUEST).await.json());
    let dup = cascad_create(&sim, CREATE_REQUEST).await;
    assert_eq!(dup.status, 409);
    let dup = dup.json();
    assert!(dup["errors"][0]["detail"].as_str().unwrap().contains(&first.invoice));
    assert_eq!(dup["meta"]["invoice"]["id"], json!(first.invoice));
    assert_eq!(dup["meta"]["invoice"]["attributes"]["reference_id"], SEED_REFERENCE);
    // 422 naming the field the service's rules refuse.
    let short_card = CREATE_REQUEST
        .replace("5123817234060000", "512381723406000")
        .replace(SEED_REFERENCE, "r-short");
    let r = cascad_create(&sim, &short_card).await;
    assert_eq!(
        (r.status, r.json()),
        (
            422,
            json!({"errors": {"fields.card_number": "This value is not valid."}})
        )
    );
    // 400 after the invoice was made (`bad_request_after`): not final, the invoice exists.
    sim.set_faults(
        Provider::Cascad,
        FaultConfig {
            bad_request_after: 100,
            production_services: true,
            ..FaultConfig::default()
        },
    );
    let lying = CREATE_REQUEST.replace(SEED_REFERENCE, "r-400");
    assert_eq!(cascad_create(&sim, &lying).await.status, 400);
    sim.set_faults(
        Provider::Cascad,
        FaultConfig {
            production_services: true,
            ..FaultConfig::default()
        },
    );
    let found = send(cascad(&sim, "GET", "/payout-invoices?filter[reference_id]=r-400")).await;
    assert_eq!(found.json()["data"].as_array().unwrap().len(), 1);
    // 404 on an empty reference filter only with the switch; an empty list otherwise.
    let none = send(cascad(&sim, "GET", "/payout-invoices?filter[reference_id]=nobody")).await;
    assert_eq!((none.status, none.json()["data"].clone()), (200, json!([])));
    sim.set_faults(
        Provider::Cascad,
        FaultConfig {
            not_found_on_empty_filter: true,
            ..FaultConfig::default()
        },
    );
    let none = send(cascad(&sim, "GET", "/payout-invoices?filter[reference_id]=nobody")).await;
    assert_eq!(none.status, 404);
    assert_bytes(&none.text, ERROR_404, "404 empty filter");
    // 5xx before anything is done: the seed's body with the gateway's code.
    sim.set_faults(
        Provider::Cascad,
        FaultConfig {
            error_before: 100,
            ..FaultConfig::default()
        },
    );
    let r = send(cascad(&sim, "GET", "/payout-invoices")).await;
    assert!([500, 502, 503].contains(&r.status));
    assert_eq!(r.json()["errors"][0]["code"], json!(r.status.to_string()));
}

#[tokio::test]
async fn production_services_check_their_fields_currencies_and_limits() {
    let (_, config) = cascad_config(SEED_CREATED, true);
    let sim = start(config).await;
    let invoice = |reference: &str, service: &str, currency: &str, amount: &str, fields: Value| {
        json!({"data": {"type": "payout-invoice", "attributes": {
            "reference_id": reference, "service": service, "currency": currency,
            "amount": serde_json::from_str::<Value>(amount).unwrap(), "fields": fields}}})
        .to_string()
    };
    let swift =
        json!({"beneficiary_name": "Ana Silva", "account_number": "GB29NWBK60161331926819", "swift_code": "NWBKGB2L"});
    let r = cascad_create(&sim, &invoice("j-1", "swift_jpy", "JPY", "1500", swift.clone())).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = cascad_create(&sim, &invoice("j-2", "swift_jpy", "JPY", "1500.5", swift.clone())).await;
    assert_eq!(
        r.json(),
        json!({"errors": {"amount": "This value has too many decimals."}})
    );
    let r = cascad_create(&sim, &invoice("j-3", "swift_jpy", "GBP", "1500", swift.clone())).await;
    assert_eq!(
        r.json()["errors"]["currency"],
        "The currency does not match the service."
    );
    let r = cascad_create(&sim, &invoice("j-4", "swift_jpy", "JPY", "1000000", swift)).await;
    assert_eq!(r.json()["errors"]["amount"], "The amount is out of the service limits.");
    let zar = json!({"beneficiary_name": "Thabo", "account_number": "62001234567"});
    let r = cascad_create(&sim, &invoice("z-1", "bank_transfer_zar", "ZAR", "250.75", zar)).await;
    assert_eq!(
        r.json(),
        json!({"errors": {"fields.branch_code": "This value should not be blank."}})
    );
    // The trigger reads the service's account field: …30 declines, naming it.
    let zar = json!({"beneficiary_name": "Thabo", "account_number": "62001234530", "branch_code": "250655"});
    let r = cascad_create(&sim, &invoice("z-2", "bank_transfer_zar", "ZAR", "250.75", zar)).await;
    assert_eq!(r.status, 422);
    assert!(r.json()["errors"]["fields.account_number"].is_string());
    // With the switch off the production services are not the account's.
    sim.set_faults(
        Provider::Cascad,
        FaultConfig {
            production_services: false,
            ..FaultConfig::default()
        },
    );
    let r = cascad_create(
        &sim,
        &invoice("c-1", "card", "USD", "10", json!({"card_number": "5123817234060000"})),
    )
    .await;
    assert_eq!(
        r.json(),
        json!({"errors": {"service": "The service is not available for the account."}})
    );
}

#[tokio::test]
async fn a_processed_invoice_can_carry_a_resolution_that_is_not_ok() {
    let (clock, config) = cascad_config(SEED_CREATED, false);
    let sim = start(config).await;
    let body = |reference: &str, fields: Value| {
        json!({"data": {"type": "payout-invoice", "attributes": {
            "reference_id": reference, "service": "test_usd", "currency": "USD", "amount": 10,
            "fields": fields, "options": {"auto_process": true}}}})
        .to_string()
    };
    let by_trigger = ids(&cascad_create(&sim, &body("u-08", json!({"account": "123408"})))
        .await
        .json());
    let by_fields = ids(&cascad_create(
        &sim,
        &body(
            "u-fields",
            json!({"account": "1234", "test_details_payout_status": "processed",
                   "test_details_payout_resolution": "insufficient funds"}),
        ),
    )
    .await
    .json());
    clock.advance(time::Duration::seconds(2));
    for (id, resolution) in [
        (&by_trigger.invoice, "error"),
        (&by_fields.invoice, "insufficient_funds"),
    ] {
        let a = send(cascad(&sim, "GET", &format!("/payout-invoices/{id}")))
            .await
            .json();
        assert_eq!(a["data"]["attributes"]["status"], "processed");
        assert_eq!(a["data"]["attributes"]["resolution"], resolution);
    }
}

#[tokio::test]
async fn callbacks_are_the_lookup_document_signed_with_x_signature() {
    let (clock, config) = cascad_config(SEED_CREATED, true);
    let sim = start(config).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Arc<std::sync::Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let sig = headers["x-signature"].to_str().unwrap().to_owned();
                sink.lock().unwrap().push((sig, body));
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let request = CREATE_REQUEST.replace("https://webhook.site/1192f6ef-71c9-4b80-b43b-133d8fe14677", &hook);
    let created = ids(&cascad_create(&sim, &request).await.json());
    send(cascad(
        &sim,
        "POST",
        &format!("/payout-invoices/{}/process", created.invoice),
    ))
    .await;
    clock.advance(time::Duration::seconds(2));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "two callbacks within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let lookup = send(cascad(&sim, "GET", &format!("/payout-invoices/{}", created.invoice))).await;
    let callbacks = got.lock().unwrap().clone();
    // Sent concurrently: they may arrive in either order.
    let (_, last) = callbacks
        .iter()
        .find(|(_, body)| body.contains("\"status\": \"processed\""))
        .unwrap();
    assert_eq!(last, &lookup.text, "the callback body is the lookup's document");
    for (sig, body) in &callbacks {
        let mut sha = sha1::Sha1::new();
        sha.update(defaults::CASCAD_SECRET.as_bytes());
        sha.update(body.as_bytes());
        sha.update(defaults::CASCAD_SECRET.as_bytes());
        assert_eq!(sig, &base64::engine::general_purpose::STANDARD.encode(sha.finalize()));
    }
}
