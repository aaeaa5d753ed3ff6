//! The `cashout-local` process: started on a fixed address (so that providers' notification URLs
//! stay valid across restarts) or on any free port, killed with SIGKILL, restarted on the same
//! data.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::emulators;

/// How long a start may take to print its "listening" line.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the runner keeps its state.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The embedded SQLite store under the data directory.
    Embedded,
    /// DynamoDB + SQS at these emulator endpoints, under a stack name of its own.
    Aws {
        /// DynamoDB Local.
        dynamodb: String,
        /// moto (SQS).
        sqs: String,
        /// Prefix of the table and queue names.
        stack: String,
    },
}

impl Backend {
    /// From the test command's emulators (`CASHOUT_TEST_DYNAMODB_URL`, `CASHOUT_TEST_SQS_URL`).
    pub fn aws_from_env(stack: &str) -> Result<Backend, String> {
        Ok(Backend::Aws {
            dynamodb: emulators::url(emulators::DYNAMODB_URL)?,
            sqs: emulators::url(emulators::SQS_URL)?,
            stack: stack.to_owned(),
        })
    }

    /// `embedded` or `aws`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Aws { .. } => "aws",
        }
    }
}

/// Which provider simulators the runner talks to.
#[derive(Debug, Clone)]
pub enum Simulators {
    /// Its own, in-process, on this address (`--sim-listen`), their state under the data
    /// directory (so that it survives a restart).
    InRunner {
        /// `--sim-listen`.
        listen: SocketAddr,
    },
    /// Simulators running outside the runner (`--no-sim --sim-url`), so that the ground truth
    /// outlives every kill.
    External {
        /// Their base URL.
        url: String,
    },
}

impl Simulators {
    /// Their base URL (`/_sim/ledger`, `/_sim/faults/{provider}` hang from it).
    pub fn url(&self) -> String {
        match self {
            Simulators::InRunner { listen } => format!("http://{listen}"),
            Simulators::External { url } => url.clone(),
        }
    }
}

/// How to start the runner.
#[derive(Debug, Clone)]
pub struct RunnerSpec {
    /// The `cashout-local` binary.
    pub binary: PathBuf,
    /// `--data-dir`.
    pub data_dir: PathBuf,
    /// `--listen`: fixed across restarts, or port 0 for any free one.
    pub listen: SocketAddr,
    /// Its simulators.
    pub simulators: Simulators,
    /// Store and queues.
    pub backend: Backend,
    /// `--operator-key`.
    pub operator_key: String,
    /// `RUST_LOG` of the runner.
    pub rust_log: String,
    /// Where each start's stderr goes (`runner-{n}.log`); `None`: to this process's stderr (a
    /// test's captured output).
    pub log_dir: Option<PathBuf>,
    /// Any other flags (`--forbid-private-webhooks`, `--auto-approve-limit 0`…).
    pub extra_args: Vec<String>,
    /// Environment variables of the runner beyond this process's (`CASHOUT_BREAKER_*`…).
    pub env: Vec<(String, String)>,
}

/// A running `cashout-local`.
#[derive(Debug)]
pub struct Runner {
    child: Child,
    /// `http://ADDR`.
    pub base: String,
    /// Its simulators' base URL.
    pub sim: String,
    /// Its log file (`None` when its stderr is this process's).
    pub log: Option<PathBuf>,
    /// From spawn to the "listening" line.
    pub ready_after: Duration,
}

/// Finds `cashout-local` next to the running executable (`target/<profile>/`), or in
/// `CASHOUT_LOCAL_BIN`.
pub fn default_binary() -> PathBuf {
    if let Ok(path) = std::env::var("CASHOUT_LOCAL_BIN") {
        return PathBuf::from(path);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("cashout-local")))
        .unwrap_or_else(|| PathBuf::from("cashout-local"))
}

/// A free loopback port (bound then released).
pub fn free_addr() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

impl RunnerSpec {
    /// Starts the runner as merchant `merchant_id` with key `merchant_key` (keys of earlier
    /// starts stay registered: the store keeps them), and waits for its "listening" line.
    pub fn start(&self, merchant_id: &str, merchant_key: &str, generation: usize) -> Result<Runner, String> {
        let log = self
            .log_dir
            .as_ref()
            .map(|dir| dir.join(format!("runner-{generation}.log")));
        let stderr = match &log {
            Some(path) => Stdio::from(std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?),
            None => Stdio::inherit(),
        };
        let started = Instant::now();
        let mut child = self
            .command(merchant_id, merchant_key)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let line = match first_line(stdout) {
            Ok(line) => line,
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the runner did not report ready ({why}){}",
                    log.as_deref().map(log_tail).unwrap_or_default()
                ));
            }
        };
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .ok_or_else(|| format!("no address in {line:?}"))?
            .to_owned();
        Ok(Runner {
            child,
            base,
            sim: self.simulators.url(),
            log,
            ready_after: started.elapsed(),
        })
    }

    /// The command line and environment of a start (stdout piped: its first line says where
    /// the runner listens).
    fn command(&self, merchant_id: &str, merchant_key: &str) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen", &self.listen.to_string()])
            .args(["--merchant-id", merchant_id, "--merchant-key", merchant_key])
            .args(["--operator-key", &self.operator_key])
            .args(&self.extra_args)
            // The system's tests and benchmarks call far faster than a merchant may; the rate
            // limits have tests of their own (a test of them sets these in `env`).
            .env("CASHOUT_RATE_LIMIT", "100000/100000")
            .env("CASHOUT_UNAUTHENTICATED_RATE_LIMIT", "100000/100000")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RUST_LOG", &self.rust_log)
            .env_remove("CASHOUT_PUBLIC_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        match &self.simulators {
            Simulators::InRunner { listen } => cmd.args(["--sim-listen", &listen.to_string()]),
            Simulators::External { url } => cmd.args(["--no-sim", "--sim-url", url]),
        };
        if let Backend::Aws { dynamodb, sqs, stack } = &self.backend {
            // The tests' receivers listen on loopback, refused by default with `--backend aws`.
            cmd.args([
                "--backend",
                "aws",
                "--create-resources",
                "--stack",
                stack,
                "--allow-private-webhooks",
            ])
            .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb)
            .env("AWS_ENDPOINT_URL_SQS", sqs)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE");
        }
        cmd
    }
}

/// The first line the runner prints (`listening on http://ADDR …`), within [`READY_TIMEOUT`];
/// the rest of its stdout is drained so that it never blocks on a full pipe.
fn first_line(stdout: ChildStdout) -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    match rx.recv_timeout(READY_TIMEOUT) {
        Ok(Some(Ok(line))) => Ok(line),
        other => Err(format!("{other:?}")),
    }
}

/// The last 20 lines of a start's log, for an error message.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(20).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!("; its log ends with:\n{}", tail.join("\n"))
}

impl Runner {
    /// Its simulators' ledger (`GET /_sim/ledger`): every payout, the create attempts per
    /// reference, every notification: the ground truth tests compare with.
    pub async fn sim_ledger(&self) -> Result<serde_json::Value, String> {
        let answer = reqwest::get(format!("{}/_sim/ledger", self.sim))
            .await
            .map_err(|e| format!("GET /_sim/ledger: {e}"))?;
        answer.json().await.map_err(|e| format!("GET /_sim/ledger: {e}"))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`, and reap it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (graceful: in-flight tasks finish), and wait for it to exit.
    pub fn terminate(mut self) -> Result<(), String> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("kill -TERM failed".into());
        }
        self.child.wait().map_err(|e| e.to_string())?;
        Ok(())
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
