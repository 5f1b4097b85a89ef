//! The only `impl fuser::Filesystem`: translates kernel requests into [`CairnFs`] calls and
//! their answers into replies, and owns the mount session. No filesystem logic lives here.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, MountOption, OpenAccMode, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyXattr, Request,
    Session, SessionACL, SessionUnmounter,
};

use crate::error::FsError;
use crate::fs::{Attr, CairnFs, FileKind, XattrReply};

/// How the kernel mount is set up.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// Let other users (and root) use the mount (`allow_other`; for non-root users it needs
    /// `user_allow_other` in /etc/fuse.conf).
    pub allow_other: bool,
    /// Threads serving kernel requests: a slow read on one leaves the others free.
    pub threads: usize,
    /// Shown as the source in the mount table.
    pub source: String,
}

/// A mounted filesystem, served until it is unmounted.
pub struct Mount {
    session: Session<Adapter>,
}

/// Unmounts a [`Mount`] from another thread (a signal handler's).
pub struct Unmounter(SessionUnmounter);

impl Mount {
    /// Mounts `fs` at `mountpoint` read-only, with the kernel checking permissions.
    pub fn new(fs: CairnFs, mountpoint: &Path, options: &MountOptions) -> io::Result<Self> {
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::RO,
            MountOption::DefaultPermissions,
            MountOption::NoDev,
            MountOption::NoSuid,
            MountOption::FSName(options.source.clone()),
            MountOption::Subtype("cairn".into()),
        ];
        config.acl = if options.allow_other { SessionACL::All } else { SessionACL::Owner };
        config.n_threads = Some(options.threads.max(1));
        config.clone_fd = true;
        let session = Session::new(Adapter { fs }, mountpoint, &config)?;
        widen_readahead(mountpoint);
        Ok(Self { session })
    }

    pub fn unmounter(&mut self) -> Unmounter {
        Unmounter(self.session.unmount_callable())
    }

    /// Serves requests until the filesystem is unmounted (by [`Unmounter`] or
    /// `fusermount3 -u`).
    pub fn run(self) -> io::Result<()> {
        self.session.run()
    }
}

impl Unmounter {
    pub fn unmount(&mut self) -> io::Result<()> {
        self.0.unmount()
    }
}

/// Kernel readahead for the mount, in KiB. FUSE starts at 128 KiB; with 4 MiB the kernel
/// sends large reads several at a time, which doubled sequential throughput in
/// docs/benchmarks.md.
const READAHEAD_KIB: u32 = 4096;

/// Raises the mount's readahead through sysfs (root only; others keep the kernel default).
/// The device number comes from /proc/self/mountinfo: a `stat` of the mountpoint would wait
/// for the session loop, which is not running yet.
fn widen_readahead(mountpoint: &Path) {
    let Ok(mountpoint) = mountpoint.canonicalize() else {
        return;
    };
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let wanted = mountpoint.to_string_lossy();
    let device = mountinfo.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        (fields.get(4) == Some(&wanted.as_ref())).then(|| fields.get(2).copied())?
    });
    let Some(device) = device else { return };
    let knob = format!("/sys/class/bdi/{device}/read_ahead_kb");
    if let Err(error) = std::fs::write(&knob, READAHEAD_KIB.to_string()) {
        tracing::debug!(%knob, %error, "kernel readahead left at its default");
    }
}

struct Adapter {
    fs: CairnFs,
}

fn errno(error: &FsError) -> Errno {
    Errno::from_i32(error.errno())
}

fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::Directory => FileType::Directory,
        FileKind::File => FileType::RegularFile,
        FileKind::Symlink => FileType::Symlink,
        FileKind::BlockDevice => FileType::BlockDevice,
        FileKind::CharDevice => FileType::CharDevice,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
    }
}

