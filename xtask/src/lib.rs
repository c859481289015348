//! Packaging `terraform-provider-herald` for Terraform's provider mirrors.
//!
//! [`package`] writes one provider binary into a directory in Terraform's *packed* layout,
//! which serves both as a `filesystem_mirror` and, over HTTPS, as a `network_mirror`:
//!
//! ```text
//! DIR/registry.terraform.io/herald/herald/
//!     terraform-provider-herald_<version>_<os>_<arch>.zip   the binary, named terraform-provider-herald_v<version>
//!     index.json                                             {"versions":{"<version>":{}}}
//!     <version>.json                                         {"archives":{"<os>_<arch>":{"url":…,"hashes":["h1:…","zh:…"]}}}
//!     SHA256SUMS                                             <hex sha256>  <zip name>
//! ```
//!
//! The JSON documents are rebuilt from the archives found in the folder, so packaging a new
//! version (or another platform) into the same DIR keeps and lists what was there.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

/// The provider's type name, as in `terraform-provider-<type>`.
pub const PROVIDER_TYPE: &str = "herald";
/// Where the provider lives in a mirror: `source = "herald/herald"` means this host and namespace.
pub const HOSTNAME: &str = "registry.terraform.io";
pub const NAMESPACE: &str = "herald";

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a readable zip archive: {source}")]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{path}: a zip entry's name contains a newline, which Terraform's h1 hash cannot list")]
    BadEntryName { path: PathBuf },
    #[error("invalid provider version {0:?}: expected a semantic version such as 1.2.3")]
    BadVersion(String),
    #[error("cannot write {path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MirrorError + use<> {
    let path = path.to_path_buf();
    move |source| MirrorError::Io {
        action,
        path,
        source,
    }
}

/// A Terraform platform, `<os>_<arch>` in Go's names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub arch: String,
}

impl Platform {
    /// The platform this program runs on, in Go's names (Terraform is written in Go).
    pub fn current() -> Platform {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            other => other,
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            other => other,
        };
        Platform {
            os: os.to_owned(),
            arch: arch.to_owned(),
        }
    }

    pub fn key(&self) -> String {
        format!("{}_{}", self.os, self.arch)
    }
}

/// One packaged archive and the hashes a lock file records for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub version: String,
    pub platform: Platform,
    /// The archive's path inside the mirror directory.
    pub zip: PathBuf,
    /// `h1:…`: Terraform's hash of the archive's contents.
    pub h1: String,
    /// `zh:…`: the SHA-256 of the archive file, hex.
    pub zh: String,
}

/// The folder of a mirror that holds this provider's archives and JSON documents.
pub fn provider_dir(mirror: &Path) -> PathBuf {
    mirror.join(HOSTNAME).join(NAMESPACE).join(PROVIDER_TYPE)
}

pub fn zip_name(version: &str, platform: &Platform) -> String {
    format!(
        "terraform-provider-{PROVIDER_TYPE}_{version}_{}.zip",
        platform.key()
    )
}

/// The binary's name inside the archive; Terraform runs the file that starts with
/// `terraform-provider-<type>`, and the `_v<version>` suffix is the registry convention.
pub fn binary_name(version: &str) -> String {
    format!("terraform-provider-{PROVIDER_TYPE}_v{version}")
}

/// Terraform's "Hash1" directory hash (Go's `golang.org/x/mod/sumdb/dirhash`), which a lock
/// file records as `h1:`: SHA-256 over the sorted lines `"<hex sha256 of file>  <name>\n"`,
/// base64 with the standard alphabet and padding.
pub fn hash1<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut lines: Vec<(String, String)> = files
        .into_iter()
        .map(|(name, content)| (name.to_owned(), hex::encode(Sha256::digest(content))))
        .collect();
    lines.sort();
    let mut summary = Sha256::new();
    for (name, digest) in &lines {
        summary.update(format!("{digest}  {name}\n"));
    }
    format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(summary.finalize())
    )
}

