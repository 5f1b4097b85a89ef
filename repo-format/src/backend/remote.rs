//! Remote backends through OpenDAL: S3-compatible object storage and SFTP.
//!
//! OpenDAL is asynchronous; the repository is not. Each backend owns a small tokio runtime and
//! every call blocks on it, so the engine's threads (the pack uploaders, the restore readers)
//! are what makes requests run in parallel.
//!
//! Failures are sorted once, here: OpenDAL marks timeouts, 5xx answers and throttling as
//! temporary, and its retry layer repeats those with exponential backoff and jitter; everything
//! else (403, a missing bucket, a refused login) fails at once with a message that names it.

use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{ErrorKind, Operator};

use super::{Backend, ObjectInfo};

/// Connection settings shared by the remote backends.
#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// Requests in flight at once, and pack uploads in parallel.
    pub connections: usize,
    /// Attempts after the first for a temporary failure.
    pub retries: usize,
    /// Upload limit in bytes per second.
    pub limit_upload: Option<u64>,
    /// Download limit in bytes per second.
    pub limit_download: Option<u64>,
    /// S3 region; `None` takes `AWS_REGION`/`AWS_DEFAULT_REGION` or the profile's, else `us-east-1`.
    pub region: Option<String>,
    /// Address buckets as `BUCKET.HOST` instead of `HOST/BUCKET` (path style, the default).
    pub virtual_host: bool,
    /// S3 access key id and secret to use instead of the environment's and profile's (for
    /// programs that embed the backend; the command line reads the environment).
    pub credentials: Option<(String, String)>,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        Self {
            connections: 5,
            retries: 8,
            limit_upload: None,
            limit_download: None,
            region: None,
            virtual_host: false,
            credentials: None,
        }
    }
}

/// Where an `s3:` location points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    /// `https://host[:port]` or `http://host[:port]`.
    pub endpoint: String,
    pub bucket: String,
    /// Path inside the bucket, without leading or trailing `/`; may be empty.
    pub prefix: String,
}

impl S3Location {
    /// Parses what follows `s3:`: `https://HOST[:PORT]/BUCKET[/PREFIX]`, or `HOST/BUCKET[/PREFIX]`
    /// for HTTPS.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (scheme, rest) = match spec.split_once("://") {
            Some((scheme @ ("http" | "https"), rest)) => (scheme, rest),
            Some((other, _)) => return Err(format!("unknown scheme {other:?}: use http or https")),
            None => ("https", spec),
        };
        let mut parts = rest.splitn(3, '/');
        let host = parts.next().unwrap_or_default();
        let bucket = parts.next().unwrap_or_default();
        let prefix = parts.next().unwrap_or_default().trim_matches('/');
        if host.is_empty() || bucket.is_empty() {
            return Err("expected s3:https://HOST[:PORT]/BUCKET[/PREFIX]".into());
        }
        Ok(Self {
            endpoint: format!("{scheme}://{host}"),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

/// Where an `sftp:` location points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SftpLocation {
    /// `[USER@]HOST` or `ssh://[USER@]HOST[:PORT]`, as ssh understands it.
    pub endpoint: String,
    /// Absolute directory on the server.
    pub path: String,
}

impl SftpLocation {
    /// Parses what follows `sftp:`: `[USER@]HOST:/PATH` or `//[USER@]HOST[:PORT]/PATH`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (endpoint, path) = if let Some(rest) = spec.strip_prefix("//") {
            let (host, path) = rest.split_once('/').ok_or("expected //[USER@]HOST[:PORT]/PATH")?;
            (format!("ssh://{host}"), format!("/{path}"))
        } else {
            let (host, path) = spec.split_once(':').ok_or("expected [USER@]HOST:/PATH")?;
            (host.to_string(), path.to_string())
        };
        if endpoint.is_empty() || endpoint == "ssh://" || !path.starts_with('/') {
            return Err(
                "expected sftp:[USER@]HOST:/ABSOLUTE/PATH or sftp://[USER@]HOST[:PORT]/PATH".into(),
            );
        }
        Ok(Self { endpoint, path: path.trim_end_matches('/').to_string() + "/" })
    }
}

/// A repository on S3-compatible storage or an SFTP server.
pub struct RemoteBackend {
    runtime: tokio::runtime::Runtime,
    operator: Operator,
    location: String,
    /// Puts go to a temporary name and are renamed into place (SFTP writes in place).
    put_by_rename: bool,
    connections: usize,
    upload: Option<RateLimit>,
    download: Option<RateLimit>,
}