fn file_attr(attr: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(attr.ino),
        size: attr.size,
        blocks: attr.blocks,
        atime: attr.atime,
        mtime: attr.mtime,
        ctime: attr.ctime,
        crtime: attr.ctime,
        kind: file_type(attr.kind),
        perm: attr.perm,
        nlink: attr.nlink,
        uid: attr.uid,
        gid: attr.gid,
        rdev: attr.rdev,
        blksize: 4096,
        flags: 0,
    }
}

fn reply_xattr(result: Result<XattrReply, FsError>, reply: ReplyXattr) {
    match result {
        Ok(XattrReply::Size(size)) => reply.size(size),
        Ok(XattrReply::Data(data)) => reply.data(&data),
        Err(e) => reply.error(errno(&e)),
    }
}

impl Filesystem for Adapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // The largest readahead the kernel allows: fewer, larger sequential requests.
        let mut readahead = 1 << 20;
        while let Err(max) = config.set_max_readahead(readahead) {
            readahead = max;
        }
        // Listings carry every entry's attributes, so `find`/`du`/`ls -l` need no lookup per
        // entry (kernels without it fall back to readdir + lookup).
        let _ = config.add_capabilities(InitFlags::FUSE_DO_READDIRPLUS);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _op = operation("lookup", parent.0);
        match self.fs.lookup(parent.0, name.as_bytes()) {
            Ok(attr) => reply.entry(&attr.ttl, &file_attr(&attr), Generation(0)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let _op = operation("getattr", ino.0);
        match self.fs.getattr(ino.0) {
            Ok(attr) => reply.attr(&attr.ttl, &file_attr(&attr)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let _op = operation("readlink", ino.0);
        match self.fs.readlink(ino.0) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _op = operation("open", ino.0);
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(errno(&FsError::ReadOnly));
        }
        match self.fs.open(ino.0) {
            // Contents never change, so the page cache stays valid across opens.
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let _op = operation("read", fh.0);
        match self.fs.read(fh.0, offset, size) {
            Ok(data) => reply.data(data.as_slice()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok(); // nothing is ever written, so there is nothing to flush
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.fs.release(fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _op = operation("opendir", ino.0);
        match self.fs.opendir(ino.0) {
            // Snapshot directories never change: the kernel keeps their listings cached.
            Ok(dir) if dir.immutable => reply.opened(
                FileHandle(dir.handle),
                FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Ok(dir) => reply.opened(FileHandle(dir.handle), FopenFlags::empty()),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let _op = operation("readdir", fh.0);
        match self.fs.readdir(fh.0, offset) {
            Ok(page) => {
                for (next, entry) in page.iter() {
                    let name = OsStr::from_bytes(&entry.name);
                    if reply.add(INodeNo(entry.ino), next, file_type(entry.kind), name) {
                        break; // buffer full: the kernel asks again from `next`
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let _op = operation("readdirplus", fh.0);
        let page = match self.fs.readdir(fh.0, offset) {
            Ok(page) => page,
            Err(e) => return reply.error(errno(&e)),
        };
        for (next, entry) in page.iter() {
            let attr = match self.fs.getattr(entry.ino) {
                Ok(attr) => attr,
                Err(e) => return reply.error(errno(&e)),
            };
            let name = OsStr::from_bytes(&entry.name);
            let file = file_attr(&attr);
            if reply.add(INodeNo(entry.ino), next, name, &attr.ttl, &file, Generation(0)) {
                break; // buffer full: the kernel asks again from `next`
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.release(fh.0);
        reply.ok();
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let _op = operation("getxattr", ino.0);
        reply_xattr(self.fs.getxattr(ino.0, name.as_bytes(), size), reply);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let _op = operation("listxattr", ino.0);
        reply_xattr(self.fs.listxattr(ino.0, size), reply);
    }
}

/// The span of one FUSE request (debug level: off unless asked for with -vv or RUST_LOG).
fn operation(name: &'static str, ino_or_handle: u64) -> tracing::span::EnteredSpan {
    tracing::debug_span!("fuse", op = name, id = ino_or_handle).entered()
}
