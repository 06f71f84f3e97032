//! Fetching the files the other side copied, as Explorer does when a
//! person pastes them: one file after another, in ranges of at most
//! [`MAX_FILE_CHUNK`], never more than the other side announced nor more
//! than the fetcher's limit. Sans I/O: the owner sends what [`FileFetch::ask`]
//! gives and keeps (in memory or on disk) what [`FileFetch::take`] hands out.

use super::{ask_file_contents, RemoteFile, MAX_FILE_CHUNK};
use ironrdp_cliprdr::{Cliprdr, Role};
use ironrdp_pdu::PduResult;
use ironrdp_svc::SvcMessage;

/// The other side's copied files being fetched.
#[derive(Debug)]
pub struct FileFetch {
    files: Vec<RemoteFile>,
    clip_data_id: Option<u32>,
    /// Stream IDs of this fetch's files begin here (answers to an earlier
    /// fetch's requests are not mixed in).
    first_stream: u32,
    /// The most bytes one file may have.
    max_file: u64,
    /// The file being fetched (past the end when all are done) and how many
    /// of its bytes arrived.
    current: usize,
    received: u64,
    /// A request is out for `current`.
    waiting: bool,
}

/// What happened to one file of a fetch (by its place in the fetch's list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The next bytes of the file, in order.
    Data { file: usize, data: Vec<u8> },
    /// The file arrived whole: this many bytes.
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
    #[error("the other side sent more than the file's announced size")]
    Overlong,
}

impl FileFetch {
    /// A fetch of `files` (as listed with `clip_data_id`), its streams
    /// numbered from `first_stream`, each file at most `max_file` bytes.
    pub fn new(
        files: Vec<RemoteFile>,
        clip_data_id: Option<u32>,
        first_stream: u32,
        max_file: u64,
    ) -> FileFetch {
        FileFetch {
            files,
            clip_data_id,
            first_stream,
            max_file,
            current: 0,
            received: 0,
            waiting: false,
        }
    }

    pub fn files(&self) -> &[RemoteFile] {
        &self.files
    }

    /// The files not settled yet, the one being fetched first.
    pub fn left(&self) -> &[RemoteFile] {
        self.files.get(self.current..).unwrap_or_default()
    }

    /// Every file arrived or failed.
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

    /// Asks for the next range, if a file is left and no request is out;
    /// files with nothing to ask (empty, or announced larger than the
    /// limit) are settled on the way and reported.
    pub fn ask<R: Role>(
        &mut self,
        cliprdr: &mut Cliprdr<R>,
    ) -> PduResult<(Vec<Fetched>, Vec<SvcMessage>)> {
        let mut settled = Vec::new();
        while let Some(file) = self.files.get(self.current).filter(|_| !self.waiting) {
            let settle = match file.size {
                Some(0) => Fetched::Done {
                    file: self.current,
                    bytes: 0,
                },
                Some(size) if size > self.max_file => Fetched::Failed {
                    file: self.current,
                    why: FetchFailure::TooLarge(self.max_file),
                },
                _ => {
                    let stream = self.stream();
                    let messages = ask_file_contents(
                        cliprdr,
                        stream,
                        file,
                        self.received,
                        MAX_FILE_CHUNK,
                        self.clip_data_id,
                    )?;
                    self.waiting = true;
                    return Ok((settled, messages));
                }
            };
            settled.push(settle);
            self.next_file();
        }
        Ok((settled, Vec::new()))
    }

    fn next_file(&mut self) {
        self.current += 1;
        self.received = 0;
        self.waiting = false;
    }

    /// Takes an answer to a request of this fetch (None: an answer to
    /// something else, ignored). Ask again with [`ask`](Self::ask) after an
    /// answer was taken.
    pub fn take(&mut self, stream_id: u32, data: Option<Vec<u8>>) -> Option<Vec<Fetched>> {
        if !self.waiting || stream_id != self.stream() {
            return None;
        }
        self.waiting = false;
        let file = self.current;
        let size = self.files[file].size;
        let Some(data) = data else {
            self.next_file();
            let why = FetchFailure::Refused;
            return Some(vec![Fetched::Failed { file, why }]);
        };
        let received = self.received + data.len() as u64;
        let failed = match size {
            Some(size) if received > size => Some(FetchFailure::Overlong),
            _ if received > self.max_file => Some(FetchFailure::TooLarge(self.max_file)),
            _ => None,
        };
        if let Some(why) = failed {
            self.next_file();
            return Some(vec![Fetched::Failed { file, why }]);
        }
        // A file of unknown size ends with an empty answer.
        let ended = data.is_empty() || size == Some(received);
        let mut fetched = Vec::new();
        if !data.is_empty() {
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
