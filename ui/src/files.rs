//! Files through the clipboard, as a person expects them in a remote
//! session: files copied on the office PC come to this computer's
//! clipboard (fetched into a folder first, since a clipboard here holds
//! paths), and files copied here are pasted there with Ctrl+V. Where the
//! platform has no file clipboard (the browser), the person is told why.

use std::path::PathBuf;

use client_core::driver::Command;
use client_core::incoming::FilesFetched;
use proto::clipboard::RemoteFile;

use crate::i18n::{fill, Lang, T};
use crate::platform::Platform;

/// The most bytes fetched by themselves when the office PC copies files:
/// more would hold the link for minutes for a copy the person may never
/// paste here (drive sharing is the way for large files).
pub const AUTO_FETCH_BYTES: u64 = 256 << 20;
/// The most files fetched by themselves.
pub const AUTO_FETCH_FILES: usize = 1000;

/// The files of one connection.
#[derive(Debug, Default)]
pub struct FileClipboard {
    /// The files this app put on the local clipboard (from the office PC):
    /// pasted back there, they are the office PC's own.
    fetched: Vec<PathBuf>,
    /// How many fetches this connection made (each gets its own folder, so
    /// files keep their names).
    fetches: u32,
}

impl FileClipboard {
    /// The office PC copied `files`: what to ask the connection, and what to
    /// tell the person.
    pub fn remote_copied(
        &mut self,
        files: &[RemoteFile],
        platform: &dyn Platform,
        lang: Lang,
    ) -> (Option<Command>, String) {
        let bytes: u64 = files.iter().filter_map(|f| f.size).sum();
        let megabytes = megabytes(bytes);
        let count = files.len().to_string();
        let Some(folder) = platform.fetched_files_folder() else {
            return (None, T::FilesNotHere.get(lang).to_owned());
        };
        if bytes > AUTO_FETCH_BYTES || files.len() > AUTO_FETCH_FILES {
            let limits = [
                count.as_str(),
                &megabytes,
                &AUTO_FETCH_FILES.to_string(),
                &self::megabytes(AUTO_FETCH_BYTES),
            ];
            return (None, fill(T::FilesTooLargeIn.get(lang), &limits));
        }
        self.fetches += 1;
        let into = folder.join(self.fetches.to_string());
        let note = fill(T::FilesComing.get(lang), &[&count, &megabytes]);
        (Some(Command::FetchFiles(into)), note)
    }

    /// A fetch ended: the files go on the local clipboard; what to tell the
    /// person.
    pub fn fetched(
        &mut self,
        result: &FilesFetched,
        platform: &dyn Platform,
        lang: Lang,
    ) -> String {
        let mut notes = Vec::new();
        if !result.saved.is_empty() {
            match platform.put_files_on_clipboard(&result.saved) {
                Ok(()) => {
                    self.fetched = result.saved.clone();
                    let count = result.saved.len().to_string();
                    notes.push(fill(T::FilesOnClipboard.get(lang), &[&count]));
                }
                Err(why) => notes.push(fill(T::FilesNotOnClipboard.get(lang), &[&why])),
            }
        }
        for (name, why) in &result.failed {
            notes.push(fill(T::FilesNotFetched.get(lang), &[name, why]));
        }
        notes.join("\n")
    }

    /// The person pressed Ctrl+V in the session: `text` is what the local
    /// clipboard had as text (None when egui found neither text nor a
    /// picture there). Files win where the clipboard holds files.
    pub fn paste(&self, text: Option<String>, platform: &dyn Platform) -> Vec<Command> {
        match (platform.copied_files(), text) {
            // The office PC's own files, still on its clipboard: pasted
            // there as they are.
            (Some(files), _) if files == self.fetched => press_v(),
            (Some(files), _) => vec![Command::PasteFiles(files)],
            (None, Some(text)) => vec![Command::Paste(text)],
            // Nothing this app can carry: the remote PC gets the V it did
            // not see (Ctrl is down there), as a paste of its own clipboard.
            (None, None) => press_v(),
        }
    }
}

/// V pressed and let go (the modifiers held are already down remotely).
fn press_v() -> Vec<Command> {
    let Some((scancode, extended)) = crate::keys::scancode(egui::Key::V) else {
        return Vec::new();
    };
    [true, false]
        .map(|down| Command::Key {
            scancode,
            extended,
            down,
        })
        .into()
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_048_576.0)
}
