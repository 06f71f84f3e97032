//! Files copied on the office PC, brought to a folder on this computer
//! (the disk side of [`proto::clipboard::FileFetch`]). Each file is written
//! under a `.part` name and renamed once whole, so a half-fetched file
//! never looks finished; an existing file is never overwritten.

use proto::clipboard::{self, FetchFailure, Fetched, FileFetch, RemoteFile};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The most bytes one fetched file may have: the channel's 32-bit sizes.
pub const MAX_FETCHED_FILE: u64 = clipboard::MAX_OFFERED_FILE;

/// How a fetch of the office PC's files ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilesFetched {
    /// Where the files that arrived whole are now.
    pub saved: Vec<PathBuf>,
    /// The files that did not come: name and why.
    pub failed: Vec<(String, String)>,
}

/// A fetch under way into a folder.
pub(crate) struct Incoming {
    fetch: FileFetch,
    dir: PathBuf,
    /// The file being written: its `.part` path, final path and handle.
    writing: Option<(PathBuf, PathBuf, std::fs::File)>,
    /// A file whose write failed: its remaining bytes are dropped.
    broken: Option<usize>,
    result: FilesFetched,
}

impl Incoming {
    /// A fetch of `files` into `dir` (made if missing). Files whose names
    /// cannot be a file's name here are left out and reported as failed.
    pub(crate) fn new(
        files: &[RemoteFile],
        clip_data_id: Option<u32>,
        first_stream: u32,
        dir: &Path,
    ) -> Result<Incoming, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot make the folder {}: {e}", dir.display()))?;
        let mut result = FilesFetched::default();
        let mut wanted = Vec::new();
        for file in files {
            match clipboard::check_file_name(&file.name) {
                Ok(()) => wanted.push(file.clone()),
                Err(why) => result.failed.push((file.name.clone(), why)),
            }
        }
        Ok(Incoming {
            fetch: FileFetch::new(wanted, clip_data_id, first_stream, MAX_FETCHED_FILE),
            dir: dir.to_owned(),
            writing: None,
            broken: None,
            result,
        })
    }

    pub(crate) fn fetch(&mut self) -> &mut FileFetch {
        &mut self.fetch
    }

    /// Writes what arrived; the result once every file arrived or failed.
    pub(crate) fn apply(&mut self, fetched: Vec<Fetched>) -> Option<FilesFetched> {
        for step in fetched {
            match step {
                Fetched::Data { file, data } => {
                    if let Err(why) = self.write(file, &data) {
                        self.fail(file, why);
                    }
                }
                Fetched::Done { file, .. } => match self.finish(file) {
                    Ok(Some(path)) => self.result.saved.push(path),
                    Ok(None) => {}
                    Err(why) => self.fail(file, why),
                },
                Fetched::Failed { file, why } => self.fail(file, describe(why)),
            }
        }
        self.fetch
            .is_done()
            .then(|| std::mem::take(&mut self.result))
    }

    /// Gives up the files not fetched yet (why), removing what arrived of
    /// the one under way.
    pub(crate) fn abandon(mut self, why: &str) -> FilesFetched {
        if let Some((part, _, _)) = self.writing.take() {
            let _ = std::fs::remove_file(part);
        }
        let left = self.fetch.left().iter();
        let failed = left.map(|file| (file.name.clone(), why.to_owned()));
        self.result.failed.extend(failed);
        std::mem::take(&mut self.result)
    }

    fn write(&mut self, file: usize, data: &[u8]) -> Result<(), String> {
        if self.broken == Some(file) {
            return Ok(());
        }
        if self.writing.is_none() {
            self.writing = Some(self.create(file)?);
        }
        let (part, _, handle) = self.writing.as_mut().expect("opened above");
        handle
            .write_all(data)
            .map_err(|e| format!("cannot write {}: {e}", part.display()))
    }

    /// The file arrived whole: renamed to its own name (None when its
    /// write had failed, already reported).
    fn finish(&mut self, file: usize) -> Result<Option<PathBuf>, String> {
        if self.broken.take() == Some(file) {
            return Ok(None);
        }
        // An empty file had no bytes to open it with.
        let (part, path, handle) = match self.writing.take() {
            Some(writing) => writing,
            None => self.create(file)?,
        };
        handle
            .sync_all()
            .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
        drop(handle);
        std::fs::rename(&part, &path)
            .map_err(|e| format!("cannot name {}: {e}", path.display()))?;
        Ok(Some(path))
    }

    fn fail(&mut self, file: usize, why: String) {
        if let Some((part, _, _)) = self.writing.take() {
            let _ = std::fs::remove_file(part);
        }
        if self.broken != Some(file) {
            let name = self.fetch.files()[file].name.clone();
            self.result.failed.push((name, why));
        }
        // Bytes may still come for it; the fetch says when it is over.
        self.broken = Some(file);
    }

    /// A new `.part` file for `file`, named after it where that name (and
    /// its `.part`) is free, else "name (2).ext" and so on.
    fn create(&self, file: usize) -> Result<(PathBuf, PathBuf, std::fs::File), String> {
        let name = &self.fetch.files()[file].name;
        let (stem, ext) = match name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
            _ => (name.as_str(), String::new()),
        };
        for n in 1..=100 {
            let candidate = match n {
                1 => name.clone(),
                n => format!("{stem} ({n}){ext}"),
            };
            let path = self.dir.join(&candidate);
            let part = self.dir.join(format!("{candidate}.part"));
            if path.exists() {
                continue;
            }
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&part)
            {
                Ok(handle) => return Ok((part, path, handle)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("cannot create {}: {e}", part.display())),
            }
        }
        Err(format!(
            "{} already holds 100 files named like {name}",
            self.dir.display()
        ))
    }
}

