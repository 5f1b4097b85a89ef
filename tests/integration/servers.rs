//! Real servers on loopback for the remote-backend tests: a three-node Garage cluster, started
//! by `tests/servers/garage.sh`. Without a garage binary each test prints why it skips; with
//! `CAIRN_REQUIRE_REMOTE=1` (set by scripts/test, so CI never skips) a missing server fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A running Garage cluster with a bucket and a key that may use it.
pub struct Garage {
    pub dir: PathBuf,
    pub endpoint: String,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
}

fn script() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("tests/servers/garage.sh")
}

/// Whether a garage binary is installed (the S3 tests and benchmark scenarios need one).
pub fn garage_available() -> bool {
    std::env::var_os("GARAGE").is_some()
        || Command::new("sh")
            .args(["-c", "command -v garage"])
            .output()
            .is_ok_and(|o| o.status.success())
        || Path::new("/var/tmp/cairn-tools/bin/garage").exists()
}

/// Runs `tests/servers/<script> start` in a new directory (its `server` subdirectory) and
/// returns the directory and the KEY=VALUE lines it printed; `None` when the server is not
/// `available` and the suite does not require it (the test then says why it skips).
fn start_server(
    script_name: &str,
    available: bool,
    what: &str,
    missing: &str,
) -> Option<(PathBuf, HashMap<String, String>)> {
    if !available {
        assert!(
            std::env::var_os("CAIRN_REQUIRE_REMOTE").is_none(),
            "CAIRN_REQUIRE_REMOTE is set but there is {missing}"
        );
        eprintln!("skipping {what}: {missing}");
        return None;
    }
    let dir = tempfile::Builder::new().prefix("cairn-server-").tempdir().expect("temp dir").keep();
    let out = Command::new("bash")
        .arg(script().with_file_name(script_name))
        .arg("start")
        .arg(dir.join("server"))
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{script_name} start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vars = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some((dir, vars))
}

impl Garage {
    /// Starts a cluster of its own (for tests that stop nodes); `None` when there is no garage
    /// binary and the suite does not require one.
    pub fn start() -> Option<Self> {
        let (dir, vars) = start_server(
            "garage.sh",
            garage_available(),
            "an S3 test",
            "no garage binary (scripts/setup-debian installs it to /var/tmp/cairn-tools/bin)",
        )?;
        let cluster = dir.join("server");
        Some(Self {
            dir: cluster,
            endpoint: vars["ENDPOINT"].clone(),
            bucket: vars["BUCKET"].clone(),
            key_id: vars["AWS_ACCESS_KEY_ID"].clone(),
            secret: vars["AWS_SECRET_ACCESS_KEY"].clone(),
        })
    }

    /// The cluster shared by the tests of this binary, stopped when the process exits.
    pub fn shared() -> Option<&'static Self> {
        static SHARED: OnceLock<Option<Garage>> = OnceLock::new();
        extern "C" fn stop_shared() {
            if let Some(Some(garage)) = SHARED.get() {
                garage.stop();
            }
        }
        SHARED
            .get_or_init(|| {
                let garage = Self::start()?;
                // Statics are never dropped: stop the servers when the test binary exits.
                // SAFETY: registers a plain function with no arguments, as atexit requires.
                #[allow(unsafe_code)]
                unsafe {
                    libc::atexit(stop_shared)
                };
                Some(garage)
            })
            .as_ref()
    }

    /// A repository location in the bucket, unique to `name` and this run.
    pub fn location(&self, name: &str) -> String {
        let unique =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        format!("s3:{}/{}/{name}-{unique:x}", self.endpoint, self.bucket)
    }

    /// The backend for an `s3:` location in this cluster, in this process.
    pub fn backend(&self, location: &str) -> cairn_format::backend::RemoteBackend {
        let options = cairn_format::backend::RemoteOptions {
            credentials: Some((self.key_id.clone(), self.secret.clone())),
            region: Some("garage".into()),
            ..Default::default()
        };
        let spec = location.strip_prefix("s3:").expect("an s3: location");
        cairn_format::backend::RemoteBackend::s3(spec, &options).expect("an S3 backend")
    }

    /// The environment a `cairn` process needs to reach the cluster.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret.clone()),
            ("AWS_REGION".into(), "garage".into()),
            ("CAIRN_RETRIES".into(), "2".into()),
        ]
    }

    fn script(&self, args: &[&str]) {
        let status = Command::new("bash")
            .arg(script())
            .arg(args[0])
            .arg(&self.dir)
            .args(&args[1..])
            .status()
            .expect("bash runs");
        assert!(status.success(), "garage.sh {args:?} failed");
    }

    /// Kills node `n` (0-2), as a crash would.
    pub fn kill_node(&self, n: u8) {
        self.script(&["kill", &n.to_string()]);
    }

    /// Kills every node, as a crash or a power cut would.
    pub fn kill_all(&self) {
        self.script(&["stop"]);
    }

    /// Starts the killed nodes again and waits until the cluster is whole.
    pub fn restart(&self) {
        self.script(&["restart"]);
    }

    fn stop(&self) {
        self.script(&["stop"]);
        let _ = std::fs::remove_dir_all(self.dir.parent().unwrap_or(&self.dir));
    }
}

