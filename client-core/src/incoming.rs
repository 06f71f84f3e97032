//! Files and folders copied on the office PC, brought to a folder on this
//! computer (the disk side of [`proto::clipboard::FileFetch`]). Each file
//! is written under a hidden `.part` name and given its own name once
//! whole, so a half-fetched file never looks finished; an existing file is
//! never overwritten (a taken name gets a number: "report (2).txt").

use ironrdp_svc::SvcMessage;
use proto::clipboard::{
    self, CliprdrClient, FetchFailure, FetchLimits, Fetched, FileFetch, RemoteFile,
};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use web_time::{Duration, Instant};

/// The longest the office PC may take to answer one request of a fetch
/// before the fetch is given up (it may be busy, but not for this long).
pub const FETCH_STALL_LIMIT: Duration = Duration::from_secs(60);

/// How a fetch of the office PC's files ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilesFetched {
    /// What arrived, as copied there: the files and folders at the top of
    /// the copy (a folder's own files are inside it).
    pub saved: Vec<PathBuf>,
    /// The files and folders that did not come: name and why.
    pub failed: Vec<(String, NotFetched)>,
    /// The fetch was given up half-way (why): nothing of it was kept.
    pub abandoned: Option<Abandoned>,
}

/// Why one file did not come.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotFetched {
    #[error("{0}")]
    Remote(FetchFailure),
    /// Its name (or a folder's it is in) cannot be a name here.
    #[error("{0}")]
    Name(String),
    /// The disk here refused it.
    #[error("{0}")]
    Disk(String),
}

/// Why a whole fetch was given up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Abandoned {
    #[error("something else was copied on the office PC meanwhile")]
    RemoteCopied,
    #[error("the office PC did not answer for {} s", FETCH_STALL_LIMIT.as_secs())]
    Stalled,
    #[error("{0}")]
    Disk(String),
}

/// A fetch under way into a folder.
pub(crate) struct Incoming {
    fetch: FileFetch,
    dir: PathBuf,
    /// Where each entry of the fetch goes (None: its name was refused).
    places: Vec<Option<PathBuf>>,
    /// The file being written: its `.part` path and handle.
    writing: Option<(PathBuf, std::fs::File)>,
    /// Files and folders made at the top of `dir`, to take back if the
    /// fetch is given up.
    made: Vec<PathBuf>,
    result: FilesFetched,
    /// When the office PC last answered (or the fetch began).
    progress: Instant,
}

