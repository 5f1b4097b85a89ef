//! The backend conformance suite over SFTP, against OpenSSH's server on loopback.
//!
//! A binary of its own, without the test harness: the SFTP backend runs `ssh` from PATH, so
//! PATH must point at the test server's wrapper, and the environment may only be changed
//! while the process has a single thread.

#[path = "integration/servers.rs"]
#[allow(dead_code)] // the S3 servers in it are for the integration tests
mod servers;

use cairn_format::backend::{RemoteBackend, RemoteOptions, conformance};

fn main() {
    let Some(sshd) = servers::Sshd::start() else {
        return;
    };
    // SAFETY: no other thread exists yet (no harness, no backend, nothing spawned).
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PATH", sshd.path_env());
    }
    let location = sshd.location("conformance");
    let backend =
        RemoteBackend::sftp(location.strip_prefix("sftp:").unwrap(), &RemoteOptions::default())
            .unwrap();
    conformance(&backend);
    println!("test result: ok. 1 passed; 0 failed; 0 ignored (SFTP backend conformance)");
}
