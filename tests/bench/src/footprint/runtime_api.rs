//! An emulated Lambda Runtime API (`2018-06-01`), one per process, and the bootstrap process
//! that talks to it, run as Lambda runs it: the process asks for its next event, gets one, and
//! posts the answer (or an error) back. Just enough of the API for the footprint figures: when a
//! process first asks for an event (start to ready), invocations one at a time, init errors.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::bench::{BenchError, fail};

/// How long a process may take to ask for its first event.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// The functions' timeout in the template.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a function answered.
#[derive(Debug)]
pub(super) enum Outcome {
    /// `POST …/response`.
    Response(Bytes),
    /// `POST …/error`.
    Error(Bytes),
}

struct Invocation {
    id: String,
    event: Vec<u8>,
    reply: oneshot::Sender<Outcome>,
}

struct RuntimeState {
    arn: String,
    ready: watch::Sender<Option<Instant>>,
    init_error: watch::Sender<Option<String>>,
    next: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
}

/// A minimal Lambda Runtime API (`2018-06-01`) for one process: hands out the events sent to
/// it one at a time and collects the answers.
struct RuntimeApi {
    addr: SocketAddr,
    state: Arc<RuntimeState>,
    events: mpsc::Sender<Invocation>,
    server: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    async fn start(function: &str) -> Result<RuntimeApi, BenchError> {
        let (events, rx) = mpsc::channel(1);
        let state = Arc::new(RuntimeState {
            arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function}"),
            ready: watch::Sender::new(None),
            init_error: watch::Sender::new(None),
            next: tokio::sync::Mutex::new(rx),
            waiting: Mutex::new(HashMap::new()),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_event))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(fail)?;
        let addr = listener.local_addr().map_err(fail)?;
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "the footprint runtime API stopped");
            }
        });
        Ok(RuntimeApi {
            addr,
            state,
            events,
            server,
        })
    }
}

async fn next_event(State(s): State<Arc<RuntimeState>>) -> Result<(HeaderMap, Vec<u8>), StatusCode> {
    s.ready.send_if_modified(|at| {
        if at.is_none() {
            *at = Some(Instant::now());
            true
        } else {
            false
        }
    });
    let invocation = s.next.lock().await.recv().await;
    let Some(invocation) = invocation else {
        return Err(StatusCode::GONE);
    };
    let deadline = SystemTime::now()
        .checked_add(INVOKE_TIMEOUT)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_millis();
    let trace = format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        deadline / 1000,
        &uuid::Uuid::now_v7().simple().to_string()[..24],
        &uuid::Uuid::now_v7().simple().to_string()[..16],
    );
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("lambda-runtime-aws-request-id", invocation.id.clone()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        ("lambda-runtime-invoked-function-arn", s.arn.clone()),
        ("lambda-runtime-trace-id", trace),
        ("content-type", "application/json".to_owned()),
    ] {
        let value = HeaderValue::from_str(&value).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        headers.insert(HeaderName::from_static(name), value);
    }
    s.waiting
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(invocation.id, invocation.reply);
    Ok((headers, invocation.event))
}

fn answer(s: &RuntimeState, id: &str, outcome: Outcome) -> StatusCode {
    let waiting = s.waiting.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    match waiting {
        Some(reply) => {
            let _ = reply.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn response(State(s): State<Arc<RuntimeState>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    answer(&s, &id, Outcome::Response(body))
}

async fn error(State(s): State<Arc<RuntimeState>>, UrlPath(id): UrlPath<String>, body: Bytes) -> StatusCode {
    answer(&s, &id, Outcome::Error(body))
}

async fn init_error(State(s): State<Arc<RuntimeState>>, body: Bytes) -> StatusCode {
    s.init_error
        .send_replace(Some(String::from_utf8_lossy(&body).into_owned()));
    StatusCode::ACCEPTED
}

/// One bootstrap process with its Runtime API.
pub(super) struct Instance {
    pub name: String,
    child: Child,
    spawned: Instant,
    api: RuntimeApi,
    log: PathBuf,
}

impl Instance {
    pub async fn spawn(
        name: &str,
        bootstrap: &Path,
        vars: &[(String, String)],
        log: &Path,
    ) -> Result<Instance, BenchError> {
        let api = RuntimeApi::start(name).await?;
        let out = std::fs::File::create(log).map_err(fail)?;
        let err = out.try_clone().map_err(fail)?;
        let mut command = tokio::process::Command::new(bootstrap);
        command
            .env_clear()
            .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
            .current_dir(bootstrap.parent().unwrap_or(Path::new(".")))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let spawned = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| BenchError(format!("starting {}: {e}", bootstrap.display())))?;
        Ok(Instance {
            name: name.to_owned(),
            child,
            spawned,
            api,
            log: log.to_owned(),
        })
    }

    /// The end of the process's log, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<_> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Spawn to the first `GET …/next`.
    pub async fn wait_ready(&mut self) -> Result<Duration, BenchError> {
        let mut ready = self.api.state.ready.subscribe();
        let mut init = self.api.state.init_error.subscribe();
        tokio::select! {
            at = ready.wait_for(Option::is_some) => {
                let at = at.map_err(fail)?.unwrap_or_else(Instant::now);
                Ok(at.duration_since(self.spawned))
            }
            e = init.wait_for(Option::is_some) => {
                let e = e.map_err(fail)?.clone().unwrap_or_default();
                Err(BenchError(format!("{} reported an init error: {e}", self.name)))
            }
            status = self.child.wait() => Err(BenchError(format!(
                "{} exited before asking for an event ({}): {}",
                self.name,
                status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                self.log_tail()
            ))),
            () = tokio::time::sleep(READY_TIMEOUT) => Err(BenchError(format!(
                "{} did not ask for an event within {READY_TIMEOUT:?}: {}",
                self.name,
                self.log_tail()
            ))),
        }
    }

    /// One invocation: the event in, the answer out.
    pub async fn invoke(&mut self, event: &Value) -> Result<Outcome, BenchError> {
        let (reply, answered) = oneshot::channel();
        let invocation = Invocation {
            id: uuid::Uuid::now_v7().to_string(),
            event: serde_json::to_vec(event).map_err(fail)?,
            reply,
        };
        self.api
            .events
            .send(invocation)
            .await
            .map_err(|_| BenchError("the runtime API stopped".into()))?;
        tokio::select! {
            outcome = tokio::time::timeout(INVOKE_TIMEOUT, answered) => match outcome {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(_)) => Err(BenchError(format!("{}: the invocation was dropped", self.name))),
                Err(_) => Err(BenchError(format!(
                    "{}: no answer within {INVOKE_TIMEOUT:?}: {}",
                    self.name,
                    self.log_tail()
                ))),
            },
            status = self.child.wait() => Err(BenchError(format!(
                "{} exited during an invocation ({}): {}",
                self.name,
                status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                self.log_tail()
            ))),
        }
    }

    /// `VmHWM` of the process, KiB.
    pub fn peak_rss_kib(&self) -> Result<u64, BenchError> {
        let pid = self
            .child
            .id()
            .ok_or_else(|| BenchError(format!("{} has exited", self.name)))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(fail)?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| BenchError(format!("no VmHWM in /proc/{pid}/status")))
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