impl Incoming {
    /// A fetch of `files` into `dir` (made if missing). Entries whose names
    /// cannot be names here are left out and reported as failed.
    pub(crate) fn new(
        files: &[RemoteFile],
        clip_data_id: Option<u32>,
        first_stream: u32,
        limits: FetchLimits,
        dir: &Path,
    ) -> Result<Incoming, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot make the folder {}: {e}", dir.display()))?;
        let mut result = FilesFetched::default();
        let (mut wanted, mut places) = (Vec::new(), Vec::new());
        for file in files {
            match place(dir, file) {
                Ok(path) => {
                    wanted.push(file.clone());
                    places.push(Some(path));
                }
                Err(why) => result
                    .failed
                    .push((file.name.clone(), NotFetched::Name(why))),
            }
        }
        Ok(Incoming {
            fetch: FileFetch::new(wanted, clip_data_id, first_stream, limits),
            dir: dir.to_owned(),
            places,
            writing: None,
            made: Vec::new(),
            result,
            progress: Instant::now(),
        })
    }

    /// Where the streams of a fetch after this one may begin.
    pub(crate) fn next_first_stream(&self) -> u32 {
        self.fetch.next_first_stream()
    }

    /// Asks for the next range, settling (and writing) what needs no
    /// asking on the way: the result if that ended the fetch, and the
    /// messages to send.
    pub(crate) fn ask(
        &mut self,
        cliprdr: &mut CliprdrClient,
    ) -> (Option<FilesFetched>, Vec<SvcMessage>) {
        let (settled, messages) = self.fetch.ask(cliprdr);
        (self.apply(settled), messages)
    }

    /// Takes the office PC's answer and writes it: None when it answers
    /// something else, else the result if the fetch is over (if not, ask
    /// again). Each answer resets the clock of [`stalled`](Self::stalled).
    pub(crate) fn answer(
        &mut self,
        stream_id: u32,
        data: Option<Vec<u8>>,
    ) -> Option<Option<FilesFetched>> {
        let fetched = self.fetch.take(stream_id, data)?;
        self.progress = Instant::now();
        Some(self.apply(fetched))
    }

    pub(crate) fn stalled(&self) -> bool {
        self.progress.elapsed() > FETCH_STALL_LIMIT
    }

    /// Writes what arrived; the result once every entry arrived or failed
    /// (or the disk refused a write, which gives up the rest: they would
    /// fail the same way).
    fn apply(&mut self, fetched: Vec<Fetched>) -> Option<FilesFetched> {
        for step in fetched {
            let outcome = match step {
                Fetched::Data { file, data } => self.write(file, &data),
                Fetched::Done { file, .. } => self.finish(file),
                Fetched::Failed { file, why } => {
                    self.drop_part();
                    self.failed(file, NotFetched::Remote(why));
                    Ok(())
                }
            };
            if let Err(why) = outcome {
                return Some(self.abandon(Abandoned::Disk(why)));
            }
        }
        self.fetch
            .is_done()
            .then(|| std::mem::take(&mut self.result))
    }

    /// Gives up the fetch (why): what it made is taken back.
    pub(crate) fn abandon(&mut self, why: Abandoned) -> FilesFetched {
        self.drop_part();
        for made in std::mem::take(&mut self.made) {
            let _ = match made.is_dir() {
                true => std::fs::remove_dir_all(&made),
                false => std::fs::remove_file(&made),
            };
        }
        FilesFetched {
            saved: Vec::new(),
            failed: std::mem::take(&mut self.result.failed),
            abandoned: Some(why),
        }
    }

    fn failed(&mut self, file: usize, why: NotFetched) {
        let name = self.fetch.files()[file].name.clone();
        self.result.failed.push((name, why));
    }

    fn drop_part(&mut self) {
        if let Some((part, _)) = self.writing.take() {
            let _ = std::fs::remove_file(part);
        }
    }

    fn write(&mut self, file: usize, data: &[u8]) -> Result<(), String> {
        if self.writing.is_none() {
            self.writing = Some(self.create_part(file)?);
        }
        let (part, handle) = self.writing.as_mut().expect("opened above");
        handle
            .write_all(data)
            .map_err(|e| format!("cannot write {}: {e}", part.display()))
    }

    /// The entry arrived whole: a folder is made, a file gets its own name
    /// (or a numbered one where that is taken).
    fn finish(&mut self, file: usize) -> Result<(), String> {
        let Some(path) = self.places[file].clone() else {
            return Ok(());
        };
        let at_top = self.fetch.files()[file].folder.is_none();
        if self.fetch.files()[file].is_folder {
            std::fs::create_dir_all(&path)
                .map_err(|e| format!("cannot make the folder {}: {e}", path.display()))?;
            if at_top {
                self.made.push(path.clone());
                self.result.saved.push(path);
            }
            return Ok(());
        }
        // An empty file had no bytes to open it with.
        if self.writing.is_none() {
            self.writing = Some(self.create_part(file)?);
        }
        let (part, handle) = self.writing.take().expect("opened above");
        drop(handle);
        let named = match name_without_overwriting(&part, &path) {
            Ok(named) => named,
            Err(why) => {
                let _ = std::fs::remove_file(&part);
                return Err(why);
            }
        };
        if at_top {
            self.made.push(named.clone());
            self.result.saved.push(named);
        }
        Ok(())
    }

    /// A new hidden `.part` file beside where `file` goes.
    fn create_part(&self, file: usize) -> Result<(PathBuf, std::fs::File), String> {
        let path = self.places[file].as_ref().ok_or("no place for the file")?;
        let folder = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("cannot make the folder {}: {e}", folder.display()))?;
        let part = folder.join(format!(".thin-{}-{file}.part", std::process::id()));
        let handle = std::fs::File::create(&part)
            .map_err(|e| format!("cannot create {}: {e}", part.display()))?;
        Ok((part, handle))
    }
}

impl Drop for Incoming {
    /// A fetch cut short (the session ended) leaves no `.part` behind.
    fn drop(&mut self) {
        self.drop_part();
    }
}

/// Where `file` goes under `dir`: its folders and name, each checked to be
/// a name Windows and this computer take.
fn place(dir: &Path, file: &RemoteFile) -> Result<PathBuf, String> {
    let mut path = dir.to_owned();
    let folders = file.folder.iter().flat_map(|f| f.split('\\'));
    for part in folders.chain([file.name.as_str()]) {
        clipboard::check_file_name(part)?;
        // Most file systems here take names of at most 255 bytes.
        if part.len() > 255 {
            return Err(format!("'{part}' is too long a name for this computer"));
        }
        path.push(part);
    }
    Ok(path)
}

