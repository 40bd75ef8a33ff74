//! A `newc` cpio archive writer (the initramfs format the kernel unpacks), so building the
//! guest image needs no `cpio` on the host. Uncompressed: the kernel accepts it as is.
//! [`Archive::add_tree`] copies a listed part of a host directory tree (the PSM2 user space
//! that `tools/qemu/setup.sh` extracted) into the image at the same relative paths.

use std::collections::BTreeSet;
use std::path::Path;

/// One archive member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A directory.
    Dir,
    /// A regular file with its mode bits (e.g. 0o755) and contents.
    File {
        /// Permission bits.
        mode: u32,
        /// Contents.
        data: Vec<u8>,
    },
    /// A symbolic link to `target`.
    Symlink {
        /// Link target.
        target: String,
    },
    /// A character device `major:minor`.
    CharDev {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
}

/// An initramfs under construction: paths (without a leading `/`) to entries, written in
/// insertion order with parent directories created first.
#[derive(Debug, Default)]
pub struct Archive {
    out: Vec<u8>,
    dirs: BTreeSet<String>,
    ino: u32,
}

fn pad4(v: &mut Vec<u8>) {
    while v.len() % 4 != 0 {
        v.push(0);
    }
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    fn header(&mut self, name: &str, mode: u32, size: usize, rdev: (u32, u32)) {
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            if mode & 0o170000 == 0o040000 { 2 } else { 1 },
            0, // mtime: fixed, so the image is reproducible
            size as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        pad4(&mut self.out);
    }

    fn ensure_parents(&mut self, path: &str) {
        let parts: Vec<&str> = path.split('/').collect();
        for i in 1..parts.len() {
            let dir = parts.get(..i).unwrap_or_default().join("/");
            if !dir.is_empty() && self.dirs.insert(dir.clone()) {
                self.header(&dir, 0o040755, 0, (0, 0));
            }
        }
    }

    /// Adds `path` (relative, `/`-separated; leading `/` ignored).
    pub fn add(&mut self, path: &str, entry: Entry) {
        let path = path.trim_start_matches('/').to_string();
        self.ensure_parents(&path);
        match entry {
            Entry::Dir => {
                if self.dirs.insert(path.clone()) {
                    self.header(&path, 0o040755, 0, (0, 0));
                }
            }
            Entry::File { mode, data } => {
                self.header(&path, 0o100000 | (mode & 0o7777), data.len(), (0, 0));
                self.out.extend_from_slice(&data);
                pad4(&mut self.out);
            }
            Entry::Symlink { target } => {
                self.header(&path, 0o120777, target.len(), (0, 0));
                self.out.extend_from_slice(target.as_bytes());
                pad4(&mut self.out);
            }
            Entry::CharDev { major, minor } => self.header(&path, 0o020600, 0, (major, minor)),
        }
    }

    /// Adds the files named in `list` (paths relative to `root`, `/`-separated) at the same
    /// paths: regular files with their permission bits, symbolic links as links (their
    /// targets unchanged, so relative links keep working and absolute ones name guest paths),
    /// directories as directories. Returns the bytes of file data added.
    pub fn add_tree(&mut self, root: &Path, list: &[String]) -> Result<u64, String> {
        use std::os::unix::fs::PermissionsExt;
        let mut bytes = 0u64;
        for rel in list {
            let rel = rel.trim().trim_start_matches('/');
            if rel.is_empty() || rel.split('/').any(|c| c == "..") {
                continue;
            }
            let p = root.join(rel);
            let md = std::fs::symlink_metadata(&p)
                .map_err(|e| format!("cannot stat {}: {e}", p.display()))?;
            let entry = if md.file_type().is_symlink() {
                let t = std::fs::read_link(&p)
                    .map_err(|e| format!("cannot read link {}: {e}", p.display()))?;
                Entry::Symlink { target: t.to_string_lossy().into_owned() }
            } else if md.is_dir() {
                Entry::Dir
            } else {
                let data =
                    std::fs::read(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                bytes += data.len() as u64;
                Entry::File { mode: md.permissions().mode() & 0o7777, data }
            };
            self.add(rel, entry);
        }
        Ok(bytes)
    }

    /// The finished archive (with the trailer).
    pub fn finish(mut self) -> Vec<u8> {
        self.header("TRAILER!!!", 0, 0, (0, 0));
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the archive back: (name, mode, data).
    fn parse(mut b: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let total = b.len();
        loop {
            assert_eq!(&b[..6], b"070701");
            let f = |i: usize| {
                u32::from_str_radix(std::str::from_utf8(&b[6 + i * 8..14 + i * 8]).unwrap(), 16)
                    .unwrap()
            };
            let (mode, size, namesize) = (f(1), f(6) as usize, f(11) as usize);
            let name = String::from_utf8(b[110..110 + namesize - 1].to_vec()).unwrap();
            let data_at = (110 + namesize).next_multiple_of(4);
            let data = b[data_at..data_at + size].to_vec();
            let next = (data_at + size).next_multiple_of(4);
            assert_eq!((total - b.len() + next) % 4, 0);
            b = &b[next..];
            if name == "TRAILER!!!" {
                assert!(b.is_empty());
                return out;
            }
            out.push((name, mode, data));
        }
    }

    #[test]
    fn tree_keeps_files_links_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let lib = d.path().join("usr/lib/x86_64-linux-gnu");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("libx.so.1.2"), b"ELF").unwrap();
        std::fs::set_permissions(lib.join("libx.so.1.2"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        std::os::unix::fs::symlink("libx.so.1.2", lib.join("libx.so.1")).unwrap();
        std::fs::create_dir_all(d.path().join("usr/bin")).unwrap();
        std::fs::write(d.path().join("usr/bin/prog"), b"#!").unwrap();
        std::fs::set_permissions(
            d.path().join("usr/bin/prog"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let list: Vec<String> = [
            "usr/bin/prog",
            "usr/lib/x86_64-linux-gnu/libx.so.1",
            "/usr/lib/x86_64-linux-gnu/libx.so.1.2",
            "../escape",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut a = Archive::new();
        assert_eq!(a.add_tree(d.path(), &list).unwrap(), 5);
        let e = parse(&a.finish());
        let find = |n: &str| e.iter().find(|x| x.0 == n).unwrap().clone();
        assert_eq!(find("usr/bin/prog").1, 0o100755);
        assert_eq!(
            find("usr/lib/x86_64-linux-gnu/libx.so.1"),
            ("usr/lib/x86_64-linux-gnu/libx.so.1".into(), 0o120777, b"libx.so.1.2".to_vec())
        );
        assert_eq!(find("usr/lib/x86_64-linux-gnu/libx.so.1.2").1, 0o100644);
        assert!(!e.iter().any(|x| x.0.contains("escape")));
        let missing = Archive::new().add_tree(d.path(), &["nope".to_string()]);
        assert!(missing.unwrap_err().contains("nope"));
    }

    #[test]
    fn round_trip_with_parents() {
        let mut a = Archive::new();
        a.add("/bin/busybox", Entry::File { mode: 0o755, data: b"elf!!".to_vec() });
        a.add("bin/sh", Entry::Symlink { target: "busybox".into() });
        a.add("dev/console", Entry::CharDev { major: 5, minor: 1 });
        a.add("lib/modules/x/y.ko", Entry::File { mode: 0o644, data: vec![1, 2, 3] });
        a.add("bin", Entry::Dir);
        let e = parse(&a.finish());
        let names: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/busybox",
                "bin/sh",
                "dev",
                "dev/console",
                "lib",
                "lib/modules",
                "lib/modules/x",
                "lib/modules/x/y.ko"
            ]
        );
        assert_eq!(e[1], ("bin/busybox".into(), 0o100755, b"elf!!".to_vec()));
        assert_eq!(e[2], ("bin/sh".into(), 0o120777, b"busybox".to_vec()));
        assert_eq!(e[4].1, 0o020600);
        assert_eq!(e[8].2, vec![1, 2, 3]);
    }
}
