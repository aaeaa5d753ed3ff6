//! The account's services, their payout methods and the fields each requires, as seed 003 shows
//! them, and the simulator's choices where it does not (each says which).

use super::{Field, Label, Method, Name, Service};

/// Seed 003 lines 116–130.
pub(super) static TEST_METHOD: Method = Method {
    code: "test",
    category: "alternative",
    name: Name {
        en: "Test",
        ru: "Test",
        uk: "Test",
    },
};
/// Seed 003's create answer: `payout-method` `payment_card` for the `card` service. Category and
/// names are not shown: the simulator's.
static CARD_METHOD: Method = Method {
    code: "payment_card",
    category: "bank_card",
    name: Name {
        en: "Payment card",
        ru: "Платёжная карта",
        uk: "Платіжна картка",
    },
};
/// Seed 003's service list: `service_method` `swift` (line 172).
static SWIFT_METHOD: Method = Method {
    code: "swift",
    category: "bank_transfer",
    name: Name {
        en: "SWIFT",
        ru: "SWIFT",
        uk: "SWIFT",
    },
};
/// Seed 003's service list: `service_method` `bank_transfer` (line 209).
static BANK_TRANSFER_METHOD: Method = Method {
    code: "bank_transfer",
    category: "bank_transfer",
    name: Name {
        en: "Bank transfer",
        ru: "Банковский перевод",
        uk: "Банківський переказ",
    },
};

/// The `test_usd` fields, as seed 003's pre-request sample lists them (lines 37–108). The seed
/// prints the regexps JSON-escaped twice (`"^\\\\d{1,15}$"`, i.e. a literal backslash before
/// `d`); that cannot be meant (no account would match), so they are served and checked as the
/// regexps it shows once unescaped: `^\d{1,15}$`, `^[A-Z\-\sa-z]{2,64}$`.
static TEST_FIELDS: [Field; 4] = [
    Field {
        key: "account",
        label: Label {
            ru: "Аккаунт",
            en: "Account",
            uk: "Акаунт",
        },
        regexp: r"^\d{1,15}$",
        required: true,
        position: 0,
    },
    Field {
        key: "test_details_success_rate",
        label: Label {
            ru: "Вероятность успеха (%)",
            en: "Success rate (%)",
            uk: "Імовірність успіху (%)",
        },
        regexp: r"^\d{1,15}$",
        required: false,
        position: 0,
    },
    Field {
        key: "test_details_payout_status",
        label: Label {
            ru: "Ожидаемый статус",
            en: "Expected status",
            uk: "Очікуваний статус",
        },
        regexp: r"^[A-Z\-\sa-z]{2,64}$",
        required: false,
        position: 0,
    },
    Field {
        key: "test_details_payout_resolution",
        label: Label {
            ru: "Ожидаемый resolution",
            en: "Expected resolution",
            uk: "Очікуваний resolution",
        },
        regexp: r"^[A-Z\-\sa-z]{2,64}$",
        required: false,
        position: 0,
    },
];

/// `card`: seed 003's create example sends `"fields": {"card_number": "5123817234060000"}`, 16
/// digits; the field's rule is not shown: 16 digits, required.
static CARD_FIELDS: [Field; 1] = [Field {
    key: "card_number",
    label: Label {
        ru: "Номер карты",
        en: "Card number",
        uk: "Номер картки",
    },
    regexp: r"^\d{16}$",
    required: true,
    position: 0,
}];

/// `swift_jpy`: seed 003 does not show its fields; the simulator asks what a SWIFT transfer
/// needs (beneficiary, IBAN or account number, BIC).
static SWIFT_FIELDS: [Field; 3] = [
    Field {
        key: "beneficiary_name",
        label: Label {
            ru: "Имя получателя",
            en: "Beneficiary name",
            uk: "Ім'я отримувача",
        },
        regexp: r"^[A-Za-z][A-Za-z .,'\-]{1,69}$",
        required: true,
        position: 0,
    },
    Field {
        key: "account_number",
        label: Label {
            ru: "Номер счёта",
            en: "Account number",
            uk: "Номер рахунку",
        },
        regexp: r"^[A-Z0-9]{4,34}$",
        required: true,
        position: 1,
    },
    Field {
        key: "swift_code",
        label: Label {
            ru: "SWIFT-код",
            en: "SWIFT code",
            uk: "SWIFT-код",
        },
        regexp: r"^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$",
        required: true,
        position: 2,
    },
];

