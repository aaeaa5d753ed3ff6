//! The `cashout-local` process: started on a fixed address (so that providers' notification URLs
//! stay valid across restarts), killed with SIGKILL, restarted on the same data.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        let get = |name: &str| {
            std::env::var(name).map_err(|_| {
                format!("{name} is not set: run through ./scripts/test, ./scripts/bench or ./scripts/chaos, which start the emulators")
            })
        };
        Ok(Backend::Aws {
            dynamodb: get("CASHOUT_TEST_DYNAMODB_URL")?,
            sqs: get("CASHOUT_TEST_SQS_URL")?,
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

/// How to start the runner.
#[derive(Debug, Clone)]
pub struct RunnerSpec {
    /// The `cashout-local` binary.
    pub binary: PathBuf,
    /// `--data-dir`.
    pub data_dir: PathBuf,
    /// `--listen` (fixed across restarts).
    pub listen: SocketAddr,
    /// `--sim-url` of simulators running outside the runner (`--no-sim`), so that the ground
    /// truth outlives every kill; empty: the runner starts its own simulators.
    pub sim_url: String,
    /// Store and queues.
    pub backend: Backend,
    /// `--operator-key`.
    pub operator_key: String,
    /// `RUST_LOG` of the runner.
    pub rust_log: String,
    /// Where each start's stderr goes (`runner-{n}.log`).
    pub log_dir: PathBuf,
    /// Any other flags (`--forbid-private-webhooks`, `--auto-approve-limit 0`…).
    pub extra_args: Vec<String>,
}

/// A running `cashout-local`.
#[derive(Debug)]
pub struct Runner {
    child: Child,
    /// `http://ADDR`.
    pub base: String,
    /// Its log file.
    pub log: PathBuf,
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
        let log = self.log_dir.join(format!("runner-{generation}.log"));
        let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen", &self.listen.to_string()])
            .args(["--merchant-id", merchant_id, "--merchant-key", merchant_key])
            .args(["--operator-key", &self.operator_key])
            .args(&self.extra_args)
            .env("RUST_LOG", &self.rust_log)
            .env_remove("CASHOUT_PUBLIC_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if !self.sim_url.is_empty() {
            cmd.args(["--no-sim", "--sim-url", &self.sim_url]);
        }
        if let Backend::Aws { dynamodb, sqs, stack } = &self.backend {
            cmd.args(["--backend", "aws", "--create-resources", "--stack", stack])
                .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb)
                .env("AWS_ENDPOINT_URL_SQS", sqs)
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("AWS_REGION", "us-east-1")
                .env_remove("AWS_PROFILE");
        }
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Keep draining so that the runner never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: String = tail.lines().rev().take(20).collect::<Vec<_>>().join("\n");
                return Err(format!(
                    "the runner did not report ready ({other:?}); its log ends with:\n{tail}"
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
            log,
            ready_after: started.elapsed(),
        })
    }
}

impl Runner {
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
