//! Fetching the files the other side copied, as Explorer does when a
//! person pastes them: one file after another, in ranges of at most
//! [`MAX_FILE_CHUNK`], never more than the other side announced, than was
//! asked, or than the fetcher's limits. Sans I/O: the owner sends what
//! [`FileFetch::ask`] gives and keeps (in memory or on disk) what
//! [`FileFetch::take`] hands out.

use super::{ask_file_contents, RemoteFile, MAX_FILE_CHUNK};
use ironrdp_cliprdr::{Cliprdr, Role};
use ironrdp_svc::SvcMessage;

/// How much a fetch may bring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchLimits {
    /// The most bytes of one file.
    pub file: u64,
    /// The most bytes of all files together.
    pub total: u64,
}

/// The other side's copied files being fetched.
#[derive(Debug)]
pub struct FileFetch {
    files: Vec<RemoteFile>,
    clip_data_id: Option<u32>,
    /// Stream IDs of this fetch's files begin here (answers to an earlier
    /// fetch's requests are not mixed in).
    first_stream: u32,
    limits: FetchLimits,
    /// The file being fetched (past the end when all are done) and how many
    /// of its bytes arrived.
    current: usize,
    received: u64,
    /// Bytes of all files so far.
    total: u64,
    /// The bytes asked of `current` by the request that is out, if one is.
    waiting: Option<u32>,
}

/// What happened to one entry of a fetch (by its place in the fetch's
/// list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The next bytes of the file, in order.
    Data { file: usize, data: Vec<u8> },
    /// The file arrived whole: this many bytes (0 for a folder, which has
    /// nothing to fetch).
    Done { file: usize, bytes: u64 },
    /// The file did not come; the fetch goes on with the next.
    Failed { file: usize, why: FetchFailure },
}

/// Why a file did not come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FetchFailure {
    #[error("the other side could not give the file")]
    Refused,
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the other side sent more than the file's size, or than was asked")]
    Overlong,
    #[error("the other side ended the file before its announced size")]
    Truncated,
}

impl FileFetch {
    /// A fetch of `files` (as listed with `clip_data_id`), its streams
    /// numbered from `first_stream`.
    pub fn new(
        files: Vec<RemoteFile>,
        clip_data_id: Option<u32>,
        first_stream: u32,
        limits: FetchLimits,
    ) -> FileFetch {
        FileFetch {
            files,
            clip_data_id,
            first_stream,
            limits,
            current: 0,
            received: 0,
            total: 0,
            waiting: None,
        }
    }

    pub fn files(&self) -> &[RemoteFile] {
        &self.files
    }

    /// The entries not settled yet, the one being fetched first.
    pub fn left(&self) -> &[RemoteFile] {
        self.files.get(self.current..).unwrap_or_default()
    }

    /// Every entry arrived or failed.
    pub fn is_done(&self) -> bool {
        self.current >= self.files.len()
    }

    /// Where the streams of a fetch after this one may begin.
    pub fn next_first_stream(&self) -> u32 {
        let count = u32::try_from(self.files.len()).unwrap_or(u32::MAX);
        self.first_stream.wrapping_add(count)
    }

    fn stream(&self) -> u32 {
        let index = u32::try_from(self.current).unwrap_or(u32::MAX);
        self.first_stream.wrapping_add(index)
    }

    /// The most bytes the current file may still have.
    fn room(&self) -> u64 {
        let left_in_total = self.limits.total.saturating_sub(self.total);
        self.limits.file.min(left_in_total + self.received)
    }

    /// Asks for the next range, if a file is left and no request is out;
    /// entries with nothing to ask (folders, empty files, files announced
    /// larger than the limits, requests the channel refuses to send) are
    /// settled on the way and reported.
    pub fn ask<R: Role>(&mut self, cliprdr: &mut Cliprdr<R>) -> (Vec<Fetched>, Vec<SvcMessage>) {
        let mut settled = Vec::new();
        while let Some(file) = self
            .files
            .get(self.current)
            .filter(|_| self.waiting.is_none())
        {
            let settle = match file.size {
                _ if file.is_folder => Fetched::Done {
                    file: self.current,
                    bytes: 0,
                },
                Some(0) => Fetched::Done {
                    file: self.current,
                    bytes: 0,
                },
                Some(size) if size > self.room() => Fetched::Failed {
                    file: self.current,
                    why: FetchFailure::TooLarge(self.room()),
                },
                _ => {
                    let stream = self.stream();
                    let (position, clip) = (self.received, self.clip_data_id);
                    match ask_file_contents(cliprdr, stream, file, position, MAX_FILE_CHUNK, clip) {
                        Ok((asked, messages)) => {
                            self.waiting = Some(asked);
                            return (settled, messages);
                        }
                        // The channel would not send it (the other side did
                        // not agree to files, or to positions this far).
                        Err(_) => Fetched::Failed {
                            file: self.current,
                            why: FetchFailure::Refused,
                        },
                    }
                }
            };
            settled.push(settle);
            self.next_file();
        }
        (settled, Vec::new())
    }

    fn next_file(&mut self) {
        self.current += 1;
        self.received = 0;
        self.waiting = None;
    }

    /// Takes an answer to a request of this fetch (None: an answer to
    /// something else, ignored). Ask again with [`ask`](Self::ask) after an
    /// answer was taken.
    pub fn take(&mut self, stream_id: u32, data: Option<Vec<u8>>) -> Option<Vec<Fetched>> {
        let asked = self.waiting.filter(|_| stream_id == self.stream())?;
        self.waiting = None;
        let file = self.current;
        let size = self.files[file].size;
        let failed = |fetch: &mut FileFetch, why| {
            fetch.next_file();
            Some(vec![Fetched::Failed { file, why }])
        };
        let Some(data) = data else {
            return failed(self, FetchFailure::Refused);
        };
        let received = self.received + data.len() as u64;
        if data.len() as u64 > u64::from(asked) || size.is_some_and(|size| received > size) {
            return failed(self, FetchFailure::Overlong);
        }
        if received > self.room() {
            return failed(self, FetchFailure::TooLarge(self.room()));
        }
        // A file of unknown size ends with an empty answer; one of known
        // size must reach it.
        if data.is_empty() && size.is_some_and(|size| received < size) {
            return failed(self, FetchFailure::Truncated);
        }
        let ended = data.is_empty() || size == Some(received);
        let mut fetched = Vec::new();
        if !data.is_empty() {
            self.total += data.len() as u64;
            fetched.push(Fetched::Data { file, data });
        }
        self.received = received;
        if ended {
            fetched.push(Fetched::Done {
                file,
                bytes: received,
            });
            self.next_file();
        }
        Some(fetched)
    }
}