/// `bank_transfer_zar`: not shown in seed 003; a South African transfer needs an account number
/// and a six-digit branch code.
static ZAR_FIELDS: [Field; 3] = [
    Field {
        key: "beneficiary_name",
        label: Label {
            ru: "Имя получателя",
            en: "Beneficiary name",
            uk: "Ім'я отримувача",
        },
        regexp: r"^[A-Za-z][A-Za-z .,'\-]{1,69}$",
        required: true,
        position: 0,
    },
    Field {
        key: "account_number",
        label: Label {
            ru: "Номер счёта",
            en: "Account number",
            uk: "Номер рахунку",
        },
        regexp: r"^\d{6,16}$",
        required: true,
        position: 1,
    },
    Field {
        key: "branch_code",
        label: Label {
            ru: "Код отделения",
            en: "Branch code",
            uk: "Код відділення",
        },
        regexp: r"^\d{6}$",
        required: true,
        position: 2,
    },
];

/// The catalogue. `test_usd`'s limits: seed 003 lines 110–111; `test_eur` and `test_gbp` are
/// the simulator's twins of it (not in the seed). `swift_jpy` and `bank_transfer_zar`: seed
/// 003's service list (lines 167–231: ids, method, currencies, limits, `active: false`). `card`:
/// seed 003's create example (service `card`, USD); its limits are not shown: the test
/// service's.
pub(super) static SERVICES: [Service; 6] = [
    Service {
        id: "comcpos_SimTestUsd000001",
        code: "test_usd",
        method: &TEST_METHOD,
        currency: "USD",
        account_currency: "USD",
        amount_min: "0.01",
        amount_max: "9999999",
        decimals: 2,
        active: true,
        fields: &TEST_FIELDS,
        account_field: "account",
        production: false,
    },
    Service {
        id: "comcpos_SimTestEur000001",
        code: "test_eur",
        method: &TEST_METHOD,
        currency: "EUR",
        account_currency: "EUR",
        amount_min: "0.01",
        amount_max: "9999999",
        decimals: 2,
        active: true,
        fields: &TEST_FIELDS,
        account_field: "account",
        production: false,
    },
    Service {
        id: "comcpos_SimTestGbp000001",
        code: "test_gbp",
        method: &TEST_METHOD,
        currency: "GBP",
        account_currency: "GBP",
        amount_min: "0.01",
        amount_max: "9999999",
        decimals: 2,
        active: true,
        fields: &TEST_FIELDS,
        account_field: "account",
        production: false,
    },
    Service {
        id: "comcpos_SimCardUsd000001",
        code: "card",
        method: &CARD_METHOD,
        currency: "USD",
        account_currency: "USD",
        amount_min: "0.01",
        amount_max: "9999999",
        decimals: 2,
        active: true,
        fields: &CARD_FIELDS,
        account_field: "card_number",
        production: true,
    },
    Service {
        id: "comcpos_RHUGUgEnmmedR7h3",
        code: "swift_jpy",
        method: &SWIFT_METHOD,
        currency: "JPY",
        account_currency: "GBP",
        amount_min: "1",
        amount_max: "999999",
        decimals: 0,
        active: false,
        fields: &SWIFT_FIELDS,
        account_field: "account_number",
        production: true,
    },
    Service {
        id: "comcpos_giKmqeYwcuWV4QSt",
        code: "bank_transfer_zar",
        method: &BANK_TRANSFER_METHOD,
        currency: "ZAR",
        account_currency: "USD",
        amount_min: "0.01",
        amount_max: "1000000",
        decimals: 2,
        active: false,
        fields: &ZAR_FIELDS,
        account_field: "account_number",
        production: true,
    },
];