impl Drop for Incoming {
    /// A fetch cut short (the session ended) leaves no `.part` behind.
    fn drop(&mut self) {
        if let Some((part, _, _)) = self.writing.take() {
            let _ = std::fs::remove_file(part);
        }
    }
}

fn describe(why: FetchFailure) -> String {
    match why {
        FetchFailure::Refused => "the office PC could not give the file".into(),
        FetchFailure::TooLarge(limit) => format!("the file is larger than {limit} bytes"),
        FetchFailure::Overlong => "the office PC sent more than the file's size".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(index: i32, name: &str, size: u64) -> RemoteFile {
        RemoteFile {
            index,
            name: name.into(),
            size: Some(size),
        }
    }

    /// Whole files get their names (a taken name gets a number, never
    /// overwritten); a failed one leaves no `.part`; a bad name is refused.
    #[test]
    fn files_are_written_whole_or_not_at_all() {
        let dir = std::env::temp_dir().join(format!("thin-incoming-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("report.txt"), b"mine").unwrap();
        let files = [
            remote(0, "report.txt", 6),
            remote(1, "broken.bin", 4),
            remote(2, "empty", 0),
            remote(3, "CON", 1),
        ];
        let mut incoming = Incoming::new(&files, None, 0, &dir).unwrap();
        assert_eq!(incoming.fetch().files().len(), 3, "CON left out");
        let steps = vec![
            Fetched::Data {
                file: 0,
                data: b"rep".to_vec(),
            },
            Fetched::Data {
                file: 0,
                data: b"ort".to_vec(),
            },
            Fetched::Done { file: 0, bytes: 6 },
            Fetched::Data {
                file: 1,
                data: b"br".to_vec(),
            },
            Fetched::Failed {
                file: 1,
                why: FetchFailure::Overlong,
            },
            Fetched::Done { file: 2, bytes: 0 },
        ];
        // The fetch itself is not done (no answers went through it), so
        // the result is taken by hand.
        assert_eq!(incoming.apply(steps), None);
        let result = std::mem::take(&mut incoming.result);
        assert_eq!(
            result.saved,
            [dir.join("report (2).txt"), dir.join("empty")]
        );
        assert_eq!(
            std::fs::read(dir.join("report (2).txt")).unwrap(),
            b"report"
        );
        assert_eq!(std::fs::read(dir.join("report.txt")).unwrap(), b"mine");
        assert_eq!(std::fs::read(dir.join("empty")).unwrap(), b"");
        let failed: Vec<&str> = result.failed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(failed, ["CON", "broken.bin"]);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["empty", "report (2).txt", "report.txt"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