/// Gives the finished `part` the name `path`, or "name (2).ext" and so on
/// where that is taken, never replacing a file (a hard link fails where
/// the name exists; file systems without links get a checked rename).
fn name_without_overwriting(part: &Path, path: &Path) -> Result<PathBuf, String> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, format!(".{ext}")),
        _ => (name.as_ref(), String::new()),
    };
    for n in 1..=100 {
        let candidate = match n {
            1 => path.to_owned(),
            n => path.with_file_name(format!("{stem} ({n}){ext}")),
        };
        match std::fs::hard_link(part, &candidate) {
            Ok(()) => {
                let _ = std::fs::remove_file(part);
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(_) if candidate.exists() => continue,
            Err(_) => {
                return std::fs::rename(part, &candidate)
                    .map(|()| candidate.clone())
                    .map_err(|e| format!("cannot name {}: {e}", candidate.display()))
            }
        }
    }
    Err(format!(
        "{} already holds 100 files named like {name}",
        path.parent().unwrap_or(path).display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(index: i32, name: &str, folder: Option<&str>, size: u64) -> RemoteFile {
        RemoteFile {
            index,
            name: name.into(),
            folder: folder.map(Into::into),
            is_folder: false,
            size: Some(size),
        }
    }

    const LIMITS: FetchLimits = FetchLimits {
        file: 1 << 20,
        total: 1 << 20,
    };

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Whole files get their names (a taken name gets a number, never
    /// overwritten); a folder comes with its files; a failed file leaves
    /// no `.part`; names that cannot be names here are refused.
    #[test]
    fn files_are_written_whole_or_not_at_all() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        std::fs::write(dir.join("report.txt"), b"mine").unwrap();
        let mut folder = remote(4, "資料", None, 0);
        folder.is_folder = true;
        let files = [
            remote(0, "report.txt", None, 6),
            remote(1, "broken.bin", None, 4),
            remote(2, "empty", None, 0),
            remote(3, "CON", None, 1),
            folder,
            remote(5, "a.txt", Some("資料"), 1),
            remote(6, "b.txt", Some("資料\\bad:dir"), 1),
        ];
        let mut incoming = Incoming::new(&files, None, 0, LIMITS, dir).unwrap();
        assert_eq!(incoming.fetch.files().len(), 5, "CON and bad:dir left out");
        let data = |file, bytes: &[u8]| Fetched::Data {
            file,
            data: bytes.to_vec(),
        };
        let steps = vec![
            data(0, b"rep"),
            data(0, b"ort"),
            Fetched::Done { file: 0, bytes: 6 },
            data(1, b"br"),
            Fetched::Failed {
                file: 1,
                why: FetchFailure::Overlong,
            },
            Fetched::Done { file: 2, bytes: 0 },
            Fetched::Done { file: 3, bytes: 0 },
            data(4, b"a"),
            Fetched::Done { file: 4, bytes: 1 },
        ];
        // The fetch itself is not done (no answers went through it), so
        // the result is taken by hand.
        assert_eq!(incoming.apply(steps), None);
        let result = std::mem::take(&mut incoming.result);
        assert_eq!(
            result.saved,
            [
                dir.join("report (2).txt"),
                dir.join("empty"),
                dir.join("資料")
            ]
        );
        assert_eq!(
            std::fs::read(dir.join("report (2).txt")).unwrap(),
            b"report"
        );
        assert_eq!(std::fs::read(dir.join("report.txt")).unwrap(), b"mine");
        assert_eq!(std::fs::read(dir.join("empty")).unwrap(), b"");
        assert_eq!(std::fs::read(dir.join("資料").join("a.txt")).unwrap(), b"a");
        let failed: Vec<&str> = result.failed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(failed, ["CON", "b.txt", "broken.bin"]);
        assert_eq!(
            listing(dir),
            ["empty", "report (2).txt", "report.txt", "資料"]
        );
    }

    /// A fetch given up half-way takes back what it made and leaves no
    /// `.part`; so does one whose session ended.
    #[test]
    fn an_abandoned_fetch_leaves_nothing() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        let files = [
            remote(0, "first.txt", None, 2),
            remote(1, "second.txt", None, 4),
        ];
        let mut incoming = Incoming::new(&files, None, 0, LIMITS, dir).unwrap();
        let steps = vec![
            Fetched::Data {
                file: 0,
                data: b"ok".to_vec(),
            },
            Fetched::Done { file: 0, bytes: 2 },
            Fetched::Data {
                file: 1,
                data: b"ha".to_vec(),
            },
        ];
        assert_eq!(incoming.apply(steps), None);
        assert_eq!(listing(dir).len(), 2, "first.txt and a .part");
        let result = incoming.abandon(Abandoned::RemoteCopied);
        assert_eq!(result.abandoned, Some(Abandoned::RemoteCopied));
        assert!(result.saved.is_empty());
        assert!(listing(dir).is_empty(), "{:?}", listing(dir));

        let mut incoming = Incoming::new(&files, None, 0, LIMITS, dir).unwrap();
        let half = vec![Fetched::Data {
            file: 0,
            data: b"o".to_vec(),
        }];
        assert_eq!(incoming.apply(half), None);
        drop(incoming);
        assert!(listing(dir).is_empty(), "{:?}", listing(dir));
    }
}