/// The `h1:` hash of a zip archive's contents (what Terraform computes for a package).
pub fn h1_of_zip(path: &Path) -> Result<String, MirrorError> {
    let file = File::open(path).map_err(io("open", path))?;
    let zip_err = |source| MirrorError::Zip {
        path: path.to_path_buf(),
        source,
    };
    let mut archive = ZipArchive::new(file).map_err(zip_err)?;
    let mut files = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(zip_err)?;
        // dirhash lists files only.
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().map_err(zip_err)?.into_owned();
        if name.contains('\n') {
            return Err(MirrorError::BadEntryName {
                path: path.to_path_buf(),
            });
        }
        let mut content = Vec::new();
        entry
            .read_to_end(&mut content)
            .map_err(io("read an entry of", path))?;
        files.push((name, content));
    }
    Ok(hash1(files.iter().map(|(n, c)| (n.as_str(), c.as_slice()))))
}

/// The `zh:` hash of an archive: the SHA-256 of the file itself, hex.
pub fn zh_of_zip(path: &Path) -> Result<String, MirrorError> {
    Ok(format!("zh:{}", sha256_file(path)?))
}

fn sha256_file(path: &Path) -> Result<String, MirrorError> {
    let mut file = File::open(path).map_err(io("open", path))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(io("read", path))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Terraform accepts only semantic versions in a mirror; checked here so a bad version fails
/// when packaging rather than at `terraform init`.
fn check_version(version: &str) -> Result<(), MirrorError> {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if parts.len() == 3 && parts.iter().all(numeric) {
        Ok(())
    } else {
        Err(MirrorError::BadVersion(version.to_owned()))
    }
}

/// Packs `binary` as `version` for `platform` into the mirror at `mirror`, then rebuilds the
/// folder's `index.json`, each version's `<version>.json` and `SHA256SUMS` from every archive
/// the folder holds. An archive of the same version and platform is replaced.
pub fn package(
    mirror: &Path,
    binary: &Path,
    version: &str,
    platform: &Platform,
) -> Result<Package, MirrorError> {
    check_version(version)?;
    let dir = provider_dir(mirror);
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let zip_path = dir.join(zip_name(version, platform));
    write_zip(&zip_path, binary, &binary_name(version))?;
    let package = Package {
        version: version.to_owned(),
        platform: platform.clone(),
        h1: h1_of_zip(&zip_path)?,
        zh: zh_of_zip(&zip_path)?,
        zip: zip_path,
    };
    write_indexes(&dir)?;
    Ok(package)
}

/// The archive, written beside its final name and renamed into place, so a mirror being served
/// never shows half an archive. The entry's time is fixed, so the same binary always packs to
/// the same bytes (and the same `zh:` hash).
fn write_zip(zip_path: &Path, binary: &Path, entry: &str) -> Result<(), MirrorError> {
    let content = std::fs::read(binary).map_err(io("read", binary))?;
    let partial = zip_path.with_extension("zip.partial");
    let file = File::create(&partial).map_err(io("create", &partial))?;
    let zip_err = |source| MirrorError::Zip {
        path: partial.clone(),
        source,
    };
    let mut zip = ZipWriter::new(file);
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::DEFAULT)
        // Terraform keeps the mode from the archive: the provider must stay executable.
        .unix_permissions(0o755);
    zip.start_file(entry, options).map_err(zip_err)?;
    zip.write_all(&content).map_err(io("write", &partial))?;
    let file = zip.finish().map_err(zip_err)?;
    file.sync_all().map_err(io("write", &partial))?;
    drop(file);
    std::fs::rename(&partial, zip_path).map_err(io("rename into place", zip_path))
}

/// Every archive of this provider in `dir`: version, platform and file name.
fn archives(dir: &Path) -> Result<Vec<(String, Platform, String)>, MirrorError> {
    let prefix = format!("terraform-provider-{PROVIDER_TYPE}_");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io("list", dir))? {
        let entry = entry.map_err(io("list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".zip"))
        else {
            continue;
        };
        // <version>_<os>_<arch>; a version has no underscore.
        let parts: Vec<&str> = rest.splitn(3, '_').collect();
        if let [version, os, arch] = parts[..]
            && check_version(version).is_ok()
        {
            let platform = Platform {
                os: os.to_owned(),
                arch: arch.to_owned(),
            };
            found.push((version.to_owned(), platform, name));
        }
    }
    found.sort();
    Ok(found)
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), MirrorError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| MirrorError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push('\n');
    write_file(path, text.as_bytes())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), MirrorError> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes).map_err(io("write", &partial))?;
    std::fs::rename(&partial, path).map_err(io("rename into place", path))
}