impl RemoteBackend {
    /// A backend for `s3:` + `spec`. Credentials come from the usual AWS variables
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_PROFILE`) and
    /// profile files (`~/.aws/credentials`, `~/.aws/config`).
    pub fn s3(spec: &str, options: &RemoteOptions) -> io::Result<Self> {
        let at = S3Location::parse(spec).map_err(|e| invalid(format!("s3:{spec}: {e}")))?;
        let region = options
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .or_else(profile_region)
            .unwrap_or_else(|| "us-east-1".to_string());
        let mut builder = opendal::services::S3::default()
            .endpoint(&at.endpoint)
            .bucket(&at.bucket)
            .root(&format!("/{}", at.prefix))
            .region(&region);
        if options.virtual_host {
            builder = builder.enable_virtual_host_style();
        }
        if let Some((id, secret)) = &options.credentials {
            builder = builder.access_key_id(id).secret_access_key(secret);
        }
        let location = format!("s3:{}/{}/{}", at.endpoint, at.bucket, at.prefix);
        Self::build(builder, location.trim_end_matches('/').to_string(), false, options)
    }

    /// A backend for `sftp:` + `spec`, through the system's `ssh` (its configuration, keys,
    /// agent and known hosts apply).
    pub fn sftp(spec: &str, options: &RemoteOptions) -> io::Result<Self> {
        let at = SftpLocation::parse(spec).map_err(|e| invalid(format!("sftp:{spec}: {e}")))?;
        let builder = opendal::services::Sftp::default()
            .endpoint(&at.endpoint)
            .root(&at.path)
            .known_hosts_strategy("strict");
        Self::build(builder, format!("sftp:{spec}"), true, options)
    }

    fn build(
        builder: impl opendal::Builder,
        location: String,
        put_by_rename: bool,
        options: &RemoteOptions,
    ) -> io::Result<Self> {
        opendal::install_default(); // the HTTP client (reqwest, rustls); idempotent
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cairn-remote")
            .enable_all()
            .build()?;
        let operator = {
            // Building an operator may start tasks on the runtime it runs in.
            let _entered = runtime.enter();
            Operator::new(builder)
                .map_err(|e| invalid(format!("{location}: {e}")))?
                .layer(
                    TimeoutLayer::new()
                        .with_timeout(Duration::from_secs(120))
                        .with_io_timeout(Duration::from_secs(60)),
                )
                .layer(
                    RetryLayer::new()
                        .with_jitter()
                        .with_min_delay(Duration::from_millis(200))
                        .with_max_delay(Duration::from_secs(20))
                        .with_max_times(options.retries),
                )
        };
        Ok(Self {
            runtime,
            operator,
            location,
            put_by_rename,
            connections: options.connections.max(1),
            upload: options.limit_upload.map(RateLimit::new),
            download: options.limit_download.map(RateLimit::new),
        })
    }
}

/// Sorts an OpenDAL error into the `io::ErrorKind` the repository layer acts on, with a message
/// that says what to do where that is clear.
fn to_io_error(e: &opendal::Error) -> io::Error {
    // OpenDAL appends a backtrace when RUST_BACKTRACE is set: not for users' eyes.
    let full = e.to_string();
    let text = full.split("\nBacktrace:").next().unwrap_or_default().trim_end();
    let (kind, hint) = match e.kind() {
        _ if text.contains("NoSuchBucket") => (
            io::ErrorKind::NotFound,
            "the bucket does not exist: create it with your storage provider's tools",
        ),
        ErrorKind::NotFound => (io::ErrorKind::NotFound, ""),
        ErrorKind::PermissionDenied => (
            io::ErrorKind::PermissionDenied,
            "access refused: check the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, \
             AWS_PROFILE) and the key's permissions on this bucket",
        ),
        ErrorKind::RangeNotSatisfied => (io::ErrorKind::UnexpectedEof, "read past the end"),
        _ if text.contains("InvalidRange") || text.contains("got too little data") => {
            (io::ErrorKind::UnexpectedEof, "read past the end")
        }
        ErrorKind::ConfigInvalid => (io::ErrorKind::InvalidInput, ""),
        ErrorKind::RateLimited => (
            io::ErrorKind::Other,
            "the server kept throttling requests after every retry: lower --connections",
        ),
        _ if ["error sending request", "timed out", "timeout", "onnection refused"]
            .iter()
            .any(|s| text.contains(s)) =>
        {
            (
                io::ErrorKind::Other,
                "the server could not be reached, also after retries: check the address and \
                 that the server is up",
            )
        }
        _ if text.contains("ssh error") => (
            io::ErrorKind::Other,
            "ssh could not connect or log in: run ssh to the same USER@HOST by hand to see why \
             (an unknown host key, a refused key, a wrong port)",
        ),
        _ if text.contains("status: 5") => {
            (io::ErrorKind::Other, "the server kept failing after every retry")
        }
        _ => (io::ErrorKind::Other, ""),
    };
    let hint = if hint.is_empty() { String::new() } else { format!(" ({hint})") };
    // The repository layer names the location and the object; the backend adds what failed.
    io::Error::new(kind, format!("{text}{hint}"))
}

/// The region of the AWS profile in use (`AWS_PROFILE`, else `default`) from the shared config
/// file (`AWS_CONFIG_FILE`, else `~/.aws/config`); OpenDAL reads credentials from the profile
/// files but the region only from the environment.
fn profile_region() -> Option<String> {
    let path = std::env::var_os("AWS_CONFIG_FILE").map(std::path::PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".aws/config"))
    })?;
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".into());
    region_in_config(&std::fs::read_to_string(path).ok()?, &profile)
}

/// `region` of `[profile NAME]` (or `[default]`) in an AWS config file's text.
fn region_in_config(text: &str, profile: &str) -> Option<String> {
    let wanted = [format!("profile {profile}"), profile.to_string()];
    let mut in_section = false;
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = wanted.iter().any(|w| w == section.trim());
        } else if in_section
            && let Some((key, value)) = line.split_once('=')
            && key.trim() == "region"
        {
            return Some(value.trim().to_string());
        }
    }
    None
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl Backend for RemoteBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn create(&self) -> io::Result<()> {
        // Object stores have no directories; listing the prefix proves the bucket exists and
        // the credentials may read it. On SFTP the repository directory is made.
        self.runtime.block_on(async {
            if self.put_by_rename {
                self.operator.create_dir("/").await.map_err(|e| to_io_error(&e))?;
            }
            self.operator.list_with("/").limit(1).await.map(drop).map_err(|e| to_io_error(&e))
        })
    }

    fn put(&self, name: &str, data: &[u8]) -> io::Result<()> {
        if let Some(limit) = &self.upload {
            limit.take(data.len() as u64);
        }
        let body = data.to_vec();
        self.runtime
            .block_on(async {
                if !self.put_by_rename {
                    return self.operator.write(name, body).await.map(drop);
                }
                let temporary = format!("{name}.tmp-{:016x}", rand_suffix());
                self.operator.write(&temporary, body).await?;
                if let Err(e) = self.operator.rename(&temporary, name).await {
                    // SFTP's rename refuses an existing target: replace it (only `config` is
                    // ever rewritten, by `repair`), then try once more.
                    let _ = self.operator.delete(name).await;
                    if let Err(again) = self.operator.rename(&temporary, name).await {
                        let _ = self.operator.delete(&temporary).await;
                        return Err(if again.kind() == e.kind() { e } else { again });
                    }
                }
                Ok(())
            })
            .map_err(|e| to_io_error(&e))
    }

    fn get(&self, name: &str) -> io::Result<Vec<u8>> {
        let data =
            self.runtime.block_on(self.operator.read(name)).map_err(|e| to_io_error(&e))?.to_vec();
        if let Some(limit) = &self.download {
            limit.take(data.len() as u64);
        }
        Ok(data)
    }

    fn get_range_into(
        &self,
        name: &str,
        offset: u64,
        length: u64,
        buffer: &mut Vec<u8>,
    ) -> io::Result<()> {
        let end = offset
            .checked_add(length)
            .ok_or_else(|| invalid(format!("{name}: range overflows")))?;
        let data = self
            .runtime
            .block_on(async { self.operator.read_with(name).range(offset..end).await })
            .map_err(|e| to_io_error(&e))?;
        if (data.len() as u64) < length {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{length} bytes at {offset} asked, {} there", data.len()),
            ));
        }
        buffer.clear();
        buffer.extend_from_slice(&data.to_bytes());
        if let Some(limit) = &self.download {
            limit.take(length);
        }
        Ok(())
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<ObjectInfo>> {
        let entries = self
            .runtime
            .block_on(async { self.operator.list_with(prefix).recursive(true).await })
            .or_else(|e| match e.kind() {
                ErrorKind::NotFound => Ok(Vec::new()), // SFTP: no such directory yet
                _ => Err(e),
            })
            .map_err(|e| to_io_error(&e))?;
        Ok(entries
            .into_iter()
            .filter(|entry| entry.metadata().is_file() && !entry.path().contains(".tmp-"))
            .map(|entry| ObjectInfo {
                size: entry.metadata().content_length(),
                name: entry.path().trim_start_matches('/').to_string(),
            })
            .collect())
    }

    fn stat(&self, name: &str) -> io::Result<Option<u64>> {
        match self.runtime.block_on(self.operator.stat(name)) {
            Ok(meta) => Ok(Some(meta.content_length())),
            Err(e)
                if e.kind() == ErrorKind::NotFound && !e.to_string().contains("NoSuchBucket") =>
            {
                Ok(None)
            }
            Err(e) => Err(to_io_error(&e)),
        }
    }

    fn delete(&self, name: &str) -> io::Result<()> {
        match self.runtime.block_on(self.operator.delete(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(to_io_error(&e)),
        }
    }

    fn parallel_uploads(&self) -> usize {
        self.connections
    }

    fn is_remote(&self) -> bool {
        true
    }
}

/// A random suffix for temporary names, so two writers never share one.
fn rand_suffix() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).expect("the system's random source");
    u64::from_le_bytes(bytes)
}

/// Spreads transfers so their rate stays under a limit: each transfer reserves its share of
/// the timeline and sleeps until its slot has passed.
struct RateLimit {
    bytes_per_second: u64,
    next_free: Mutex<Instant>,
}

impl RateLimit {
    fn new(bytes_per_second: u64) -> Self {
        Self { bytes_per_second: bytes_per_second.max(1), next_free: Mutex::new(Instant::now()) }
    }

    fn take(&self, bytes: u64) {
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
        let wake = {
            let mut next = self.next_free.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let start = (*next).max(Instant::now());
            *next = start + cost;
            *next
        };
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_locations() {
        let at = S3Location::parse("https://s3.example.net:3900/backups/hosts/web1").unwrap();
        assert_eq!(at.endpoint, "https://s3.example.net:3900");
        assert_eq!((at.bucket.as_str(), at.prefix.as_str()), ("backups", "hosts/web1"));
        let at = S3Location::parse("s3.amazonaws.com/bucket").unwrap();
        assert_eq!(at.endpoint, "https://s3.amazonaws.com");
        assert_eq!((at.bucket.as_str(), at.prefix.as_str()), ("bucket", ""));
        assert!(S3Location::parse("http://host").is_err());
        assert!(S3Location::parse("ftp://host/bucket").is_err());
    }

    #[test]
    fn regions_come_from_the_profile_in_use() {
        let config =
            "[default]\nregion = eu-west-1\n\n[profile backup]\noutput = json\nregion=garage\n";
        assert_eq!(region_in_config(config, "default").as_deref(), Some("eu-west-1"));
        assert_eq!(region_in_config(config, "backup").as_deref(), Some("garage"));
        assert_eq!(region_in_config(config, "other"), None);
    }

    #[test]
    fn sftp_locations() {
        let at = SftpLocation::parse("backup@nas:/srv/cairn").unwrap();
        assert_eq!((at.endpoint.as_str(), at.path.as_str()), ("backup@nas", "/srv/cairn/"));
        let at = SftpLocation::parse("//backup@nas:2222/srv/cairn/").unwrap();
        assert_eq!(
            (at.endpoint.as_str(), at.path.as_str()),
            ("ssh://backup@nas:2222", "/srv/cairn/")
        );
        assert!(SftpLocation::parse("nas:relative").is_err());
        assert!(SftpLocation::parse("nas").is_err());
    }

    #[test]
    fn rate_limit_spreads_transfers() {
        let limit = RateLimit::new(1 << 20);
        let started = Instant::now();
        for _ in 0..4 {
            limit.take(64 << 10);
        }
        // 256 KiB at 1 MiB/s: the last transfer's slot ends at 0.25 s.
        assert!(started.elapsed() >= Duration::from_millis(240));
    }
}
