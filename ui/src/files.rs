//! Files through the clipboard, as a person expects them in a remote
//! session: files copied on the office PC come to this computer's
//! clipboard (fetched into a folder first, since a clipboard here holds
//! paths), and files copied here are pasted there with Ctrl+V. Where the
//! platform has no file clipboard (the browser), the person is told why.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use client_core::driver::Command;
use client_core::incoming::{Abandoned, FilesFetched, NotFetched};
use proto::clipboard::{FetchFailure, RemoteFile};

use crate::i18n::{fill, Lang, T};
use crate::platform::Platform;

/// The most bytes fetched by themselves when the office PC copies files:
/// more would hold the link for minutes for a copy the person may never
/// paste here (drive sharing is the way for large files).
pub const AUTO_FETCH_BYTES: u64 = 256 << 20;
/// The most files and folders fetched by themselves.
pub const AUTO_FETCH_FILES: usize = 1000;
/// The most files a note names as not fetched (the rest are counted).
const NAMED_FAILURES: usize = 3;

/// Fetches of this app, each into a folder of its own (so files keep their
/// names, and a new copy never mixes with one still on the clipboard).
static FETCHES: AtomicU32 = AtomicU32::new(0);

/// The files of one connection.
#[derive(Debug, Default)]
pub struct FileClipboard {
    /// The folder of the fetch whose files are on the local clipboard.
    on_clipboard: Option<PathBuf>,
    /// The folder the running fetch writes into.
    coming: Option<PathBuf>,
}

impl FileClipboard {
    /// The office PC copied `files` (its copy number `list`): what to ask
    /// the connection, and what to tell the person.
    pub fn remote_copied(
        &mut self,
        list: u32,
        files: &[RemoteFile],
        platform: &dyn Platform,
        lang: Lang,
    ) -> (Option<Command>, String) {
        // A file whose size is not told may be any size.
        let bytes = files.iter().fold(0u64, |sum, f| {
            sum.saturating_add(f.size.unwrap_or(u64::MAX))
        });
        let count = files.len().to_string();
        let shown = match files.iter().all(|f| f.size.is_some()) {
            true => megabytes(bytes),
            false => "?".to_owned(),
        };
        let Some(base) = platform.fetched_files_folder() else {
            return (None, T::FilesNotHere.get(lang).to_owned());
        };
        if bytes > AUTO_FETCH_BYTES || files.len() > AUTO_FETCH_FILES {
            let limits = [
                count.as_str(),
                &shown,
                &AUTO_FETCH_FILES.to_string(),
                &megabytes(AUTO_FETCH_BYTES),
            ];
            return (None, fill(T::FilesTooLargeIn.get(lang), &limits));
        }
        let dir = base.join(FETCHES.fetch_add(1, Ordering::Relaxed).to_string());
        self.coming = Some(dir.clone());
        let note = fill(T::FilesComing.get(lang), &[&count, &shown]);
        let fetch = Command::FetchFiles {
            dir,
            list,
            budget: AUTO_FETCH_BYTES,
        };
        (Some(fetch), note)
    }

    /// A fetch ended: its files go on the local clipboard (in place of an
    /// earlier fetch's, whose folder goes); what to tell the person.
    pub fn fetched(
        &mut self,
        result: &FilesFetched,
        platform: &dyn Platform,
        lang: Lang,
    ) -> String {
        let folder = self.coming.take();
        let mut notes = Vec::new();
        let mut kept = false;
        if let Some(why) = &result.abandoned {
            notes.push(match why {
                Abandoned::RemoteCopied => T::FilesAbandonedCopied.get(lang).to_owned(),
                Abandoned::Stalled => T::FilesAbandonedStalled.get(lang).to_owned(),
                Abandoned::Disk(why) => fill(T::FilesAbandonedDisk.get(lang), &[why]),
            });
        } else if !result.saved.is_empty() {
            match platform.put_files_on_clipboard(&result.saved) {
                Ok(()) => {
                    kept = true;
                    // Each fetch has a folder of its own.
                    if let Some(earlier) = std::mem::replace(&mut self.on_clipboard, folder.clone())
                    {
                        platform.forget_fetched(&earlier);
                    }
                    let count = result.saved.len().to_string();
                    notes.push(fill(T::FilesOnClipboard.get(lang), &[&count]));
                }
                Err(why) => notes.push(fill(T::FilesNotOnClipboard.get(lang), &[&why])),
            }
        }
        if let Some(folder) = folder.filter(|_| !kept) {
            platform.forget_fetched(&folder);
        }
        for (name, why) in result.failed.iter().take(NAMED_FAILURES) {
            let why = reason(why, lang);
            notes.push(fill(T::FilesNotFetched.get(lang), &[name, &why]));
        }
        let more = result.failed.len().saturating_sub(NAMED_FAILURES);
        if more > 0 {
            notes.push(fill(T::FilesMoreFailed.get(lang), &[&more.to_string()]));
        }
        notes.join("\n")
    }

    /// The person pressed Ctrl+V in the session: `text` is what the local
    /// clipboard had as text (None when egui found neither text nor a
    /// picture there). Files win where the clipboard holds files.
    pub fn paste(&self, text: Option<String>, platform: &dyn Platform) -> Command {
        match (platform.copied_files(), text) {
            // The office PC's own files, back from this app's folder: still
            // on its clipboard, pasted there as they are.
            (Some(files), _) if files.iter().all(|f| self.is_ours(f)) => Command::PressPaste,
            (Some(files), _) => Command::PasteFiles(files),
            (None, Some(text)) => Command::Paste(text),
            // Nothing this app can carry: Ctrl+V reaches the office PC,
            // which pastes what its own clipboard holds.
            (None, None) => Command::PressPaste,
        }
    }

    fn is_ours(&self, path: &std::path::Path) -> bool {
        self.on_clipboard
            .as_ref()
            .is_some_and(|folder| path.starts_with(folder))
    }
}

/// Why a file did not come, in words.
fn reason(why: &NotFetched, lang: Lang) -> String {
    match why {
        NotFetched::Remote(FetchFailure::Refused) => T::FileWhyRefused.get(lang).to_owned(),
        NotFetched::Remote(FetchFailure::TooLarge(_)) => T::FileWhyTooLarge.get(lang).to_owned(),
        NotFetched::Remote(FetchFailure::Overlong | FetchFailure::Truncated) => {
            T::FileWhyBroken.get(lang).to_owned()
        }
        NotFetched::Name(_) => T::FileWhyName.get(lang).to_owned(),
        NotFetched::Disk(why) => fill(T::FileWhyDisk.get(lang), &[why]),
    }
}

/// Bytes as megabytes, one decimal, as notes show them.
pub(crate) fn megabytes(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_048_576.0)
}