/// The network mirror protocol's documents and the checksum list, for every archive in `dir`.
fn write_indexes(dir: &Path) -> Result<(), MirrorError> {
    let mut versions: BTreeMap<String, serde_json::Map<String, serde_json::Value>> =
        BTreeMap::new();
    let mut sums = String::new();
    for (version, platform, name) in archives(dir)? {
        let path = dir.join(&name);
        let zh = sha256_file(&path)?;
        let h1 = h1_of_zip(&path)?;
        sums.push_str(&format!("{zh}  {name}\n"));
        versions.entry(version).or_default().insert(
            platform.key(),
            serde_json::json!({ "url": name, "hashes": [h1, format!("zh:{zh}")] }),
        );
    }
    let index: serde_json::Map<String, serde_json::Value> = versions
        .keys()
        .map(|v| (v.clone(), serde_json::json!({})))
        .collect();
    write_json(
        &dir.join("index.json"),
        &serde_json::json!({ "versions": index }),
    )?;
    for (version, archives) in versions {
        write_json(
            &dir.join(format!("{version}.json")),
            &serde_json::json!({ "archives": archives }),
        )?;
    }
    write_file(&dir.join("SHA256SUMS"), sums.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash1_sorts_names_and_hashes_the_listing() {
        // The listing for two files, hashed by hand: names sorted, two spaces, newline each.
        let a = hex::encode(Sha256::digest(b"alpha"));
        let b = hex::encode(Sha256::digest(b"beta"));
        let listing = format!("{a}  a.txt\n{b}  b.txt\n");
        let want = format!(
            "h1:{}",
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(listing))
        );
        assert_eq!(
            hash1([("b.txt", &b"beta"[..]), ("a.txt", &b"alpha"[..])]),
            want
        );
    }

    fn read_json(path: &Path) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn packages_keep_older_versions_and_platforms() {
        let tmp = tempfile::tempdir().unwrap();
        let bin = tmp.path().join("bin");
        std::fs::write(&bin, b"#!/bin/sh\necho provider\n").unwrap();
        let mirror = tmp.path().join("mirror");
        let linux = Platform {
            os: "linux".into(),
            arch: "amd64".into(),
        };
        let mac = Platform {
            os: "darwin".into(),
            arch: "arm64".into(),
        };
        let first = package(&mirror, &bin, "0.1.0", &linux).unwrap();
        let again = package(&mirror, &bin, "0.1.0", &linux).unwrap();
        assert_eq!(first, again, "the same binary packs to the same bytes");
        package(&mirror, &bin, "0.1.0", &mac).unwrap();
        let newer = package(&mirror, &bin, "0.2.0", &linux).unwrap();

        let dir = provider_dir(&mirror);
        assert_eq!(
            read_json(&dir.join("index.json")),
            serde_json::json!({ "versions": { "0.1.0": {}, "0.2.0": {} } })
        );
        let v1 = read_json(&dir.join("0.1.0.json"));
        assert_eq!(
            v1["archives"]["linux_amd64"],
            serde_json::json!({
                "url": "terraform-provider-herald_0.1.0_linux_amd64.zip",
                "hashes": [first.h1, first.zh],
            })
        );
        assert!(v1["archives"]["darwin_arm64"].is_object());
        let v2 = read_json(&dir.join("0.2.0.json"));
        assert_eq!(v2["archives"]["linux_amd64"]["hashes"][1], newer.zh);

        let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
        assert_eq!(sums.lines().count(), 3, "{sums}");
        assert!(sums.contains(&format!(
            "{}  terraform-provider-herald_0.2.0_linux_amd64.zip\n",
            newer.zh.trim_start_matches("zh:")
        )));

        // The archive holds the binary, executable, under the versioned name.
        let mut archive = ZipArchive::new(File::open(&newer.zip).unwrap()).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name().unwrap(), "terraform-provider-herald_v0.2.0");
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert_eq!(content, std::fs::read(&bin).unwrap());
        assert_eq!(
            newer.h1,
            hash1([("terraform-provider-herald_v0.2.0", content.as_slice())])
        );
    }

    #[test]
    fn a_version_that_is_not_semver_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let err = package(tmp.path(), tmp.path(), "1.2", &Platform::current()).unwrap_err();
        assert!(err.to_string().contains("\"1.2\""), "{err}");
    }
}