impl Drop for Garage {
    /// A cluster of a test's own stops with the test (the shared one lives in a static and is
    /// stopped at exit instead).
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP proxy in front of an S3 server that answers every `nth` connection's first request
/// with `503 Slow Down`, as AWS S3 does when a prefix is over its request rate, and closes it;
/// every other connection is passed through untouched.
pub struct Throttler {
    pub endpoint: String,
    pub throttled: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Throttler {
    pub fn start(upstream: &str, nth: usize) -> Self {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let throttled = Arc::new(AtomicUsize::new(0));
        let counter = throttled.clone();
        std::thread::spawn(move || {
            for (i, client) in listener.incoming().enumerate() {
                let Ok(mut client) = client else { continue };
                if i % nth == 0 {
                    counter.fetch_add(1, Ordering::Relaxed);
                    std::thread::spawn(move || {
                        // Read the request head, then refuse it.
                        let mut head = Vec::new();
                        let mut byte = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n")
                            && client.read(&mut byte).unwrap_or(0) == 1
                        {
                            head.push(byte[0]);
                        }
                        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                        let _ = write!(
                            client,
                            "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    });
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (mut client_read, mut server_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut client_read, &mut server_write);
                    let _ = server_write.shutdown(std::net::Shutdown::Write);
                });
                let (mut server_read, mut client_write) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_read, &mut client_write);
                    let _ = client_write.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Self { endpoint, throttled }
    }
}

/// A running OpenSSH server on loopback (tests/servers/sshd.sh) and how to reach it.
pub struct Sshd {
    dir: PathBuf,
    pub user: String,
    /// A directory on the server the user may write.
    pub root: PathBuf,
    /// Holds the `ssh` wrapper that knows the server's port, host key and client key.
    pub path_prefix: String,
}

impl Sshd {
    /// `None` when OpenSSH's server is not installed and the suite does not require it.
    pub fn start() -> Option<Self> {
        let (dir, vars) = start_server(
            "sshd.sh",
            Path::new("/usr/sbin/sshd").exists(),
            "an SFTP test",
            "no /usr/sbin/sshd (scripts/setup-debian --test-servers installs openssh-server)",
        )?;
        Some(Self {
            dir,
            user: vars["USER"].clone(),
            root: PathBuf::from(&vars["ROOT"]),
            path_prefix: vars["PATH_PREFIX"].clone(),
        })
    }

    /// `sftp:` location of a repository named `name` on the server.
    pub fn location(&self, name: &str) -> String {
        format!("sftp:{}@127.0.0.1:{}", self.user, self.root.join(name).display())
    }

    /// PATH for a process that should reach the server through the wrapper.
    pub fn path_env(&self) -> String {
        format!("{}:{}", self.path_prefix, std::env::var("PATH").unwrap_or_default())
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script().with_file_name("sshd.sh"))
            .arg("stop")
            .arg(self.dir.join("server"))
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
